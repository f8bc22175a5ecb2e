// One chat turn, from the user's text to the stored answer, free of Fastify and of WebSocket
// details: the caller gives a way to emit frames and an AbortSignal, and gets the `complete`
// metadata back or an error thrown.
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { PlatformConfig } from '../config/types.js'
import {
  ConversationBusyError,
  ConversationNotFoundError,
  InputTooLargeError,
  RequestInProgressError,
  isPlatformError,
} from '../errors.js'
import type { FinishReason, LlmMessage, LlmProvider, Usage } from '../llm/types.js'
import type { ChatEvent, ChatStore, NewEvent } from '../store/types.js'
import { countTokens } from '../tokens/counter.js'
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
}

export interface TurnLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface ChatServiceOptions {
  store: ChatStore
  llm: LlmProvider
  settings: PlatformConfig['chat']['service']
  log: TurnLogger
}

type Outcome = 'complete' | 'replayed' | 'cancelled' | 'error'

// Per message, chat formats add a few tokens of framing (role, separators); OpenAI documents 3,
// plus 3 that prime the reply.
const MESSAGE_OVERHEAD = 3
const REPLY_PRIMING = 3

export class ChatService {
  readonly #store: ChatStore
  readonly #llm: LlmProvider
  readonly #settings: ChatServiceOptions['settings']
  readonly #log: TurnLogger
  /** Conversations with a turn running in this process: one turn at a time each. */
  readonly #busy = new Set<string>()
  /** `principal \0 request_id` of the turns running in this process. */
  readonly #running = new Set<string>()

  constructor(options: ChatServiceOptions) {
    this.#store = options.store
    this.#llm = options.llm
    this.#settings = options.settings
    this.#log = options.log
  }

