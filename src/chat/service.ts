// One chat turn, from the user's text to the stored answer, free of Fastify and of WebSocket
// details: the caller gives a way to emit frames and an AbortSignal, and gets the `complete`
// metadata back or an error thrown. Tool calls of one LLM reply run concurrently; their results go
// back to the LLM until it answers without tools or `max_tool_hops` rounds have run.
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { PlatformConfig } from '../config/types.js'
import {
  AttachmentsNotFetchedError,
  AttachmentsTooLargeError,
  ConversationBusyError,
  ConversationNotFoundError,
  InputTooLargeError,
  RequestInProgressError,
  isPlatformError,
} from '../errors.js'
import type { FinishReason, LlmMessage, LlmProvider, ToolCall, ToolSpec, Usage } from '../llm/types.js'
import type { McpContent, RegisteredTool, ToolRunner } from '../mcp/types.js'
import type { Attachments, ChatEvent, ChatStore, NewEvent } from '../store/types.js'
import { buildContext, checkFixed, type HistoryMessage } from '../tokens/context.js'
import { countMessage, countTokens, countTools, REPLY_PRIMING } from '../tokens/counter.js'
import { attachedChars, fetchAttachments, namesAttachments, userMessages } from './attachments.js'
import { closeInstance, openInstance } from './instance.js'
import type { ChatPayload, ChunkBody } from './protocol.js'

export type TurnEndReason = 'cancel' | 'disconnect' | 'shutdown'

/** The reason given to a turn's AbortController: who stopped it. */
export class TurnAborted extends Error {
  constructor(readonly reason: TurnEndReason) {
    super(`turn stopped: ${reason}`)
    this.name = 'AbortError'
  }
}

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

export interface TurnLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface ChatServiceOptions {
  store: ChatStore
  llm: LlmProvider
  /** The MCP tools offered to the LLM; none when absent. */
  tools?: ToolRunner
  /** The MCP prompts and resources a chat may attach; none when absent. */
  content?: McpContent
  settings: PlatformConfig['chat']['service']
  log: TurnLogger
  /** DEBUG_TOKENS=1: log each turn's token accounting. */
  debugTokens?: boolean
}

/** The longest token of cl100k_base and o200k_base, in bytes (so at most as many characters). */
const MAX_TOKEN_CHARS = 128

type Outcome = 'complete' | 'replayed' | 'cancelled' | 'error'
export type TurnFinish = Exclude<FinishReason, 'tool_calls'> | 'tool_limit_reached'

export class ChatService {
  readonly #options: ChatServiceOptions
  /** This service's instance id, stored with each turn it runs (see instance.ts). */
  readonly instance = openInstance()
  /** Conversations with a turn running in this process: one turn at a time each. */
  readonly #busy = new Set<string>()
  /** `principal \0 request_id` of the turns running in this process. */
  readonly #running = new Set<string>()

  constructor(options: ChatServiceOptions) {
    this.#options = options
  }

  /** From now on, turns left unfinished by this service count as dead: they may run again. */
  close(): void {
    closeInstance(this.instance)
  }

