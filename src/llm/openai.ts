// The `openai` wire: chat completions as spoken by OpenAI, Groq, OpenRouter, Ollama, vLLM and any
// compatible proxy. One keep-alive connection pool per provider; replies are read as they arrive.
import type { Dispatcher } from 'undici'
import { isObject } from '../util/values.js'
import type { ProviderConfig } from '../config/types.js'
import { errors, withData } from '../errors.js'
import { errorMessage, LlmEndpoint, type Body, type LlmRequestSettings, type WireOptions } from './http.js'
import { readBody, sseData } from './body.js'
import { requestFields, resentReasoning, sendsReasoningContent } from './models.js'
import { openAiParameters } from './tool-schema.js'
import type {
  FinishReason,
  ImagePart,
  LlmEvent,
  LlmMessage,
  LlmProvider,
  LlmRequest,
  ToolCall,
  Usage,
} from './types.js'
import { imagesToSend, openAiWireLimits, takesImages, type ImageLimits } from './vision.js'

/** The parts of a `chat.completion.chunk` (or a `chat.completion`) this wire reads. */
interface WireToolCall {
  index?: number
  id?: string
  function?: { name?: string; arguments?: unknown }
  /** Gemini's OpenAI-compatible API: `{google: {thought_signature}}`, to be sent back as it came. */
  extra_content?: unknown
}
/**
 * Reasoning comes as `reasoning_content` (DeepSeek, vLLM) or `reasoning` (OpenRouter, Groq,
 * Ollama), in a delta as in a whole message.
 */
interface WireMessage {
  content?: string | null
  reasoning_content?: unknown
  reasoning?: unknown
  tool_calls?: WireToolCall[]
}
interface WireChoice {
  delta?: WireMessage
  message?: WireMessage
  finish_reason?: string | null
}
interface WireReply {
  model?: string
  choices?: WireChoice[]
  usage?: unknown
  x_groq?: { usage?: unknown }
  error?: unknown
}

export class OpenAiProvider implements LlmProvider {
  readonly name: string
  readonly model: string
  readonly #provider: ProviderConfig
  readonly #http: LlmEndpoint

  constructor(provider: ProviderConfig, request: LlmRequestSettings, options: WireOptions = {}) {
    this.name = provider.name
    this.model = provider.model
    this.#provider = provider
    this.#http = new LlmEndpoint(provider.base_url, 'chat/completions', provider.api_key, request, options)
  }

  async *chat(request: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmEvent> {
    const model = request.model ?? this.model
    const res = await this.#post(request, model, signal)
    // A proxy may answer a streaming request with a plain JSON reply (or a JSON error with 200).
    const json = !request.stream || String(res.headers['content-type']).includes('json')
    yield* json ? this.#readReply(res.body, model, signal) : this.#readStream(res.body, model, signal)
  }

  async close(): Promise<void> {
    await this.#http.close()
  }

  /** Up to the status line of a 2xx, retried as long as none came. */
  #post(request: LlmRequest, model: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: request.stream ? 'text/event-stream' : 'application/json',
    }
    if (this.#provider.api_key) headers.authorization = `Bearer ${this.#provider.api_key}`
    return this.#http.post(headers, this.#body(request, model), signal)
  }

