// One chat turn, from the user's text to the stored answer, free of Fastify and of WebSocket
// details: the service gives it a way to emit frames and an AbortSignal, and gets the `complete`
// metadata back or an error thrown. Tool calls of one LLM reply run concurrently; their results go
// back to the LLM until it answers without tools or `max_tool_hops` rounds have run.
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { PlatformConfig } from '../config/types.js'
import { errors } from '../errors.js'
import type {
  FinishReason,
  LlmMessage,
  LlmProvider,
  ReasoningPart,
  ToolCall,
  ToolSpec,
  Usage,
} from '../llm/types.js'
import { describeError, type Logger } from '../logging.js'
import type { McpContent, RegisteredTool, ToolRunner } from '../mcp/types.js'
import type { ChatEvent, ChatStore, EventFinishReason, NewEvent } from '../store/types.js'
import { buildContext, checkFixed } from '../tokens/context.js'
import { countMessage, countTokens, countTools, encodingFor, REPLY_PRIMING } from '../tokens/counter.js'
import { attachedChars, fetchAttachments, namesAttachments } from './attachments.js'
import type { FairGate } from './fair-gate.js'
import { messagesOf, toHistory, userMessages } from './messages.js'
import type { ChatPayload } from './protocol.js'
import type { ChatMetadata, ChunkBody } from './server-frames.js'
import { RequestStopped } from './requests.js'

export interface TurnRequest {
  principal: string
  request_id: string
  payload: ChatPayload
}

export interface TurnEmitter {
  processing(metadata: { conversation_id: string }): void
  chunk(chunk: ChunkBody): void
  /**
   * Resolves when the client has taken in what was sent (at once while it keeps up), or when the
   * signal fires. Awaited between LLM deltas, so a slow client slows the reading of the provider.
   */
  drained?(signal: AbortSignal): Promise<void>
}

/** What a turn uses, handed down by the service. */
export interface TurnDeps {
  store: ChatStore
  llm: LlmProvider
  /** The MCP tools offered to the LLM; none when absent. */
  tools?: ToolRunner
  /** The MCP prompts and resources a chat may attach; none when absent. */
  content?: McpContent
  settings: PlatformConfig['chat']['service']
  log: Logger
  /** DEBUG_TOKENS=1: log each turn's token accounting. */
  debugTokens?: boolean
  /** Stored with the turn: the service's instance and this attempt (see instance.ts). */
  instance: string
  /**
   * Takes a conversation for this turn (one turn at a time each); false when another turn of this
   * process has it. A retry continues the conversation of its first attempt, which may be another.
   */
  claim: (conversationId: string) => boolean
  /** Bounds the LLM requests of the process, served fairly between principals; none: unbounded. */
  gate?: FairGate
}

/** The longest token of cl100k_base and o200k_base, in bytes (so at most as many characters). */
const MAX_TOKEN_CHARS = 128

/** How a turn ended: what the LLM said, or the hop limit (stored with the answer, replayed with it). */
export type TurnFinish = EventFinishReason

/** What one LLM call said. */
interface Reply {
  text: string
  /** The reasoning text it showed (sent as `reasoning` chunks, stored with its event). */
  reasoning: string
  /** Its reasoning as the provider needs it back with the results of its calls. */
  parts: ReasoningPart[]
  calls: ToolCall[]
  finish: FinishReason
}

/** The state of one running turn. */
export class Turn {
  model: string
  finish: TurnFinish | undefined
  usage: Usage | undefined
  hops = 0
  conversationId: string
  readonly #deps: TurnDeps
  readonly request: TurnRequest
  readonly #emit: TurnEmitter
  readonly #signal: AbortSignal
  readonly #create: boolean
  readonly #started = performance.now()
  #firstToken: number | undefined
  #llmMs = 0
  #toolMs = 0
  /** The text of the reply being streamed, kept if the turn is cut short. */
  #partial = ''
  /** Its reasoning so far, kept with it. */
  #partialReasoning = ''
  #began = false
  /**
   * The turn's tool calls and results not yet stored: they are written with the turn's answer (or
   * with what it said, if it ends unfinished), in one write (docs/store.md, "When a turn is
   * stored"). Closed (undefined) once the turn's last write is under way, so a tool that answers
   * after that is not stored; given back if that write fails.
   */
  #unstored: NewEvent[] | undefined = []
  #toolList: { available: RegisteredTool[]; specs: ToolSpec[] } | undefined
  /**
   * The tokens of the first `messages` messages of the LLM request, with the tools and the reply
   * priming, as the context build counted them: a provider that reports no usage has the rest
   * counted as it comes, never the whole request again.
   */
  #prompt = { tokens: 0, messages: 0, encoding: '' }

