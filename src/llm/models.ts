// What a model accepts, known from the wire, the provider's name and the model's name: which field
// carries the reply limit, which sampling settings it takes, where reasoning settings go. A request
// carries only what the model accepts; what the configuration asked for and the model would refuse
// is left out and said (check-config prints it, the start logs it). Decided per request from the
// model actually used, since a chat may name another model than the configured one.
import type { ProviderConfig } from '../config/types.js'
import { KNOWN_PROVIDERS } from './known-providers.js'
import type { ReasoningPart } from './types.js'

/** The settings of a provider that decide a request's fields. */
export type ModelSettings = Pick<
  ProviderConfig,
  | 'name'
  | 'type'
  | 'max_tokens'
  | 'temperature'
  | 'top_p'
  | 'reasoning_effort'
  | 'thinking'
  | 'max_tokens_field'
>

/** What is said about a setting of the provider: left out of requests to a model, and why. */
export interface Dropped {
  /** The provider's key it is about (`temperature`, `top_p`, `reasoning_effort`, `thinking`, …). */
  setting: string
  reason: string
}

/** The fields of one request's body that come from the provider's settings. */
export interface RequestFields {
  /** Body fields by their wire name (`max_completion_tokens`, `temperature`, `thinking`, …). */
  fields: Record<string, unknown>
  /** What was configured and left out because the model would refuse it (or may). */
  dropped: Dropped[]
  /** Anthropic: thinking is on for this request (its blocks must then be sent back with tool results). */
  thinking: boolean
}

/** The fields a request to `model` carries, from the provider's settings. */
export function requestFields(p: ModelSettings, model: string): RequestFields {
  return p.type === 'anthropic' ? anthropicFields(p, model) : openAiFields(p, model)
}

/**
 * Whether the openai wire sends an assistant message's `reasoning_content` back. DeepSeek requires
 * it with tool calls, in every later request ("The `reasoning_content` in the thinking mode must be
 * passed back to the API", https://api-docs.deepseek.com/guides/thinking_mode); vLLM takes it. The
 * known providers' APIs refuse the field in a message (Groq: "property 'reasoning_content' is
 * unsupported"), and OpenAI's never send it.
 */
export function sendsReasoningContent(providerName: string): boolean {
  return !isKnown(providerName)
}

/**
 * The reasoning text that later requests carry again, so a stored event counts it: a custom
 * openai-wire server's `reasoning_content` (sendsReasoningContent). Anthropic thinking is sent back
 * only within the tool-use cycle it belongs to (earlier turns' thinking may be left out:
 * https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks),
 * so it is not part of a later turn's context.
 */
export function resentReasoning(parts: ReasoningPart[] | undefined): string {
  return (parts ?? []).map((p) => (p.type === 'reasoning_content' ? p.text : '')).join('')
}

// ---- the openai wire ----

