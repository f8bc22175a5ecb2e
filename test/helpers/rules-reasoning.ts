// What the real APIs refuse about reasoning models, extended thinking and the settings that go
// with them (provider-rules.ts: `startLlmServer({ refuse: openAiRefusals(rule, ...) })`). Each rule
// names the model it applies to by the stand-in's own reading of the name, never the platform's:
// a rule must not agree with the code under test by construction.
import { createHash } from 'node:crypto'
import type { Rule } from './provider-rules.js'

type Body = Record<string, any>

// ---- OpenAI (chat completions) ----

/** o1, o3, o4-mini, gpt-5, gpt-5-mini, gpt-5.1, … but not gpt-5-chat-latest (no reasoning). */
function isOpenAiReasoning(model: unknown): boolean {
  return typeof model === 'string' && /^(o\d+(-|$)|gpt-5(?!-chat))/.test(model)
}

/** gpt-5.1 and later (not -pro) reason only when asked: `reasoning_effort` absent or `none` is no reasoning. */
function reasonsNow(body: Body): boolean {
  const later = /^gpt-5\.\d+(?!-pro)/.test(String(body.model))
  return !later || (body.reasoning_effort !== undefined && body.reasoning_effort !== 'none')
}

/**
 * Reasoning models refuse `max_tokens`: "max_tokens … is not compatible with o-series models"
 * (https://platform.openai.com/docs/api-reference/chat/create#chat-create-max_tokens), with
 * this error text (https://github.com/openai/openai-python/issues, e.g. gpt-5: "Unsupported
 * parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.").
 */
export const openAiNoMaxTokens: Rule = (body: Body) =>
  isOpenAiReasoning(body.model) && body.max_tokens !== undefined
    ? "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
    : undefined

/**
 * Reasoning models take no temperature or top_p but the default 1 ("Unsupported value:
 * 'temperature' does not support 0.5 with this model. Only the default (1) value is supported.",
 * https://platform.openai.com/docs/guides/reasoning#limitations); gpt-5.1 and later take them
 * while reasoning_effort is `none` (https://platform.openai.com/docs/guides/latest-model).
 */
export const openAiDefaultSampling: Rule = (body: Body) => {
  if (!isOpenAiReasoning(body.model) || !reasonsNow(body)) return undefined
  for (const field of ['temperature', 'top_p']) {
    const value = body[field]
    if (value !== undefined && value !== 1) {
      return `Unsupported value: '${field}' does not support ${value} with this model. Only the default (1) value is supported.`
    }
  }
  return undefined
}

/**
 * A model that does not reason refuses `reasoning_effort` (gpt-4o, gpt-4.1, gpt-5-chat-latest:
 * "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
 * https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort: "o-series
 * and gpt-5 models only").
 */
export const openAiEffortOnlyForReasoning: Rule = (body: Body) =>
  body.reasoning_effort !== undefined && !isOpenAiReasoning(body.model)
    ? "Unsupported parameter: 'reasoning_effort' is not supported with this model."
    : undefined

/**
 * Each reasoning family takes its own `reasoning_effort` values: the o-series low, medium, high;
 * gpt-5 adds minimal; gpt-5.1 takes none but not minimal
 * (https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort). Error
 * text as users quote it: "Unsupported value: 'reasoning_effort' does not support 'minimal' with
 * this model. Supported values are: 'none', 'low', 'medium', and 'high'."
 */
export const openAiEffortValues: Rule = (body: Body) => {
  const effort = body.reasoning_effort
  if (effort === undefined || !isOpenAiReasoning(body.model)) return undefined
  const model = String(body.model)
  const takes = /^o\d/.test(model)
    ? ['low', 'medium', 'high']
    : /^gpt-5\.\d/.test(model)
      ? ['none', 'low', 'medium', 'high']
      : ['minimal', 'low', 'medium', 'high']
  return takes.includes(effort)
    ? undefined
    : `Unsupported value: 'reasoning_effort' does not support '${effort}' with this model. Supported values are: ${takes.map((t) => `'${t}'`).join(', ')}.`
}

// ---- DeepSeek, Groq (openai wire) ----

/**
 * DeepSeek's thinking mode: an assistant message with tool calls must carry its
 * `reasoning_content` in every later request ("If your code does not correctly pass back
 * reasoning_content, the API will return a 400 error", https://api-docs.deepseek.com/guides/thinking_mode).
 */