  /** Runs one turn; resolves with the `complete` metadata, or throws (TurnAborted when stopped). */
  async runTurn(
    request: TurnRequest,
    emit: TurnEmitter,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const { principal, request_id, payload } = request
    const { settings } = this.#options
    if (payload.text.length > settings.max_input_chars) {
      throw new InputTooLargeError(payload.text.length, settings.max_input_chars)
    }
    const requestKey = `${principal}\u0000${request_id}`
    if (this.#running.has(requestKey)) throw new RequestInProgressError(request_id)
    const create = payload.conversation_id === undefined
    const conversationId = payload.conversation_id ?? `c-${randomUUID()}`
    if (this.#busy.has(conversationId)) throw new ConversationBusyError(conversationId)

    this.#running.add(requestKey)
    const claimed = [conversationId]
    this.#busy.add(conversationId)
    // A retry continues the conversation of its first attempt, which may be another one.
    const claim = (id: string): boolean => {
      if (claimed.includes(id)) return true
      if (this.#busy.has(id)) return false
      this.#busy.add(id)
      claimed.push(id)
      return true
    }
    const turn = new Turn(this.#options, request, conversationId, emit, signal, this.instance)
    let outcome: Outcome = 'error'
    let failure: unknown
    try {
      const metadata = await turn.run(create, claim)
      outcome = metadata.replayed === true ? 'replayed' : 'complete'
      return metadata
    } catch (err) {
      failure = err
      outcome = err instanceof TurnAborted ? 'cancelled' : 'error'
      throw err
    } finally {
      this.#running.delete(requestKey)
      for (const id of claimed) this.#busy.delete(id)
      this.#logTurn(turn, outcome, failure)
    }
  }

  #logTurn(turn: Turn, outcome: Outcome, failure: unknown): void {
    const line: Record<string, unknown> = {
      request_id: turn.request.request_id,
      conversation_id: turn.conversationId,
      principal: turn.request.principal,
      model: turn.model,
      outcome,
      finish_reason: turn.finish,
      tool_hops: turn.hops,
      tokens: turn.usage?.total_tokens,
      timings: turn.timings(),
    }
    if (failure instanceof TurnAborted) line.stopped_by = failure.reason
    else if (failure !== undefined) line.error = describeError(failure)
    if (outcome === 'error') this.#options.log.warn(line, 'turn failed')
    else this.#options.log.info(line, 'turn')
  }
}

/** What one LLM call said. */
interface Reply {
  text: string
  calls: ToolCall[]
  finish: FinishReason
}

/** The state of one running turn. */
class Turn {
  model: string
  finish: TurnFinish | undefined
  usage: Usage | undefined
  hops = 0
  readonly #started = performance.now()
  #firstToken: number | undefined
  #llmMs = 0
  #toolMs = 0
  /** The text of the reply being streamed, kept if the turn is cut short. */
  #partial = ''
  #began = false
  #toolList: { available: RegisteredTool[]; specs: ToolSpec[] } | undefined

  constructor(
    readonly options: ChatServiceOptions,
    readonly request: TurnRequest,
    public conversationId: string,
    readonly emit: TurnEmitter,
    readonly signal: AbortSignal,
    readonly instance: string,
  ) {
    this.model = request.payload.model ?? options.llm.model
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

  async run(create: boolean, claim: (conversationId: string) => boolean): Promise<Record<string, unknown>> {
    const { store, settings } = this.options
    const { principal, request_id, payload } = this.request
    // A request already answered is replayed from the store and needs nothing else (one still
    // running is a 409): its prompt and resources are not fetched again (their server may be
    // gone), nor its size checked. Only asked when there is something to fetch.
    const peek = namesAttachments(payload) ? await store.peekRequest(principal, request_id) : undefined
    const known = peek?.state === 'running' || peek?.state === 'finished'
    // Fetched before the turn is stored: they are part of what the user said.
    const attachments = known ? undefined : await fetchAttachments(this.options.content, payload, this.signal)
    const budget = settings.context.max_tokens - settings.context.reserve_tokens
    // No token is longer than MAX_TOKEN_CHARS characters: past this, no counting is needed to know.
    const chars = attachedChars(attachments)
    if (chars > budget * MAX_TOKEN_CHARS) {
      throw new AttachmentsTooLargeError(chars, budget)
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
    if (!known) this.#checkFits(message)
    const began = await store.beginTurn({ ...message, instance: this.instance }, create)
    if (began.outcome === 'not_found') throw new ConversationNotFoundError(this.conversationId)
    if (began.outcome === 'duplicate') {
      // Finished: answered again from the store. Otherwise a live instance is running it.
      if (!isFinished(began.events)) throw new RequestInProgressError(request_id)
      this.conversationId = began.events[0]?.conversation_id ?? this.conversationId
      this.emit.processing({ conversation_id: this.conversationId })
      return this.#replay(began.events)
    }
    this.#began = true
    this.conversationId = began.event.conversation_id
    if (known) {
      // The attempt peekRequest saw ended unfinished (or its process died) since: this one was
      // started without the prompt and resources it names, and must not run without them. It
      // ends unfinished, so sending it again runs it, with them.
      const skipped = new AttachmentsNotFetchedError(request_id)
      await this.#storeUnfinished(skipped)
      throw skipped
    }
    if (!claim(this.conversationId)) {
      const busy = new ConversationBusyError(this.conversationId)
      await this.#storeUnfinished(busy)
      throw busy
    }
    this.emit.processing({ conversation_id: this.conversationId })

    try {
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
      if (this.options.debugTokens) {
        this.options.log.info(
          { request_id, conversation_id: this.conversationId, tokens: accounting },
          'token accounting',
        )
      }
      const serverOf = new Map(available.map((t) => [t.name, t.server]))
      const answer = await this.#converse(messages, specs, serverOf)
      await store.append([
        {
          ...this.#event({
            type: 'assistant_message',
            role: 'assistant',
            content: answer,
            status: 'complete',
          }),
          model: this.model,
          usage: this.usage,
        },
      ])
    } catch (err) {
      await this.#storeUnfinished(err)
      throw err
    }
    return {
      conversation_id: this.conversationId,
      model: this.model,
      tokens: this.usage?.total_tokens,
      usage: this.usage,
      finish_reason: this.finish,
      tool_hops: this.hops,
      duration_ms: Math.round(performance.now() - this.#started),
    }
  }

  /** The MCP tools offered to the LLM in this turn, as listed when first asked. */
  #tools(): { available: RegisteredTool[]; specs: ToolSpec[] } {
    this.#toolList ??= (() => {
      const available = this.options.tools?.list() ?? []
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
    const { settings } = this.options
    checkFixed({
      system: settings.system_prompt,
      tools: this.#tools().specs,
      userTokens: message.token_count ?? 0,
      model: this.model,
      maxTokens: settings.context.max_tokens,
      reserveTokens: settings.context.reserve_tokens,
    })
  }

  /** LLM calls and tool rounds until an answer; returns the final reply's text. */
  async #converse(messages: LlmMessage[], specs: ToolSpec[], serverOf: Map<string, string>): Promise<string> {
    const { tools, settings } = this.options
    for (;;) {
      const reply = await this.#callLlm(messages, specs)
      if (reply.calls.length === 0 || !tools) {
        this.finish = reply.finish === 'tool_calls' ? 'stop' : reply.finish
        return reply.text
      }
      if (this.hops >= settings.max_tool_hops) {
        this.finish = 'tool_limit_reached'
        const notice = `${reply.text ? '\n\n' : ''}[Stopped: this turn reached its limit of ${settings.max_tool_hops} rounds of tool calls, so the last tools asked for were not run.]`
        this.emit.chunk({ type: 'text', data: notice })
        return reply.text + notice
      }
      this.hops++
      await this.options.store.append([
        {
          ...this.#event({
            type: 'tool_call',
            role: 'assistant',
            content: reply.text,
            status: 'complete',
            tool_calls: reply.calls,
          }),
          model: this.model,
        },
      ])
      this.#partial = ''
      messages.push({ role: 'assistant', content: reply.text, tool_calls: reply.calls })
      for (const call of reply.calls) {
        this.emit.chunk({
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
      signal: this.signal,
      onProgress: (p) => this.emit.chunk({ type: 'progress', data: { id: call.id, name: call.name, ...p } }),
    })
    await this.options.store.append([
      {
        ...this.#event({
          type: 'tool_result',
          role: 'tool',
          content: outcome.content,
          status: outcome.is_error ? 'error' : 'complete',
          tool_call_id: call.id,
        }),
      },
    ])
    this.emit.chunk({
      type: 'tool_result',
      data: { id: call.id, name: call.name, is_error: outcome.is_error, content: outcome.content },
    })
    return { role: 'tool', tool_call_id: call.id, content: outcome.content }
  }