function openAiFields(p: ModelSettings, model: string): RequestFields {
  const fields: Record<string, unknown> = {}
  const dropped: Dropped[] = []
  const field = maxTokensField(p)
  fields[field] = p.max_tokens
  if (field === 'max_tokens' && !isKnown(p.name) && openAiModel(model)?.effort === true) {
    // Not left out, but likely refused: the endpoint may pass the request on to OpenAI or Azure.
    dropped.push({
      setting: 'max_tokens_field',
      reason: `not set: the reply limit is sent as max_tokens, which OpenAI and Azure refuse for ${model} (set max_tokens_field: max_completion_tokens if this endpoint passes requests on to them)`,
    })
  }

  // OpenAI's reasoning models refuse any temperature or top_p but the default ("Unsupported value:
  // 'temperature' does not support 0.5 with this model. Only the default (1) value is supported"),
  // wherever they are served (OpenAI, Azure, a proxy). OpenRouter leaves out what a model does not
  // take by itself, and Groq serves none of them.
  const reasoning =
    p.name === 'openai' || !isKnown(p.name) ? openAiModel(model, p.reasoning_effort) : undefined
  for (const setting of ['temperature', 'top_p'] as const) {
    const value = p[setting]
    if (value === undefined) continue
    if (reasoning?.sampling === false) {
      // The default (1) left out changes nothing: no warning for it.
      if (value === 1) continue
      dropped.push({
        setting,
        reason: `not sent to ${model}: OpenAI reasoning models refuse ${setting} (only the default is supported)${reasoning.hint}`,
      })
    } else {
      fields[setting] = value
    }
  }

  if (p.reasoning_effort !== undefined) {
    if (p.name === 'openrouter') {
      // https://openrouter.ai/docs/use-cases/reasoning-tokens: `reasoning: {effort}`.
      fields.reasoning = { effort: p.reasoning_effort }
    } else if (reasoning && !reasoning.effort) {
      dropped.push({
        setting: 'reasoning_effort',
        reason: `not sent to ${model}: it takes no reasoning_effort (OpenAI refuses it for this model)`,
      })
    } else if (reasoning?.efforts && !reasoning.efforts.includes(p.reasoning_effort)) {
      // "Unsupported value: 'reasoning_effort' does not support 'minimal' with this model."
      dropped.push({
        setting: 'reasoning_effort',
        reason: `not sent to ${model}: it takes ${reasoning.efforts.join(', ')}, not ${p.reasoning_effort} (OpenAI refuses other values)`,
      })
    } else {
      // OpenAI, Groq, DeepSeek, vLLM and Ollama take it at the top level.
      fields.reasoning_effort = p.reasoning_effort
    }
  }
  return { fields, dropped, thinking: false }
}

/**
 * The field of the reply limit: OpenAI's own API takes `max_completion_tokens` for every model and
 * refuses `max_tokens` for reasoning models ("Unsupported parameter: 'max_tokens' is not supported
 * with this model. Use 'max_completion_tokens' instead.",
 * https://platform.openai.com/docs/api-reference/chat/create); Groq documents
 * `max_completion_tokens` (`max_tokens` deprecated, https://console.groq.com/docs/api-reference);
 * OpenRouter documents `max_tokens` (https://openrouter.ai/docs/api-reference/parameters). Other
 * servers (Ollama, vLLM, llama.cpp, proxies) are asked with `max_tokens`, the field every one of
 * them reads, unless the configuration names the other.
 */
function maxTokensField(p: ModelSettings): 'max_tokens' | 'max_completion_tokens' {
  if (p.max_tokens_field !== undefined) return p.max_tokens_field
  return p.name === 'openai' || p.name === 'groq' ? 'max_completion_tokens' : 'max_tokens'
}

// The reasoning_effort values each family takes (https://platform.openai.com/docs/guides/reasoning,
// https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort): the
// o-series and gpt-5-codex low to high; gpt-5 adds minimal; gpt-5.1 and later none instead of
// minimal (and xhigh from gpt-5.2 and gpt-5.1-codex-max); gpt-5-pro only high.
const O_SERIES_EFFORTS = ['low', 'medium', 'high'] as const
const GPT_5_EFFORTS = ['minimal', 'low', 'medium', 'high'] as const
const GPT_5_1_EFFORTS = ['none', 'low', 'medium', 'high'] as const

/** What an OpenAI model takes, by its name; undefined for a model that is not OpenAI's. */
interface OpenAiModel {
  /** Takes temperature and top_p. */
  sampling: boolean
  /** Takes reasoning_effort. */
  effort: boolean
  /** The reasoning_effort values it takes, where known. */
  efforts?: readonly string[]
  /** Said after a dropped sampling setting. */
  hint: string
}

/**
 * OpenAI's models by name (https://platform.openai.com/docs/guides/reasoning): the o-series and
 * the gpt-5 family reason and take no sampling settings; gpt-5.1 and later reason only when asked
 * (their default effort is `none`), and take temperature and top_p only then; `-chat` models and
 * the earlier gpt models do not reason and refuse reasoning_effort.
 */