export const deepSeekReasoningBack: Rule = (body: Body) => {
  const messages: Body[] = Array.isArray(body.messages) ? body.messages : []
  const bare = messages.some(
    (m) => m.role === 'assistant' && Array.isArray(m.tool_calls) && typeof m.reasoning_content !== 'string',
  )
  return bare ? 'The `reasoning_content` in the thinking mode must be passed back to the API.' : undefined
}

/**
 * Groq refuses `reasoning_content` in a message (its schema has no such property:
 * https://console.groq.com/docs/api-reference#chat-create; the error as reported in
 * https://github.com/agentjido/req_llm/issues/772).
 */
export const groqNoReasoningContent: Rule = (body: Body) => {
  const messages: Body[] = Array.isArray(body.messages) ? body.messages : []
  const i = messages.findIndex((m) => m.reasoning_content !== undefined)
  return i < 0
    ? undefined
    : `'messages.${i}' : for 'role:${messages[i]!.role}' the following must be satisfied[('messages.${i}' : property 'reasoning_content' is unsupported)]`
}

// ---- Anthropic (messages API) ----

/** The stand-in's Claude models, by name: [family, major, minor]. */
function claude(model: unknown): { major: number; minor: number } | undefined {
  const m = /^claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d{1,2})(?!\d))?/.exec(String(model))
  return m ? { major: Number(m[1]), minor: Number(m[2] ?? 0) } : undefined
}
const atLeast = (model: unknown, major: number, minor: number): boolean => {
  const c = claude(model)
  return c !== undefined && (c.major > major || (c.major === major && c.minor >= minor))
}
const thinkingOn = (body: Body): boolean =>
  body.thinking?.type === 'enabled' || body.thinking?.type === 'adaptive'

/**
 * Claude Opus 4.1 and later: "Use only temperature OR top_p, not both"
 * (https://docs.anthropic.com/en/docs/about-claude/models/migrating-to-claude-4), refused with
 * "`temperature` and `top_p` cannot both be specified for this model. Please use only one.".
 */
export const claudeOneSampler: Rule = (body: Body) =>
  atLeast(body.model, 4, 1) && body.temperature !== undefined && body.top_p !== undefined
    ? '`temperature` and `top_p` cannot both be specified for this model. Please use only one.'
    : undefined

/**
 * Claude Opus 4.7 and later take no sampling settings: "Setting temperature, top_p, or top_k to any
 * non-default value will return a 400 error"
 * (https://docs.anthropic.com/en/docs/about-claude/models/migration-guide), worded "`temperature`
 * is deprecated for this model.".
 */
export const claudeNoSampling: Rule = (body: Body) => {
  if (!atLeast(body.model, 4, 7)) return undefined
  for (const field of ['temperature', 'top_p', 'top_k']) {
    if (body[field] !== undefined && body[field] !== 1) return `\`${field}\` is deprecated for this model.`
  }
  return undefined
}

/**
 * Claude Opus 4.7 and later think adaptively only: `thinking: {type: "enabled", budget_tokens}` is
 * refused (https://docs.anthropic.com/en/docs/build-with-claude/adaptive-thinking).
 */
export const claudeAdaptiveOnly: Rule = (body: Body) =>
  atLeast(body.model, 4, 7) && body.thinking?.type === 'enabled'
    ? '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
    : undefined

/**
 * "budget_tokens must be set to a value less than max_tokens"
 * (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size).
 */
export const thinkingBudgetBelowMax: Rule = (body: Body) =>
  body.thinking?.type === 'enabled' && !(body.thinking.budget_tokens < body.max_tokens)
    ? '`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size'
    : undefined

/**
 * "Thinking isn't compatible with temperature or top_k modifications … When thinking is enabled,
 * you can set top_p to values between 1 and 0.95"
 * (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility).
 */
export const thinkingSampling: Rule = (body: Body) => {
  if (!thinkingOn(body)) return undefined
  const doc =
    'Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#important-considerations-when-using-extended-thinking'
  if (body.temperature !== undefined && body.temperature !== 1)
    return `\`temperature\` may only be set to 1 when thinking is enabled. ${doc}`
  if (body.top_k !== undefined) return `\`top_k\` must be unset when thinking is enabled. ${doc}`
  if (body.top_p !== undefined && body.top_p < 0.95)
    return `\`top_p\` must be greater than or equal to 0.95 or unset when thinking is enabled. ${doc}`
  return undefined
}