  constructor(deps: TurnDeps, request: TurnRequest, emit: TurnEmitter, signal: AbortSignal) {
    this.#deps = deps
    this.request = request
    this.#emit = emit
    this.#signal = signal
    this.#create = request.payload.conversation_id === undefined
    this.conversationId = request.payload.conversation_id ?? `c-${randomUUID()}`
    this.model = request.payload.model ?? deps.llm.model
  }

  timings(): Record<string, number | undefined> {
    const ms = (t: number | undefined) => (t === undefined ? undefined : Math.round(t))
    return {
      first_token_ms: ms(this.#firstToken === undefined ? undefined : this.#firstToken - this.#started),
      llm_ms: ms(this.#llmMs),
      tools_ms: ms(this.#toolMs),
      total_ms: ms(performance.now() - this.#started),
    }
  }

  async run(): Promise<ChatMetadata> {
    const { store, settings } = this.#deps
    const { principal, request_id, payload } = this.request
    if (namesAttachments(payload)) {
      // Its prompt and resources are fetched only for a request that will run: one already
      // answered is replayed from what the store holds (their server may be gone since; the
      // conversation may be busy), one running elsewhere is a 409. beginTurn below stays the one
      // atomic check.
      const peek = await store.peekRequest(principal, request_id)
      if (peek.state === 'finished') return this.#replay(peek.events)
      if (peek.state === 'running') throw new errors.REQUEST_IN_PROGRESS(request_id)
    }
    if (!this.#deps.claim(this.conversationId)) throw new errors.CONVERSATION_BUSY(this.conversationId)
    // Fetched before the turn is stored: they are part of what the user said.
    const attachments = await fetchAttachments(this.#deps.content, payload, this.#signal)
    const budget = settings.context.max_tokens - settings.context.reserve_tokens
    // No token is longer than MAX_TOKEN_CHARS characters: past this, no counting is needed to know.
    const chars = attachedChars(attachments)
    if (chars > budget * MAX_TOKEN_CHARS) {
      throw new errors.ATTACHMENTS_TOO_LARGE(chars, budget)
    }
    const message = this.#event({
      type: 'user_message',
      role: 'user',
      content: payload.text,
      status: 'complete',
      ...(attachments ? { attachments } : {}),
    })
    // A message that cannot fit whatever the history is refused before it is stored: stored, it
    // would be history sent with every later turn of the conversation.
    this.#checkFits(message)
    const began = await store.beginTurn({ ...message, instance: this.#deps.instance }, this.#create)
    if (began.outcome === 'not_found') throw new errors.CONVERSATION_NOT_FOUND(this.conversationId)
    if (began.outcome === 'duplicate') {
      // Finished: answered again from the store. Otherwise a live instance is running it.
      if (!isFinished(began.events)) throw new errors.REQUEST_IN_PROGRESS(request_id)
      return this.#replay(began.events)
    }
    this.#began = true
    this.conversationId = began.event.conversation_id
    if (!this.#deps.claim(this.conversationId)) throw new errors.CONVERSATION_BUSY(this.conversationId)
    this.#emit.processing({ conversation_id: this.conversationId })

    const stored = await store.history(principal, this.conversationId)
    // Earlier attempts of this same request are not history of itself.
    const history = (stored ?? []).filter((e) => e.request_id !== request_id)
    const { available, specs } = this.#tools()
    const user = userMessages(payload.text, attachments)
    const { messages, accounting } = buildContext({
      system: settings.system_prompt,
      tools: specs,
      history: toHistory(history),
      user: user.at(-1)!.content,
      userLeads: user.slice(0, -1),
      userTokens: began.event.token_count,
      model: this.model,
      maxTokens: settings.context.max_tokens,
      reserveTokens: settings.context.reserve_tokens,
      preserveRecent: settings.context.preserve_recent,
    })
    if (this.#deps.debugTokens) {
      this.#deps.log.info(
        { request_id, conversation_id: this.conversationId, tokens: accounting },
        'token accounting',
      )
    }
    this.#prompt = { tokens: accounting.total, messages: messages.length, encoding: encodingFor(this.model) }
    const serverOf = new Map(available.map((t) => [t.name, t.server]))
    const answer = await this.#converse(messages, specs, serverOf)
    await this.#storeLast({
      ...this.#event({
        type: 'assistant_message',
        role: 'assistant',
        content: answer.text,
        status: 'complete',
        ...(answer.reasoning ? { reasoning: answer.reasoning } : {}),
      }),
      model: this.model,
      usage: this.usage,
      finish_reason: this.finish,
    })
    return {
      conversation_id: this.conversationId,
      model: this.model,
      tokens: this.usage?.total_tokens,
      usage: this.usage,
      finish_reason: this.finish ?? 'stop',
      tool_hops: this.hops,
      duration_ms: Math.round(performance.now() - this.#started),
    }
  }

  /**
   * A turn that began and did not finish keeps what was said so far, marked as such. A failure to
   * store that is logged, never thrown: the client is owed the error that ended the turn.
   */
  async storeUnfinished(err: unknown): Promise<void> {
    if (!this.#began) return
    // Stopped (cancelled, timed out) or cut off mid-answer: what was said stands, unfinished.
    const stopped = err instanceof RequestStopped || (this.#signal.aborted && err === this.#signal.reason)
    const status = stopped || this.#partial ? 'interrupted' : 'error'
    try {
      const reasoning = this.#partialReasoning
      await this.#storeLast(
        this.#event({
          type: 'assistant_message',
          role: 'assistant',
          content: this.#partial,
          status,
          ...(reasoning ? { reasoning } : {}),
        }),
      )
    } catch (storeErr) {
      this.#deps.log.error(
        {
          request_id: this.request.request_id,
          conversation_id: this.conversationId,
          error: describeError(storeErr),
        },
        'unfinished turn not stored',
      )
    }
  }

  /**
   * The turn's last write: its tool calls and results not yet stored, then how it ended, in one
   * append. Failed, it leaves them unstored, for storeUnfinished to write with what it says.
   */
  async #storeLast(last: NewEvent): Promise<void> {
    const events = [...(this.#unstored ?? []), last]
    this.#unstored = undefined
    try {
      await this.#deps.store.append(events)
    } catch (err) {
      this.#unstored = events.slice(0, -1)
      throw err
    }
  }

  /** The MCP tools offered to the LLM in this turn, as listed when first asked. */
  #tools(): { available: RegisteredTool[]; specs: ToolSpec[] } {
    this.#toolList ??= (() => {
      const available = this.#deps.tools?.list() ?? []
      const specs = available.map((t) => ({
        name: t.name,
        description: t.description,
        input_schema: t.input_schema,
      }))
      return { available, specs }
    })()
    return this.#toolList
  }

  /** ContextTooLargeError (413) when the system prompt, tools and this user message alone exceed the budget. */
  #checkFits(message: NewEvent): void {
    const { settings } = this.#deps
    checkFixed({
      system: settings.system_prompt,
      tools: this.#tools().specs,
      userTokens: message.token_count ?? 0,
      model: this.model,
      maxTokens: settings.context.max_tokens,
      reserveTokens: settings.context.reserve_tokens,
    })
  }

  /** LLM calls and tool rounds until an answer; returns the final reply's text and reasoning. */
  async #converse(
    messages: LlmMessage[],
    specs: ToolSpec[],
    serverOf: Map<string, string>,
  ): Promise<{ text: string; reasoning: string }> {
    const { tools, settings } = this.#deps
    for (;;) {
      const reply = await this.#callLlm(messages, specs)
      if (reply.calls.length === 0 || !tools) {
        this.finish = reply.finish === 'tool_calls' ? 'stop' : reply.finish
        return reply
      }
      if (this.hops >= settings.max_tool_hops) {
        this.finish = 'tool_limit_reached'
        const notice = `${reply.text ? '\n\n' : ''}[Stopped: this turn reached its limit of ${settings.max_tool_hops} rounds of tool calls, so the last tools asked for were not run.]`
        this.#emit.chunk({ type: 'text', data: notice })
        return { text: reply.text + notice, reasoning: reply.reasoning }
      }
      this.hops++
      this.#unstored?.push({
        ...this.#event({
          type: 'tool_call',
          role: 'assistant',
          content: reply.text,
          status: 'complete',
          tool_calls: reply.calls,
          ...(reply.reasoning ? { reasoning: reply.reasoning } : {}),
          ...(reply.parts.length ? { reasoning_parts: reply.parts } : {}),
        }),
        model: this.model,
      })
      this.#partial = ''
      this.#partialReasoning = ''
      // The reply goes back as it came, its reasoning with it where the provider requires it
      // (Anthropic thinking with tool use): the wire decides what to send.
      messages.push({
        role: 'assistant',
        content: reply.text,
        tool_calls: reply.calls,
        ...(reply.parts.length ? { reasoning: reply.parts } : {}),
      })
      for (const call of reply.calls) {
        this.#emit.chunk({
          type: 'tool_call',
          data: {
            id: call.id,
            name: call.name,
            server: serverOf.get(call.name) ?? null,
            arguments: parsed(call.arguments),
          },
        })
      }
      const started = performance.now()
      const results = await Promise.all(reply.calls.map((call) => this.#runTool(tools, call)))
      this.#toolMs += performance.now() - started
      messages.push(...results)
    }
  }

  async #runTool(tools: ToolRunner, call: ToolCall): Promise<LlmMessage> {
    const outcome = await tools.call(call.name, call.arguments, {
      signal: this.#signal,
      onProgress: (p) => this.#emit.chunk({ type: 'progress', data: { id: call.id, name: call.name, ...p } }),
    })
    // In the order the results came, as the client is told of them.
    this.#unstored?.push(
      this.#event({
        type: 'tool_result',
        role: 'tool',
        content: outcome.content,
        status: outcome.is_error ? 'error' : 'complete',
        tool_call_id: call.id,
      }),
    )
    this.#emit.chunk({
      type: 'tool_result',
      data: { id: call.id, name: call.name, is_error: outcome.is_error, content: outcome.content },
    })
    // The images go to the LLM within this turn only; the stored event keeps their description
    // (docs/mcp.md, "Images"), so the store never holds the bytes and later turns read the text.
    return {
      role: 'tool',
      tool_call_id: call.id,
      content: outcome.content,
      ...(outcome.is_error ? { is_error: true } : {}),
      ...(outcome.images?.length ? { images: outcome.images } : {}),
    }
  }

  async #callLlm(messages: LlmMessage[], tools: ToolSpec[]): Promise<Reply> {
    const { payload } = this.request
    const stream = payload.streaming ?? this.#deps.settings.streaming.enabled
    const started = performance.now()
    const reply: Reply = { text: '', reasoning: '', parts: [], calls: [], finish: 'stop' }
    let usage: Usage | undefined
    let release: (() => void) | undefined
    try {
      // The process holds a bounded number of LLM requests; a turn waits its principal's turn.
      release = await this.#deps.gate?.acquire(this.request.principal, this.#signal)
      const request = { messages, model: payload.model, stream, tools: tools.length ? tools : undefined }
      for await (const event of this.#deps.llm.chat(request, this.#signal)) {
        if (event.type === 'text' || event.type === 'reasoning') {
          this.#firstToken ??= performance.now()
          // Waits first while the client is behind (after a large tool result, say), so a chunk
          // never lands on a full backlog; stopped meanwhile, the text the client never got is not
          // kept as said.
          await this.#emit.drained?.(this.#signal)
          this.#signal.throwIfAborted()
          if (event.type === 'text') {
            reply.text += event.text
            this.#partial = reply.text
          } else {
            reply.reasoning += event.text
            this.#partialReasoning = reply.reasoning
          }
          this.#emit.chunk({ type: event.type, data: event.text })
        } else if (event.type === 'reasoning_part') {
          reply.parts.push(event.part)
        } else if (event.type === 'tool_call') {
          reply.calls.push(event.call)
        } else {
          reply.finish = event.finish_reason
          usage = event.usage
          this.model = event.model
        }
      }
    } catch (err) {
      // An abort surfaces from the provider as its own AbortError; report who or what stopped the
      // turn (a RequestStopped, or the turn's timeout).
      if (this.#signal.aborted) throw this.#signal.reason
      throw err
    } finally {
      release?.()
      this.#llmMs += performance.now() - started
    }
    this.#addUsage(usage ?? this.#countUsage(messages, tools, reply))
    return reply
  }

  /** Where the provider reports no usage, the platform's own count stands in. */
  #countUsage(messages: LlmMessage[], tools: ToolSpec[], reply: Reply): Usage {
    // Counted for the model that answered; when its encoding is not the one counted so far (it
    // answered as another model than asked), the request is counted again, whole.
    const encoding = encodingFor(this.model)
    if (encoding !== this.#prompt.encoding) {
      this.#prompt = { tokens: REPLY_PRIMING + countTools(tools, this.model), messages: 0, encoding }
    }
    // Otherwise only the messages added since the last count (a tool round's) are counted.
    for (; this.#prompt.messages < messages.length; this.#prompt.messages++) {
      this.#prompt.tokens += countMessage(messages[this.#prompt.messages]!, this.model)
    }
    const prompt = this.#prompt.tokens
    const completion =
      countTokens(reply.text, this.model) +
      reply.calls.reduce((n, c) => n + countTokens(c.name + c.arguments, this.model), 0)
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
  }

  #addUsage(usage: Usage): void {
    const sum = this.usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }
    this.usage = {
      prompt_tokens: sum.prompt_tokens + usage.prompt_tokens,
      completion_tokens: sum.completion_tokens + usage.completion_tokens,
      total_tokens: sum.total_tokens + usage.total_tokens,
    }
  }

  /** The stored answer of a finished turn (its events from its user_message on), sent again as one text chunk. */
  #replay(events: ChatEvent[]): ChatMetadata {
    const answer = events.at(-1)!
    this.conversationId = answer.conversation_id
    this.#emit.processing({ conversation_id: this.conversationId })
    const text = events
      .filter((e) => e.type === 'assistant_message' || e.type === 'tool_call')
      .map((e) => e.content)
      .join('')
    this.#emit.chunk({ type: 'text', data: text })
    this.model = answer.model ?? this.model
    this.usage = answer.usage
    this.finish = answer.finish_reason ?? 'stop'
    this.hops = events.filter((e) => e.type === 'tool_call').length
    return {
      conversation_id: this.conversationId,
      model: this.model,
      tokens: answer.usage?.total_tokens,
      usage: answer.usage,
      finish_reason: this.finish,
      tool_hops: this.hops,
      duration_ms: Math.round(performance.now() - this.#started),
      replayed: true,
    }
  }

  /** A new event of this turn, its token count computed once, as the LLM will see it. */
  #event(
    fields: Pick<
      NewEvent,
      | 'type'
      | 'role'
      | 'content'
      | 'status'
      | 'tool_calls'
      | 'tool_call_id'
      | 'attachments'
      | 'reasoning'
      | 'reasoning_parts'
    >,
  ): NewEvent {
    const event: NewEvent = {
      ...fields,
      conversation_id: this.conversationId,
      request_id: this.request.request_id,
      principal: this.request.principal,
    }
    const messages = messagesOf(event)
    event.token_count = messages.length
      ? messages.reduce((n, m) => n + countMessage(m, this.model), 0)
      : countTokens(event.content, this.model)
    return event
  }
}

/** Whether a turn's events end with its final answer. */
function isFinished(events: ChatEvent[]): boolean {
  const last = events.at(-1)
  return last?.type === 'assistant_message' && last.status === 'complete'
}

function parsed(args: string): unknown {
  try {
    return JSON.parse(args)
  } catch {
    return args
  }
}