  /** Runs one turn; resolves with the `complete` metadata, or throws (TurnAborted when stopped). */
  async runTurn(
    request: TurnRequest,
    emit: TurnEmitter,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const { principal, request_id, payload } = request
    if (payload.text.length > this.#settings.max_input_chars) {
      throw new InputTooLargeError(payload.text.length, this.#settings.max_input_chars)
    }
    const requestKey = `${principal}\u0000${request_id}`
    if (this.#running.has(requestKey)) throw new RequestInProgressError(request_id)
    const create = payload.conversation_id === undefined
    const conversationId = payload.conversation_id ?? `c-${randomUUID()}`
    if (this.#busy.has(conversationId)) throw new ConversationBusyError(conversationId)

    this.#running.add(requestKey)
    this.#busy.add(conversationId)
    const turn = new Turn(this.#store, this.#llm, request, conversationId, emit, signal)
    let outcome: Outcome = 'error'
    let failure: unknown
    try {
      const metadata = await turn.run(create, this.#settings)
      outcome = metadata.replayed === true ? 'replayed' : 'complete'
      return metadata
    } catch (err) {
      failure = err
      outcome = err instanceof TurnAborted ? 'cancelled' : 'error'
      throw err
    } finally {
      this.#running.delete(requestKey)
      this.#busy.delete(conversationId)
      this.#logTurn(turn, outcome, failure)
    }
  }

  #logTurn(turn: Turn, outcome: Outcome, failure: unknown): void {
    const line: Record<string, unknown> = {
      request_id: turn.request.request_id,
      conversation_id: turn.conversationId,
      principal: turn.request.principal,
      model: turn.model ?? turn.request.payload.model ?? this.#llm.model,
      outcome,
      finish_reason: turn.finishReason,
      tokens: turn.usage?.total_tokens,
      timings: turn.timings(),
    }
    if (failure instanceof TurnAborted) line.stopped_by = failure.reason
    else if (failure !== undefined) line.error = describeError(failure)
    if (outcome === 'error') this.#log.warn(line, 'turn failed')
    else this.#log.info(line, 'turn')
  }
}

/** The state of one running turn. */
class Turn {
  model: string | undefined
  finishReason: FinishReason | undefined
  usage: Usage | undefined
  readonly #started = performance.now()
  #firstToken: number | undefined
  #llmMs = 0
  #text = ''
  #began = false

  constructor(
    readonly store: ChatStore,
    readonly llm: LlmProvider,
    readonly request: TurnRequest,
    readonly conversationId: string,
    readonly emit: TurnEmitter,
    readonly signal: AbortSignal,
  ) {}

  timings(): Record<string, number | undefined> {
    const ms = (t: number | undefined) => (t === undefined ? undefined : Math.round(t))
    return {
      first_token_ms: ms(this.#firstToken === undefined ? undefined : this.#firstToken - this.#started),
      llm_ms: ms(this.#llmMs),
      total_ms: ms(performance.now() - this.#started),
    }
  }

  async run(create: boolean, settings: ChatServiceOptions['settings']): Promise<Record<string, unknown>> {
    const { principal, request_id, payload } = this.request
    const model = payload.model ?? this.llm.model
    const history = create ? [] : await this.store.history(principal, this.conversationId)
    if (!history) throw new ConversationNotFoundError(this.conversationId)

    const began = await this.store.beginTurn(
      this.#event({ type: 'user_message', role: 'user', content: payload.text, status: 'complete' }, model),
      create,
    )
    if (began.outcome === 'not_found') throw new ConversationNotFoundError(this.conversationId)
    this.emit.processing({ conversation_id: this.conversationId })
    if (began.outcome === 'duplicate') {
      const answer = finalAnswer(began.events)
      if (answer) return this.#replay(answer)
    }
    this.#began = true

    // A failed or cancelled turn run again: its earlier events are not history of itself.
    const earlier =
      began.outcome === 'duplicate' ? history.filter((e) => e.request_id !== request_id) : history
    const messages: LlmMessage[] = [
      { role: 'system', content: settings.system_prompt },
      ...toMessages(earlier),
      { role: 'user', content: payload.text },
    ]
    const streaming = payload.streaming ?? settings.streaming.enabled
    try {
      await this.#callLlm(messages, streaming)
    } catch (err) {
      await this.#storeUnfinished(err, model)
      throw err
    }
    const answerTokens = countTokens(this.#text, this.model ?? model)
    const usage = this.usage ?? {
      prompt_tokens: countMessages(messages, model),
      completion_tokens: answerTokens,
      total_tokens: countMessages(messages, model) + answerTokens,
    }
    await this.store.append([
      {
        ...this.#event(
          { type: 'assistant_message', role: 'assistant', content: this.#text, status: 'complete' },
          model,
        ),
        model: this.model ?? model,
        usage,
        token_count: answerTokens,
      },
    ])
    return {
      conversation_id: this.conversationId,
      model: this.model ?? model,
      tokens: usage.total_tokens,
      usage,
      finish_reason: this.finishReason === 'tool_calls' ? 'stop' : (this.finishReason ?? 'stop'),
      tool_hops: 0,
      duration_ms: Math.round(performance.now() - this.#started),
    }
  }

  async #callLlm(messages: LlmMessage[], stream: boolean): Promise<void> {
    const started = performance.now()
    try {
      for await (const event of this.llm.chat(
        { messages, model: this.request.payload.model, stream },
        this.signal,
      )) {
        if (event.type === 'text') {
          this.#firstToken ??= performance.now()
          this.#text += event.text
          this.emit.chunk({ type: 'text', data: event.text })
        } else if (event.type === 'done') {
          this.finishReason = event.finish_reason
          this.usage = event.usage
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
  }

  /** A turn that did not finish keeps what was said so far, marked as such. */
  async #storeUnfinished(err: unknown, model: string): Promise<void> {
    if (!this.#began) return
    const status = err instanceof TurnAborted || this.#text ? 'interrupted' : 'error'
    await this.store.append([
      {
        ...this.#event({ type: 'assistant_message', role: 'assistant', content: this.#text, status }, model),
        token_count: countTokens(this.#text, model),
      },
    ])
  }

  #replay(answer: ChatEvent): Record<string, unknown> {
    this.emit.chunk({ type: 'text', data: answer.content })
    this.model = answer.model
    this.usage = answer.usage
    return {
      conversation_id: this.conversationId,
      model: answer.model,
      tokens: answer.usage?.total_tokens,
      usage: answer.usage,
      finish_reason: 'stop',
      tool_hops: 0,
      duration_ms: Math.round(performance.now() - this.#started),
      replayed: true,
    }
  }

  #event(
    fields: Pick<NewEvent, 'type' | 'role' | 'content' | 'status'>,
    model: string,
  ): NewEvent & { token_count: number } {
    return {
      ...fields,
      conversation_id: this.conversationId,
      request_id: this.request.request_id,
      principal: this.request.principal,
      token_count: countTokens(fields.content, model),
    }
  }
}

/** The finished answer of a turn's events, if it finished. */
function finalAnswer(events: ChatEvent[]): ChatEvent | undefined {
  const last = events.at(-1)
  return last?.type === 'assistant_message' && last.status === 'complete' && !last.tool_calls
    ? last
    : undefined
}

/** History events as the LLM sees them: what was said, including answers cut short. */
function toMessages(events: ChatEvent[]): LlmMessage[] {
  const messages: LlmMessage[] = []
  for (const event of events) {
    if (event.type === 'user_message') messages.push({ role: 'user', content: event.content })
    else if (event.type === 'assistant_message' && event.content) {
      messages.push({ role: 'assistant', content: event.content })
    }
  }
  return messages
}

function countMessages(messages: LlmMessage[], model: string): number {
  return messages.reduce((sum, m) => sum + MESSAGE_OVERHEAD + countTokens(m.content, model), REPLY_PRIMING)
}

/** The `error` field of a log line: the stable type, and the message (never a stack for 4xx). */
export function describeError(err: unknown): Record<string, unknown> {
  if (isPlatformError(err)) {
    return { type: err.code, status: err.statusCode, message: err.message, data: err.data }
  }
  const e = err instanceof Error ? err : new Error(String(err))
  return { type: 'INTERNAL', status: 500, message: e.message, stack: e.stack }
}