function openAiModel(model: string, effort?: string): OpenAiModel | undefined {
  const id = baseName(model)
  // o1-mini and o1-preview came before reasoning_effort and refuse it.
  if (/^o1-(mini|preview)(-|$)/.test(id)) return { sampling: false, effort: false, hint: '' }
  if (/^o\d+(-|$)/.test(id)) return { sampling: false, effort: true, efforts: O_SERIES_EFFORTS, hint: '' }
  const gpt5 = /^gpt-5(?:\.(\d+))?(-[a-z0-9-]+)?$/.exec(id)
  if (gpt5) {
    const variant = gpt5[2] ?? ''
    if (/^-chat(-|$)/.test(variant)) return { sampling: true, effort: false, hint: '' }
    if (/^-pro(-|$)/.test(variant)) return { sampling: false, effort: true, efforts: ['high'], hint: '' }
    const minor = gpt5[1] === undefined ? 0 : Number(gpt5[1])
    if (minor >= 1) {
      // Reasoning is off unless asked for; then sampling settings are refused as for the others.
      const reasons = effort !== undefined && effort !== 'none'
      const xhigh = minor >= 2 || /codex-max/.test(variant)
      return {
        sampling: !reasons,
        effort: true,
        efforts: xhigh ? [...GPT_5_1_EFFORTS, 'xhigh'] : GPT_5_1_EFFORTS,
        hint: reasons ? ' while reasoning_effort is not none' : '',
      }
    }
    const efforts = /codex/.test(variant) ? O_SERIES_EFFORTS : GPT_5_EFFORTS
    return { sampling: false, effort: true, efforts, hint: '' }
  }
  if (/^(gpt-|chatgpt-)/.test(id)) return { sampling: true, effort: false, hint: '' }
  return undefined
}

// ---- the anthropic wire ----

/** A Claude model by its name: family and version (4.5 -> 405); undefined when the name says none. */
interface ClaudeModel {
  family: string
  version: number | undefined
}

function claudeModel(model: string): ClaudeModel | undefined {
  const id = baseName(model)
  // claude-opus-4-1-20250805, claude-sonnet-4-5, claude-opus-4.7 (a proxy's spelling), claude-sonnet-5
  const current = /claude-(opus|sonnet|haiku|fable|mythos)(?:-(\d+)(?:[-.](\d{1,2})(?!\d))?)?/.exec(id)
  if (current) {
    const [, family, major, minor] = current
    return {
      family: family!,
      version: major === undefined ? undefined : Number(major) * 100 + Number(minor ?? 0),
    }
  }
  // claude-3-7-sonnet-20250219, claude-3-5-haiku-latest, claude-3-opus-20240229
  const earlier = /claude-(\d+)(?:-(\d))?-(opus|sonnet|haiku)/.exec(id)
  if (earlier) return { family: earlier[3]!, version: Number(earlier[1]) * 100 + Number(earlier[2] ?? 0) }
  return undefined
}

/**
 * Claude Opus 4.7 and the models after it take adaptive thinking only, and no sampling settings
 * (temperature, top_p, top_k): "`temperature` is deprecated for this model"
 * (https://docs.anthropic.com/en/docs/about-claude/models/migration-guide). Fable and Mythos came
 * with them.
 */
function isAdaptiveGeneration(c: ClaudeModel): boolean {
  if (c.family === 'fable' || c.family === 'mythos') return true
  return c.version !== undefined && c.version >= 407
}

/**
 * Since Claude Opus 4.1 (and Sonnet 4.5, Haiku 4.5, Opus 4.5, the 4.6 models) `temperature` and
 * `top_p` cannot both be specified ("`temperature` and `top_p` cannot both be specified for this
 * model. Please use only one.", https://docs.anthropic.com/en/docs/about-claude/models/migrating-to-claude-4).
 * A model the name does not tell is treated so too: one of the two is always accepted.
 */
function takesOneSampler(c: ClaudeModel | undefined): boolean {
  return c?.version === undefined || c.version >= 401
}

