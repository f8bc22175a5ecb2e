// The `anthropic` wire: Anthropic's messages API. Same shape as the openai wire (one pool per
// provider, replies read as they arrive); what differs is the vocabulary: a top-level system
// prompt, content blocks instead of roles for tool calls and results, and named stream events.
import type { Dispatcher } from 'undici'
import type { ProviderConfig } from '../config/types.js'
import { errors, withData } from '../errors.js'
import { errorMessage, LlmEndpoint, type Body, type LlmRequestSettings, type WireOptions } from './http.js'
import { readBody, sseData } from './body.js'
import { requestFields } from './models.js'
import { anthropicInputSchema } from './tool-schema.js'
import type {
  FinishReason,
  ImagePart,
  LlmEvent,
  LlmMessage,
  LlmProvider,
  LlmRequest,
  ReasoningPart,
  ToolCall,
  Usage,
} from './types.js'
import { ANTHROPIC_IMAGE_LIMITS, imagesToSend, takesImages } from './vision.js'
import type { ImageType } from '../util/image.js'
import { isObject } from '../util/values.js'

/** The API version this wire is written against; Anthropic keeps old versions' behaviour stable. */
export const ANTHROPIC_VERSION = '2023-06-01'

/** The parts of a message, a content block or a stream event this wire reads. */
interface WireUsage {
  input_tokens?: unknown
  output_tokens?: unknown
  cache_creation_input_tokens?: unknown
  cache_read_input_tokens?: unknown
}
interface WireBlock {
  type?: unknown
  text?: unknown
  id?: unknown
  name?: unknown
  input?: unknown
  /** thinking blocks: the text and the signature that authenticates it. */
  thinking?: unknown
  signature?: unknown
  /** redacted_thinking blocks: the encrypted thinking. */
  data?: unknown
}
interface WireMessage {
  type?: unknown
  model?: unknown
  content?: unknown
  stop_reason?: unknown
  usage?: WireUsage
  error?: unknown
}
interface WireEvent {
  type?: unknown
  message?: WireMessage
  index?: unknown
  content_block?: WireBlock
  delta?: {
    type?: unknown
    text?: unknown
    partial_json?: unknown
    thinking?: unknown
    signature?: unknown
    stop_reason?: unknown
  }
  usage?: WireUsage
  error?: unknown
}

type TextBlock = { type: 'text'; text: string }
/** Only base64 sources: the images come from tool results, not from URLs. */
type ImageBlock = { type: 'image'; source: { type: 'base64'; media_type: ImageType; data: string } }
type ContentBlock =
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'redacted_thinking'; data: string }
  | TextBlock
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | {
      type: 'tool_result'
      tool_use_id: string
      /** A string, or text and image blocks when the model is sent the tool's images. */
      content?: string | (TextBlock | ImageBlock)[]
      is_error?: boolean
    }

interface AnthropicMessage {
  role: 'user' | 'assistant'
  content: ContentBlock[]
}

export class AnthropicProvider implements LlmProvider {
  readonly name: string
  readonly model: string
  readonly #provider: ProviderConfig
  readonly #http: LlmEndpoint

  constructor(provider: ProviderConfig, request: LlmRequestSettings, options: WireOptions = {}) {
    this.name = provider.name
    this.model = provider.model
    this.#provider = provider
    this.#http = new LlmEndpoint(provider.base_url, 'messages', provider.api_key, request, options)
  }

  async *chat(request: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmEvent> {
    const model = request.model ?? this.model
    const res = await this.#post(request, model, signal)
    // A proxy may answer a streaming request with a whole JSON message (or a JSON error with 200).
    const json = !request.stream || String(res.headers['content-type']).includes('json')
    yield* json ? this.#readReply(res.body, model, signal) : this.#readStream(res.body, model, signal)
  }

  async close(): Promise<void> {
    await this.#http.close()
  }

  /** The HTTP exchange up to a 2xx status line; retries and error mapping are the shared module's. */
  async #post(request: LlmRequest, model: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: request.stream ? 'text/event-stream' : 'application/json',
      'anthropic-version': ANTHROPIC_VERSION,
    }
    if (this.#provider.api_key) headers['x-api-key'] = this.#provider.api_key
    return this.#http.post(headers, this.#body(request, model), signal)
  }