  async #callLlm(messages: LlmMessage[], tools: ToolSpec[]): Promise<Reply> {
    const { payload } = this.request
    const stream = payload.streaming ?? this.options.settings.streaming.enabled
    const started = performance.now()
    const reply: Reply = { text: '', calls: [], finish: 'stop' }
    let usage: Usage | undefined
    try {
      const request = { messages, model: payload.model, stream, tools: tools.length ? tools : undefined }
      for await (const event of this.options.llm.chat(request, this.signal)) {
        if (event.type === 'text') {
          this.#firstToken ??= performance.now()
          reply.text += event.text
          this.#partial = reply.text
          this.emit.chunk({ type: 'text', data: event.text })
          await this.emit.drained?.(this.signal)
        } else if (event.type === 'tool_call') {
          reply.calls.push(event.call)
        } else {
          reply.finish = event.finish_reason
          usage = event.usage
          this.model = event.model
        }
      }
    } catch (err) {
      // An abort surfaces from the provider as its own AbortError; report who stopped the turn.
      if (this.signal.aborted && this.signal.reason instanceof TurnAborted) throw this.signal.reason
      throw err
    } finally {
      this.#llmMs += performance.now() - started
    }
    this.#addUsage(usage ?? this.#countUsage(messages, tools, reply))
    return reply
  }

  /** Where the provider reports no usage, the platform's own count stands in. */
  #countUsage(messages: LlmMessage[], tools: ToolSpec[], reply: Reply): Usage {
    const prompt =
      messages.reduce((sum, m) => sum + countMessage(m, this.model), REPLY_PRIMING) +
      countTools(tools, this.model)
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

  /** A turn that did not finish keeps what was said so far, marked as such. */
  async #storeUnfinished(err: unknown): Promise<void> {
    if (!this.#began) return
    const status = err instanceof TurnAborted || this.#partial ? 'interrupted' : 'error'
    await this.options.store.append([
      this.#event({ type: 'assistant_message', role: 'assistant', content: this.#partial, status }),
    ])
  }

  /** The stored answer of a finished turn, sent again as one text chunk. */
  #replay(events: ChatEvent[]): Record<string, unknown> {
    const answer = events.at(-1)!
    const text = events
      .filter((e) => e.type === 'assistant_message' || e.type === 'tool_call')
      .map((e) => e.content)
      .join('')
    this.emit.chunk({ type: 'text', data: text })
    this.model = answer.model ?? this.model
    this.usage = answer.usage
    return {
      conversation_id: this.conversationId,
      model: this.model,
      tokens: answer.usage?.total_tokens,
      usage: answer.usage,
      finish_reason: 'stop',
      tool_hops: events.filter((e) => e.type === 'tool_call').length,
      duration_ms: Math.round(performance.now() - this.#started),
      replayed: true,
    }
  }

  /** A new event of this turn, its token count computed once, as the LLM will see it. */
  #event(
    fields: Pick<
      NewEvent,
      'type' | 'role' | 'content' | 'status' | 'tool_calls' | 'tool_call_id' | 'attachments'
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