/** `output_config.effort` (low, medium, high) is taken by Claude 4.6 and later; xhigh by Opus 4.7 and later. */
function claudeEfforts(c: ClaudeModel | undefined): readonly string[] {
  if (!c) return []
  if (isAdaptiveGeneration(c)) return ['low', 'medium', 'high', 'xhigh']
  return c.version !== undefined && c.version >= 406 ? ['low', 'medium', 'high'] : []
}

function anthropicFields(p: ModelSettings, model: string): RequestFields {
  const fields: Record<string, unknown> = { max_tokens: p.max_tokens }
  const dropped: Dropped[] = []
  const claude = claudeModel(model)
  const adaptive = claude !== undefined && isAdaptiveGeneration(claude)
  const thinking = p.thinking !== undefined

  if (p.thinking !== undefined) {
    if (adaptive) {
      // Budgets are refused by these models; adaptive thinking is how they think, and its text is
      // omitted unless asked for as a summary.
      fields.thinking = { type: 'adaptive', display: 'summarized' }
      dropped.push({
        setting: 'thinking',
        reason: `budget_tokens not sent to ${model}: it takes adaptive thinking only (thinking: {type: adaptive} is sent instead)`,
      })
    } else {
      fields.thinking = { type: 'enabled', budget_tokens: p.thinking.budget_tokens }
    }
  }

  let temperature = p.temperature
  let topP = p.top_p
  const drop = (setting: 'temperature' | 'top_p', value: number, reason: string): void => {
    // Leaving out the default changes nothing: not worth a warning.
    if (value !== 1) dropped.push({ setting, reason })
  }
  if (adaptive) {
    if (temperature !== undefined)
      drop('temperature', temperature, `not sent to ${model}: it takes no sampling settings`)
    if (topP !== undefined) drop('top_p', topP, `not sent to ${model}: it takes no sampling settings`)
    temperature = topP = undefined
  } else if (thinking) {
    // https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility:
    // with thinking, temperature may only be 1, top_k not set, top_p between 0.95 and 1.
    if (temperature !== undefined) {
      drop(
        'temperature',
        temperature,
        'not sent while thinking is on: Anthropic refuses temperature with thinking',
      )
      temperature = undefined
    }
    if (topP !== undefined && topP < 0.95) {
      drop(
        'top_p',
        topP,
        'not sent while thinking is on: Anthropic takes top_p only between 0.95 and 1 with thinking',
      )
      topP = undefined
    }
  }
  if (temperature !== undefined && topP !== undefined && takesOneSampler(claude)) {
    drop(
      'top_p',
      topP,
      `not sent to ${model}: newer Claude models refuse temperature and top_p together (temperature is sent)`,
    )
    topP = undefined
  }
  if (temperature !== undefined) fields.temperature = temperature
  if (topP !== undefined) fields.top_p = topP

  if (p.reasoning_effort !== undefined) {
    const efforts = claudeEfforts(claude)
    if (efforts.includes(p.reasoning_effort)) {
      fields.output_config = { effort: p.reasoning_effort }
    } else {
      dropped.push({
        setting: 'reasoning_effort',
        reason: efforts.length
          ? `not sent to ${model}: its effort is one of ${efforts.join(', ')}`
          : `not sent to ${model}: it takes no effort setting (thinking.budget_tokens sets how much it thinks)`,
      })
    }
  }
  return { fields, dropped, thinking: thinking }
}

// ---- names ----

function isKnown(providerName: string): boolean {
  return Object.hasOwn(KNOWN_PROVIDERS, providerName)
}

/**
 * A model's own name, without what a proxy or cloud puts around it: `openai/o3` (a router's
 * vendor prefix), `anthropic.claude-opus-4-7` (Bedrock), `claude-opus-4-7@20260416` (Vertex),
 * `ft:gpt-4o-mini:org::id` (a fine-tune of OpenAI's: it takes what its base model takes).
 */
function baseName(model: string): string {
  const last = model.toLowerCase().split('/').pop() ?? ''
  const own = last.startsWith('ft:') ? (last.split(':')[1] ?? '') : last
  return own.replace(/^[a-z]+\.(?=claude-)/, '').replace(/@.*$/, '')
}