  #body(request: LlmRequest, model: string): Record<string, unknown> {
    const p = this.#provider
    // max_tokens, the sampling settings and thinking the model takes (models.ts).
    const { fields, thinking } = requestFields(p, model)
    const { system, messages } = toAnthropicMessages(request.messages, thinking, takesImages(p, model))
    const body: Record<string, unknown> = { model, ...fields }
    if (system) body.system = system
    body.messages = messages
    if (request.tools?.length) {
      body.tools = request.tools.map((t) => ({
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        input_schema: anthropicInputSchema(t.input_schema),
      }))
    }
    body.stream = request.stream
    return body
  }

  async *#readStream(body: Body, model: string, signal: AbortSignal): AsyncGenerator<LlmEvent> {
    const reply = new ReplyState(model, (t) => this.#http.redact(t))
    for await (const data of sseData(body, signal, this.#http.limits, () => reply.stopped)) {
      const { reasoning, text } = reply.add(parseObject(data, 'a stream event'))
      if (reasoning) yield { type: 'reasoning', text: reasoning }
      if (text) yield { type: 'text', text }
      if (reply.stopped) break
    }
    // Without message_stop the reply may be cut anywhere, even inside a tool call's input.
    if (!reply.stopped) throw new errors.LLM_STREAM_BROKEN('the stream ended before message_stop')
    yield* reply.end()
  }

  async *#readReply(body: Body, model: string, signal: AbortSignal): AsyncGenerator<LlmEvent> {
    const text = await readBody(body, signal, this.#http.limits)
    const message = parseObject(text, 'the reply') as WireMessage
    if (message.type === 'error' || message.error !== undefined) {
      const upstream = this.#http.redact(errorMessage(message.error) ?? 'unknown error')
      throw withData(new errors.LLM_UPSTREAM_ERROR(upstream), {
        upstream_status: 200,
        upstream_message: upstream,
      })
    }
    const reply = new ReplyState(model, (t) => this.#http.redact(t))
    const { reasoning, text: whole } = reply.addMessage(message)
    if (reasoning) yield { type: 'reasoning', text: reasoning }
    if (whole) yield { type: 'text', text: whole }
    yield* reply.end()
  }
}

/** A tool_use block as it arrives: its input is either streamed as JSON text or given whole. */
interface PendingCall {
  id: string
  name: string
  json: string
  input: unknown
}

/** Accumulates the events (or the content) of one message; emits the tool calls and `done` at the end. */
class ReplyState {
  stopped = false
  #stopReason: string | undefined
  readonly #usage: { input?: number; output?: number; cacheCreation?: number; cacheRead?: number } = {}
  /** Keyed by content block index, the order the model wrote them in. */
  readonly #calls = new Map<number, PendingCall>()
  /** Thinking and redacted_thinking blocks, by index: sent back with tool results as they came. */
  readonly #thinking = new Map<number, ReasoningPart>()

  constructor(
    public model: string,
    readonly redact: (text: string) => string,
  ) {}

  /**
   * Takes in one stream event; returns its reasoning or text, if any. Unknown event types are
   * skipped, as documented.
   */
  add(event: WireEvent): { reasoning?: string; text?: string } {
    switch (event.type) {
      case 'message_start':
        if (event.message) this.#addHeader(event.message)
        return {}
      case 'content_block_start':
        return this.#addBlock(blockIndex(event.index), event.content_block)
      case 'content_block_delta': {
        const delta = event.delta
        if (delta?.type === 'text_delta')
          return { text: typeof delta.text === 'string' ? delta.text : undefined }
        const index = blockIndex(event.index)
        const thinking = this.#thinking.get(index)
        if (thinking?.type === 'thinking') {
          if (delta?.type === 'thinking_delta' && typeof delta.thinking === 'string') {
            thinking.thinking += delta.thinking
            return { reasoning: delta.thinking }
          }
          if (delta?.type === 'signature_delta' && typeof delta.signature === 'string') {
            thinking.signature += delta.signature
          }
          return {}
        }
        // Deltas of blocks that are not ours (server tools) are ignored with their blocks.
        const call = this.#calls.get(index)
        if (delta?.type === 'input_json_delta' && call && typeof delta.partial_json === 'string') {
          call.json += delta.partial_json
        }
        return {}
      }
      case 'message_delta':
        if (typeof event.delta?.stop_reason === 'string') this.#stopReason = event.delta.stop_reason
        this.#addUsage(event.usage)
        return {}
      case 'message_stop':
        this.stopped = true
        return {}
      case 'error': {
        const error = event.error as { type?: unknown } | undefined
        const message = this.redact(errorMessage(event.error) ?? 'unknown error')
        throw withData(new errors.LLM_STREAM_BROKEN(message), {
          upstream_message: message,
          upstream_type: typeof error?.type === 'string' ? error.type : undefined,
        })
      }
      default:
        // ping, content_block_stop and event types added later carry nothing to act on.
        return {}
    }
  }

  /** Takes in a whole (non-streaming) message; returns its thinking and its text blocks, each joined. */
  addMessage(message: WireMessage): { reasoning: string; text: string } {
    if (!Array.isArray(message.content)) throw new errors.LLM_BAD_RESPONSE('the reply has no content')
    this.#addHeader(message)
    if (typeof message.stop_reason === 'string') this.#stopReason = message.stop_reason
    let reasoning = ''
    let text = ''
    ;(message.content as WireBlock[]).forEach((block, index) => {
      const said = this.#addBlock(index, block)
      reasoning += said.reasoning ?? ''
      text += said.text ?? ''
    })
    return { reasoning, text }
  }

  *end(): Generator<LlmEvent> {
    for (const [, part] of [...this.#thinking.entries()].sort(([a], [b]) => a - b)) {
      yield { type: 'reasoning_part', part }
    }
    const calls = [...this.#calls.entries()].sort(([a], [b]) => a - b)
    for (const [index, call] of calls) {
      if (!call.name) throw new errors.LLM_BAD_RESPONSE(`tool_use block ${index} has no name`)
      yield { type: 'tool_call', call: toToolCall(call, index) }
    }
    let finish_reason = toFinishReason(this.#stopReason)
    if (finish_reason === 'stop' && calls.length) finish_reason = 'tool_calls'
    const done: LlmEvent = { type: 'done', finish_reason, model: this.model }
    const usage = this.#total()
    if (usage) done.usage = usage
    yield done
  }

  #addHeader(message: WireMessage): void {
    if (typeof message.model === 'string' && message.model) this.model = message.model
    this.#addUsage(message.usage)
  }

  #addBlock(index: number, block: WireBlock | undefined): { reasoning?: string; text?: string } {
    if (block?.type === 'text')
      return { text: typeof block.text === 'string' && block.text ? block.text : undefined }
    if (block?.type === 'thinking') {
      // Streamed, it starts empty and grows by thinking_delta and signature_delta; whole, it is complete.
      const thinking = typeof block.thinking === 'string' ? block.thinking : ''
      const signature = typeof block.signature === 'string' ? block.signature : ''
      this.#thinking.set(index, { type: 'thinking', thinking, signature })
      return { reasoning: thinking || undefined }
    }
    if (block?.type === 'redacted_thinking') {
      // Encrypted: nothing to show, but it goes back as it came.
      this.#thinking.set(index, {
        type: 'redacted_thinking',
        data: typeof block.data === 'string' ? block.data : '',
      })
      return {}
    }
    if (block?.type === 'tool_use') {
      this.#calls.set(index, {
        id: typeof block.id === 'string' ? block.id : '',
        name: typeof block.name === 'string' ? block.name : '',
        json: '',
        input: block.input,
      })
    }
    return {}
  }

  /** Counts are running totals: the latest of each wins (message_delta repeats or raises them). */
  #addUsage(usage: WireUsage | undefined): void {
    if (!usage) return
    const u = this.#usage
    if (typeof usage.input_tokens === 'number') u.input = usage.input_tokens
    if (typeof usage.output_tokens === 'number') u.output = usage.output_tokens
    if (typeof usage.cache_creation_input_tokens === 'number')
      u.cacheCreation = usage.cache_creation_input_tokens
    if (typeof usage.cache_read_input_tokens === 'number') u.cacheRead = usage.cache_read_input_tokens
  }

  /** Cached prompt tokens are still prompt tokens: Anthropic counts them apart from input_tokens. */
  #total(): Usage | undefined {
    const u = this.#usage
    if (u.input === undefined && u.output === undefined) return undefined
    const prompt_tokens = (u.input ?? 0) + (u.cacheCreation ?? 0) + (u.cacheRead ?? 0)
    const completion_tokens = u.output ?? 0
    return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
  }
}