/**
 * An event as the messages the LLM sees: one, or for a user message with a prompt attached the
 * prompt's messages first; none for events that are not said (meta).
 */
function messagesOf(
  event: Pick<ChatEvent, 'type' | 'content' | 'tool_calls' | 'tool_call_id'> & { attachments?: Attachments },
): LlmMessage[] {
  switch (event.type) {
    case 'user_message':
      return userMessages(event.content, event.attachments)
    case 'assistant_message':
      return [{ role: 'assistant', content: event.content }]
    case 'tool_call':
      return [{ role: 'assistant', content: event.content, tool_calls: event.tool_calls ?? [] }]
    case 'tool_result':
      return [{ role: 'tool', tool_call_id: event.tool_call_id ?? '', content: event.content }]
    default:
      return []
  }
}

/**
 * History events as the LLM sees them, each with the token count stored with it: what was said,
 * including answers cut short. A request tried more than once speaks through its latest attempt
 * only. A tool call whose result was never stored (its turn was cut off) is left out: providers
 * reject a call without its result.
 */
export function toHistory(events: ChatEvent[]): HistoryMessage[] {
  const latest = new Map<string, number>()
  for (const e of events) if (e.type === 'user_message') latest.set(e.request_id, e.seq)
  const current = events.filter((e) => e.seq >= (latest.get(e.request_id) ?? 0))
  const answered = new Set(current.filter((e) => e.type === 'tool_result').map((e) => e.tool_call_id))
  const history: HistoryMessage[] = []
  for (const event of current) {
    if (event.type === 'assistant_message' && !event.content) continue
    if (event.type === 'tool_call') {
      const calls = (event.tool_calls ?? []).filter((c) => answered.has(c.id))
      if (calls.length < (event.tool_calls?.length ?? 0)) {
        // Its stored count covers calls that are left out: counted again.
        if (calls.length)
          history.push({ message: { role: 'assistant', content: event.content, tool_calls: calls } })
        else if (event.content) history.push({ message: { role: 'assistant', content: event.content } })
        continue
      }
    }
    const messages = messagesOf(event)
    const message = messages.at(-1)
    if (!message) continue
    const leads = messages.slice(0, -1)
    history.push({ message, tokens: event.token_count, ...(leads.length ? { leads } : {}) })
  }
  return history
}

function parsed(args: string): unknown {
  try {
    return JSON.parse(args)
  } catch {
    return args
  }
}

/** The `error` field of a log line: the stable type, and the message (never a stack for 4xx). */
export function describeError(err: unknown): Record<string, unknown> {
  if (isPlatformError(err)) {
    return { type: err.code, status: err.statusCode, message: err.message, data: err.data }
  }
  const e = err instanceof Error ? err : new Error(String(err))
  return { type: 'INTERNAL', status: 500, message: e.message, stack: e.stack }
}