  #body(request: LlmRequest, model: string): Record<string, unknown> {
    const p = this.#provider
    const echo = sendsReasoningContent(p.name)
    const body: Record<string, unknown> = {
      model,
      messages: toWireMessages(
        request.messages,
        takesImages(p, model) ? openAiWireLimits(p) : undefined,
        echo,
      ),
      // The reply limit in the field this provider expects, and only the settings the model takes.
      ...requestFields(p, model).fields,
    }
    if (request.tools?.length) {
      body.tools = request.tools.map((t) => ({
        type: 'function',
        function: { name: t.name, description: t.description, parameters: openAiParameters(t.input_schema) },
      }))
    }
    body.stream = request.stream
    if (request.stream) body.stream_options = { include_usage: true }
    return body
  }

  async *#readStream(body: Body, model: string, signal: AbortSignal): AsyncGenerator<LlmEvent> {
    const reply = new ReplyState(model, (t) => this.#http.redact(t))
    let finished = false
    for await (const data of sseData(body, signal, this.#http.limits, () => finished)) {
      if (data === '[DONE]') {
        finished = true
        break
      }
      const { reasoning, text } = reply.add(parseEvent(data))
      if (reasoning) yield { type: 'reasoning', text: reasoning }
      if (text) yield { type: 'text', text }
    }
    // Some servers end without [DONE]: the finish reason says the answer is whole.
    if (!finished && !reply.finish)
      throw new errors.LLM_STREAM_BROKEN('the stream ended before the answer was complete')
    yield* reply.end()
  }

  async *#readReply(body: Body, model: string, signal: AbortSignal): AsyncGenerator<LlmEvent> {
    const text = await readBody(body, signal, this.#http.limits)
    const json = parseJson(text)
    if (json === undefined) throw new errors.LLM_BAD_RESPONSE('the reply is not JSON')
    if (json.error !== undefined) {
      const message = this.#http.redact(errorMessage(json.error) ?? 'unknown error')
      throw withData(new errors.LLM_UPSTREAM_ERROR(message), {
        upstream_status: 200,
        upstream_message: message,
      })
    }
    const choice = Array.isArray(json.choices) ? json.choices[0] : undefined
    if (!choice?.message) throw new errors.LLM_BAD_RESPONSE('the reply has no choices')
    const reply = new ReplyState(model, (t) => this.#http.redact(t))
    reply.add({ model: json.model, usage: json.usage, x_groq: json.x_groq })
    const reasoning = reply.addReasoning(choice.message)
    if (reasoning) yield { type: 'reasoning', text: reasoning }
    const content = choice.message.content
    if (typeof content === 'string' && content) yield { type: 'text', text: content }
    reply.addToolCalls(choice.message.tool_calls)
    reply.finish = choice.finish_reason ?? 'stop'
    yield* reply.end()
  }
}

/** Accumulates what the chunks of one reply say; emits the tool calls and `done` at the end. */
class ReplyState {
  finish: string | undefined
  usage: Usage | undefined
  readonly #calls = new Map<number, ToolCall>()
  /** What came as `reasoning_content`: given back so by the servers that need it (see toWireMessage). */
  #reasoningContent = ''

  constructor(
    public model: string,
    readonly redact: (text: string) => string,
  ) {}

  /** Takes in one chunk; returns its reasoning and text deltas, if any. */
  add(chunk: WireReply): { reasoning?: string; text?: string } {
    if (chunk.error !== undefined) {
      const e = chunk.error as { type?: unknown; code?: unknown }
      const message = this.redact(errorMessage(chunk.error) ?? 'unknown error')
      throw withData(new errors.LLM_STREAM_BROKEN(message), {
        upstream_message: message,
        upstream_type: typeof e.type === 'string' ? e.type : typeof e.code === 'string' ? e.code : undefined,
      })
    }
    if (typeof chunk.model === 'string' && chunk.model) this.model = chunk.model
    this.usage = toUsage(chunk.usage) ?? toUsage(chunk.x_groq?.usage) ?? this.usage
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined
    if (!choice) return {}
    this.addToolCalls(choice.delta?.tool_calls)
    if (choice.finish_reason) this.finish = choice.finish_reason
    const content = choice.delta?.content
    return {
      reasoning: choice.delta ? this.addReasoning(choice.delta) : undefined,
      text: typeof content === 'string' && content ? content : undefined,
    }
  }

  /**
   * The reasoning of a delta or a message. A server that sends both fields sends the same text in
   * each (vLLM kept `reasoning_content` when it named it `reasoning`): one is taken.
   */
  addReasoning(message: WireMessage): string | undefined {
    const { reasoning_content: content, reasoning } = message
    if (typeof content === 'string' && content) {
      this.#reasoningContent += content
      return content
    }
    return typeof reasoning === 'string' && reasoning ? reasoning : undefined
  }

  /** Fragments are keyed by `index`: id and name come with the first, arguments are concatenated. */
  addToolCalls(fragments: WireToolCall[] | undefined): void {
    if (!Array.isArray(fragments)) return
    for (const f of fragments) {
      // Some compatible servers omit `index`: a fragment with an id starts a new call.
      const index =
        typeof f.index === 'number' ? f.index : f.id ? this.#calls.size : Math.max(0, this.#calls.size - 1)
      let call = this.#calls.get(index)
      if (!call) {
        call = { id: '', name: '', arguments: '' }
        this.#calls.set(index, call)
      }
      if (!call.id && f.id) call.id = f.id
      if (!call.name && f.function?.name) call.name = f.function.name
      const args = f.function?.arguments
      if (typeof args === 'string') call.arguments += args
      else if (args !== undefined && args !== null) call.arguments += JSON.stringify(args)
      if (isObject(f.extra_content)) call.extra_content = { ...call.extra_content, ...f.extra_content }
    }
  }

  *end(): Generator<LlmEvent> {
    if (this.#reasoningContent) {
      yield { type: 'reasoning_part', part: { type: 'reasoning_content', text: this.#reasoningContent } }
    }
    const calls = [...this.#calls.entries()].sort(([a], [b]) => a - b)
    for (const [index, call] of calls) {
      if (!call.name) throw new errors.LLM_BAD_RESPONSE(`tool call ${index} has no name`)
      yield { type: 'tool_call', call: { ...call, id: call.id || `call_${index}` } }
    }
    let finish_reason = toFinishReason(this.finish)
    // Ollama has said `stop` for a reply with tool calls; the calls are what counts.
    if (finish_reason === 'stop' && calls.length) finish_reason = 'tool_calls'
    const done: LlmEvent = { type: 'done', finish_reason, model: this.model }
    if (this.usage) done.usage = this.usage
    yield done
  }
}

/**
 * Our messages as chat completions'. A tool message holds text only ("Image URLs are only allowed
 * for messages with role 'user'"), so the images of a run of tool results go in one user message
 * right after the run, as image_url parts with data: URLs, each group named by its call; the tool
 * messages themselves describe the images, which is all a model without vision gets.
 * `echoReasoning`: see toWireMessage.
 */
function toWireMessages(
  messages: LlmMessage[],
  limits: ImageLimits | undefined,
  echoReasoning: boolean,
): Record<string, unknown>[] {
  const send = imagesToSend(messages, limits)
  const out: Record<string, unknown>[] = []
  let parts: Record<string, unknown>[] = []
  const flush = (): void => {
    if (parts.length) out.push({ role: 'user', content: parts })
    parts = []
  }
  for (const m of messages) {
    if (m.role !== 'tool') flush()
    out.push(toWireMessage(m, echoReasoning))
    if (m.role === 'tool') parts.push(...imageParts(m, send))
  }
  flush()
  return out
}

function imageParts(
  m: Extract<LlmMessage, { role: 'tool' }>,
  send: Set<ImagePart>,
): Record<string, unknown>[] {
  const shown = (m.images ?? []).filter((image) => send.has(image))
  if (!shown.length) return []
  const noun = shown.length === 1 ? 'The image' : `The ${shown.length} images`
  return [
    { type: 'text', text: `${noun} of the tool result ${m.tool_call_id}:` },
    ...shown.map((image) => ({
      type: 'image_url',
      image_url: { url: `data:${image.mime_type};base64,${image.data}` },
    })),
  ]
}

/**
 * `echoReasoning`: an assistant message's tool calls go with the `reasoning_content` they came with
 * (DeepSeek refuses them without it; see sendsReasoningContent).
 */
function toWireMessage(m: LlmMessage, echoReasoning: boolean): Record<string, unknown> {
  if (m.role === 'tool') return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content }
  if (m.role === 'assistant' && m.tool_calls?.length) {
    const message: Record<string, unknown> = {
      role: 'assistant',
      content: m.content || null,
      tool_calls: m.tool_calls.map((c) => ({
        id: c.id,
        type: 'function',
        function: { name: c.name, arguments: c.arguments },
        // Given back as it came: Gemini 3 refuses a call of this turn without its thought signature
        // (https://ai.google.dev/gemini-api/docs/thought-signatures).
        ...(c.extra_content === undefined ? {} : { extra_content: c.extra_content }),
      })),
    }
    const reasoning = echoReasoning ? resentReasoning(m.reasoning) : ''
    if (reasoning) message.reasoning_content = reasoning
    return message
  }
  return { role: m.role, content: m.content }
}

function toFinishReason(reason: string | undefined): FinishReason {
  return reason === 'tool_calls' || reason === 'length' || reason === 'content_filter' ? reason : 'stop'
}

function toUsage(u: unknown): Usage | undefined {
  if (typeof u !== 'object' || u === null) return undefined
  const { prompt_tokens, completion_tokens, total_tokens } = u as Record<string, unknown>
  if (typeof prompt_tokens !== 'number' || typeof completion_tokens !== 'number') return undefined
  return {
    prompt_tokens,
    completion_tokens,
    total_tokens: typeof total_tokens === 'number' ? total_tokens : prompt_tokens + completion_tokens,
  }
}

function parseJson(text: string): WireReply | undefined {
  try {
    const value = JSON.parse(text) as unknown
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined
  } catch {
    return undefined
  }
}

function parseEvent(data: string): WireReply {
  const chunk = parseJson(data)
  if (!chunk) throw new errors.LLM_BAD_RESPONSE(`a stream event is not a JSON object: ${data.slice(0, 200)}`)
  return chunk
}