function toToolCall(call: PendingCall, index: number): ToolCall {
  let args = call.json
  // No input_json_delta (a non-streaming reply, or a tool without arguments): the block's own input.
  if (!args) args = isObject(call.input) && Object.keys(call.input).length ? JSON.stringify(call.input) : '{}'
  return { id: call.id || `toolu_${index}`, name: call.name, arguments: args }
}

/**
 * Our messages as Anthropic's: system messages become the top-level `system`, tool calls
 * `tool_use` blocks of the assistant, tool results `tool_result` blocks of a user message (with
 * their images as image blocks when the model takes images, and `is_error` when the tool failed),
 * and consecutive messages of one role a single message, since the roles must alternate.
 */
function toAnthropicMessages(
  messages: LlmMessage[],
  thinking = false,
  vision = false,
): { system: string; messages: AnthropicMessage[] } {
  const images = imagesToSend(messages, vision ? ANTHROPIC_IMAGE_LIMITS : undefined)
  const system: string[] = []
  const out: AnthropicMessage[] = []
  const push = (role: AnthropicMessage['role'], blocks: ContentBlock[]): void => {
    // A message with no blocks is refused; one of our own with only whitespace says nothing anyway.
    if (!blocks.length) return
    const last = out.at(-1)
    if (last?.role === role) last.content.push(...blocks)
    else out.push({ role, content: blocks })
  }
  for (const m of messages) {
    if (m.role === 'system') {
      if (m.content.trim()) system.push(m.content)
    } else if (m.role === 'user') {
      push('user', textBlocks(m.content))
    } else if (m.role === 'tool') {
      push('user', [toolResult(m, images)])
    } else {
      const calls = (m.tool_calls ?? []).map((c): ContentBlock => ({
        type: 'tool_use',
        id: c.id,
        name: c.name,
        input: toolInput(c.arguments),
      }))
      push('assistant', [...thinkingBlocks(m.reasoning), ...textBlocks(m.content), ...calls])
    }
  }
  keepCurrentThinking(out, thinking)
  return { system: system.join('\n\n'), messages: out }
}