/**
 * "During tool use, you must pass thinking and redacted_thinking blocks back to the API … the
 * complete unmodified block"
 * (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks):
 * when the request continues a tool-use cycle (it ends with tool results), the first assistant
 * message since the last user message that is more than tool results must start with a thinking
 * block. Wording as the API says it (https://github.com/anthropics/claude-code/issues/14264).
 */
export const thinkingFirstInToolUse: Rule = (body: Body) => {
  if (!thinkingOn(body) || !Array.isArray(body.messages)) return undefined
  const messages: Body[] = body.messages
  const blocks = (m: Body): Body[] => (Array.isArray(m.content) ? m.content : [{ type: 'text' }])
  const isResults = (m: Body): boolean => m.role === 'user' && blocks(m).some((b) => b.type === 'tool_result')
  const last = messages.at(-1)
  if (!last || !isResults(last)) return undefined
  let start = 0
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === 'user' && !isResults(messages[i]!)) {
      start = i + 1
      break
    }
  }
  const first = messages.findIndex((m, i) => i >= start && m.role === 'assistant')
  if (first < 0) return undefined
  const type = String(blocks(messages[first]!)[0]?.type)
  if (type === 'thinking' || type === 'redacted_thinking') return undefined
  return `messages.${first}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${type}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking`
}

/**
 * The stand-in's signature of a thinking text, as its replies carry it. The API checks that a
 * thinking block sent back is the one it issued ("you cannot rearrange or modify the sequence of
 * these blocks", same page): any change to the text or the signature is refused.
 */
export function sign(thinking: string): string {
  return createHash('sha256').update(`stand-in thinking:${thinking}`).digest('base64')
}

/** The encrypted thinking the stand-in's replies carry (fixture anthropic-thinking-tool-use.sse). */
export const REDACTED_DATA =
  'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj'

/** Thinking blocks sent back must be unmodified: their signature (or encrypted data) checks out. */
export const thinkingUnmodified: Rule = (body: Body) => {
  const messages: Body[] = Array.isArray(body.messages) ? body.messages : []
  for (const [i, m] of messages.entries()) {
    if (!Array.isArray(m.content)) continue
    for (const [j, b] of (m.content as Body[]).entries()) {
      if (b.type === 'thinking' && b.signature !== sign(String(b.thinking)))
        return `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`
      if (b.type === 'redacted_thinking' && b.data !== REDACTED_DATA)
        return `messages.${i}.content.${j}: Invalid \`data\` in \`redacted_thinking\` block`
    }
  }
  return undefined
}

/** Every Anthropic rule above. */
export const ANTHROPIC_REASONING_RULES: Rule[] = [
  claudeOneSampler,
  claudeNoSampling,
  claudeAdaptiveOnly,
  thinkingBudgetBelowMax,
  thinkingSampling,
  thinkingFirstInToolUse,
  thinkingUnmodified,
]

/** Every OpenAI rule above. */
export const OPENAI_REASONING_RULES: Rule[] = [
  openAiNoMaxTokens,
  openAiDefaultSampling,
  openAiEffortOnlyForReasoning,
  openAiEffortValues,
]

// ---- Gemini (its OpenAI-compatible endpoint) ----

/**
 * Gemini 3 models put a thought signature on the function calls they make, which the OpenAI-
 * compatible endpoint carries as `tool_calls[].extra_content.google.thought_signature`; the calls
 * of the turn in progress (after the last user message) must come back with it, or the request is
 * refused (https://ai.google.dev/gemini-api/docs/thought-signatures, "OpenAI compatibility").
 * Error text as users quote it (https://github.com/microsoft/copilot-intellij-feedback/issues/1381,
 * https://github.com/diegosouzapw/OmniRoute/issues/2504); Gemini wraps it in a list, the stand-in
 * in OpenAI's error object.
 */
export const geminiThoughtSignatures: Rule = (body: Body) => {
  if (!/gemini-3/.test(String(body.model))) return undefined
  const messages: Body[] = Array.isArray(body.messages) ? body.messages : []
  const lastUser = messages.map((m) => m.role).lastIndexOf('user')
  for (const [i, m] of messages.entries()) {
    if (i < lastUser || m.role !== 'assistant' || !Array.isArray(m.tool_calls)) continue
    const first = m.tool_calls[0] as Body | undefined
    if (first && typeof first.extra_content?.google?.thought_signature !== 'string') {
      return `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${first.function?.name}\`, position ${i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`
    }
  }
  return undefined
}