function toolResult(m: Extract<LlmMessage, { role: 'tool' }>, images: Set<ImagePart>): ContentBlock {
  const shown = (m.images ?? []).filter((image) => images.has(image))
  const content = shown.length
    ? [
        ...textBlocks(m.content),
        ...shown.map((image): ImageBlock => ({
          type: 'image',
          source: { type: 'base64', media_type: image.mime_type, data: image.data },
        })),
      ]
    : m.content
  return {
    type: 'tool_result',
    tool_use_id: m.tool_call_id,
    // An empty `content` is refused where an absent one is not.
    ...(content.length ? { content } : {}),
    ...(m.is_error ? { is_error: true } : {}),
  }
}

/** A reply's thinking and redacted_thinking blocks, unmodified and in their order, as they came. */
function thinkingBlocks(parts: ReasoningPart[] | undefined): ContentBlock[] {
  const blocks: ContentBlock[] = []
  for (const p of parts ?? []) {
    if (p.type === 'thinking') blocks.push({ type: 'thinking', thinking: p.thinking, signature: p.signature })
    else if (p.type === 'redacted_thinking') blocks.push({ type: 'redacted_thinking', data: p.data })
  }
  return blocks
}

/**
 * With thinking on, the assistant messages of the tool-use cycle being continued (those after the
 * last user message that is more than tool results) must start with their thinking blocks, signed
 * and unmodified: "When `thinking` is enabled, a final `assistant` message must start with a
 * thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)"
 * (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks).
 * Earlier assistant messages' thinking may be left out, as the same page says, and is: it would
 * only take room. Without thinking none is sent.
 */
function keepCurrentThinking(out: AnthropicMessage[], thinking: boolean): void {
  let cycle = out.length
  if (thinking) {
    cycle = 0
    for (let i = out.length - 1; i >= 0; i--) {
      const m = out[i]!
      if (m.role === 'user' && !m.content.some((b) => b.type === 'tool_result')) {
        cycle = i + 1
        break
      }
    }
  }
  out.forEach((m, i) => {
    if (i >= cycle || m.role !== 'assistant') return
    m.content = m.content.filter((b) => b.type !== 'thinking' && b.type !== 'redacted_thinking')
  })
}

/** Anthropic refuses empty and whitespace-only text blocks. */
function textBlocks(text: string): TextBlock[] {
  return text.trim() ? [{ type: 'text', text }] : []
}

/**
 * `tool_use.input` must be an object. Arguments the model wrote as invalid JSON (or as a non-object)
 * go back as `{}`: the tool result that follows already tells the model its arguments were invalid,
 * and inventing a text block it never wrote would misquote it.
 */
function toolInput(args: string): Record<string, unknown> {
  try {
    const value = JSON.parse(args) as unknown
    if (isObject(value)) return value
  } catch {
    // Falls through to the empty object.
  }
  return {}
}

function toFinishReason(reason: string | undefined): FinishReason {
  switch (reason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length'
    case 'tool_use':
      return 'tool_calls'
    case 'refusal':
      return 'content_filter'
    default:
      // end_turn, stop_sequence, pause_turn and reasons added later.
      return 'stop'
  }
}

function blockIndex(index: unknown): number {
  return typeof index === 'number' ? index : 0
}

function parseObject(text: string, what: string): WireEvent & WireMessage {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  if (!isObject(value))
    throw new errors.LLM_BAD_RESPONSE(`${what} is not a JSON object: ${text.slice(0, 200)}`)
  return value
}
