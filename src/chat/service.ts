// The chat service: the one owner of the requests running in this process (architecture.md,
// "Requests in flight"). Each is an entry of one table keyed by principal and request_id, with its
// abort controller, its open inputs and its completion; the socket layer only frames what the
// service reports. A chat turn is one kind of request (turn.ts); a prompt or resource read on an
// MCP server is another. `shutdown()` ends them all and waits.
import { errors, withData } from '../errors.js'
import { describeError } from '../logging.js'
import { deadline } from '../util/abort.js'
import { attemptOf, closeInstance, openInstance } from './instance.js'
import { RequestStopped, type Completion, type RequestEnd, type StopReason } from './requests.js'
import type { ChatMetadata } from './server-frames.js'
import { Turn, type TurnDeps, type TurnEmitter, type TurnRequest } from './turn.js'

/** What the turns use (store, LLM, MCP, settings, log); the service adds its instance and the claims. */
export type ChatServiceOptions = Omit<TurnDeps, 'instance' | 'claim'>

/** One request running in this process. */
interface InFlight {
  readonly principal: string
  readonly requestId: string
  /** This run of it, unique in the service: a chat turn is stored with it (see instance.ts). */
  readonly attempt: string
  /** Whoever started it (a connection): when it goes, its requests end. */
  readonly origin: object
  readonly controller: AbortController
  /** Inputs asked of the user and not yet answered (`input_required`); none are asked yet. */
  readonly inputs: Map<string, unknown>
  /** The conversations a chat turn holds (one turn at a time each). */
  readonly conversations: Set<string>
  /** The conversation a chat turn told its client it runs in (`processing`). */
  conversationId?: string
  /** Settles once its terminal outcome has been reported. */
  done: Promise<void>
}

/** Who a request belongs to and where it came from. */
export interface RequestOrigin {
  principal: string
  requestId: string
  origin: object
  /** At most this many requests of the origin run at once; more are refused with 429. */
  limit?: number
}

/** What a refused request is told to wait before it tries again (a hint: no slot is reserved). */
export const RETRY_AFTER_MS = 1000

type Outcome = 'complete' | 'replayed' | 'cancelled' | 'timed_out' | 'error'

export class ChatService {
  readonly #options: ChatServiceOptions
  /** This service's instance id, stored with each turn it runs (see instance.ts). */
  readonly instance = openInstance((attempt) => this.#attemptInFlight(attempt))
  /** Every request running in this process, by `principal \0 request_id`. */
  readonly #requests = new Map<string, InFlight>()
  #closing = false
  /** Runs of requests started so far: each one's `attempt`. */
  #attempts = 0
  /** Requests running, by the origin that started them (for its limit). */
  readonly #perOrigin = new Map<object, number>()

  constructor(options: ChatServiceOptions) {
    this.#options = options
  }

  /** True once shutdown has begun: new requests are refused with 503. */
  get closing(): boolean {
    return this.#closing
  }

  /** Whether this principal has a request with this id running. */
  isRunning(principal: string, requestId: string): boolean {
    return this.#requests.has(key(principal, requestId))
  }

  /**
   * Runs `work` as a request; `end` is told its one outcome. Refused (an error outcome, at once)
   * while the principal has a request of that id running, or once the service is closing.
   */
  start(
    from: RequestOrigin,
    work: (signal: AbortSignal, request: InFlight) => Promise<Completion>,
    end: (outcome: RequestEnd) => void,
  ): void {
    const id = key(from.principal, from.requestId)
    if (this.#closing) return end({ status: 'error', error: new errors.SHUTTING_DOWN() })
    if (this.#requests.has(id))
      return end({ status: 'error', error: new errors.REQUEST_IN_PROGRESS(from.requestId) })
    const running = this.#perOrigin.get(from.origin) ?? 0
    if (from.limit !== undefined && running >= from.limit) {
      const error = withData(new errors.TOO_MANY_REQUESTS(running), { retry_after_ms: RETRY_AFTER_MS })
      return end({ status: 'error', error })
    }
    const request: InFlight = {
      principal: from.principal,
      requestId: from.requestId,
      attempt: String(++this.#attempts),
      origin: from.origin,
      controller: new AbortController(),
      inputs: new Map(),
      conversations: new Set(),
      done: Promise.resolve(),
    }
    this.#requests.set(id, request)
    this.#perOrigin.set(from.origin, running + 1)
    request.done = work(request.controller.signal, request)
      .then(
        (completion): RequestEnd => ({ status: 'complete', ...completion }),
        (err: unknown): RequestEnd => ended(err, request),
      )
      .then((outcome) => {
        this.#requests.delete(id)
        const left = (this.#perOrigin.get(from.origin) ?? 1) - 1
        if (left > 0) this.#perOrigin.set(from.origin, left)
        else this.#perOrigin.delete(from.origin)
        end(outcome)
      })
  }

  /** Runs one chat turn as a request: frames go to `emit`, its outcome to `end`. */
  chat(
    from: RequestOrigin,
    payload: TurnRequest['payload'],
    emit: TurnEmitter,
    end: (outcome: RequestEnd) => void,
  ): void {
    this.start(
      from,
      async (signal, request) => {
        const told: TurnEmitter = {
          ...emit,
          processing: (metadata) => {
            request.conversationId = metadata.conversation_id
            emit.processing(metadata)
          },
        }
        const turn = { principal: from.principal, request_id: from.requestId, payload }
        return { metadata: await this.#runTurn(turn, request, told, signal) }
      },
      end,
    )
  }

  /** Stops a running request of this principal; false when it has none of that id. */
  cancel(principal: string, requestId: string, reason: StopReason = 'cancel'): boolean {
    const request = this.#requests.get(key(principal, requestId))
    if (!request) return false
    request.controller.abort(new RequestStopped(reason))
    return true
  }

  /** Stops every request that `origin` started (its socket closed). */
  abandon(origin: object): void {
    for (const request of this.#requests.values()) {
      if (request.origin === origin) request.controller.abort(new RequestStopped('disconnect'))
    }
  }

  /**
   * Refuses new requests, stops the running ones and waits until each has ended (its unfinished
   * turn stored, its outcome reported); from then on, turns left unfinished by this service count
   * as dead, so they may run again elsewhere.
   */
  async shutdown(): Promise<void> {
    this.#closing = true
    const running = [...this.#requests.values()]
    for (const request of running) request.controller.abort(new RequestStopped('shutdown'))
    await Promise.allSettled(running.map((r) => r.done))
    closeInstance(this.instance)
  }

  #attemptInFlight(attempt: string): boolean {
    for (const request of this.#requests.values()) if (request.attempt === attempt) return true
    return false
  }

  async #runTurn(
    turnRequest: TurnRequest,
    request: InFlight,
    emit: TurnEmitter,
    signal: AbortSignal,
  ): Promise<ChatMetadata> {
    const { settings } = this.#options
    const { payload } = turnRequest
    if (payload.text.length > settings.max_input_chars) {
      throw new errors.INPUT_TOO_LARGE(payload.text.length, settings.max_input_chars)
    }
    const claim = (conversationId: string): boolean => {
      if (request.conversations.has(conversationId)) return true
      for (const other of this.#requests.values()) if (other.conversations.has(conversationId)) return false
      request.conversations.add(conversationId)
      return true
    }
    const instance = attemptOf(this.instance, request.attempt)
    // The turn's own clock: whatever it waits on (LLM, tools, a slow client), it ends with the
    // 504 once turn_timeout has passed, the signal's reason being that error.
    const limit = deadline(
      settings.turn_timeout * 1000,
      signal,
      () => new errors.TURN_TIMEOUT(settings.turn_timeout),
    )
    const turn = new Turn({ ...this.#options, instance, claim }, turnRequest, emit, limit.signal)
    let outcome: Outcome = 'error'
    let failure: unknown
    try {
      const metadata = await turn.run()
      outcome = metadata.replayed === true ? 'replayed' : 'complete'
      return metadata
    } catch (err) {
      // Whatever surfaced once the clock ran out, the turn ends with the 504.
      failure = limit.expired() ? limit.signal.reason : err
      outcome = failure instanceof RequestStopped ? 'cancelled' : limit.expired() ? 'timed_out' : 'error'
      await turn.storeUnfinished(failure)
      throw failure
    } finally {
      limit.dispose()
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
    if (failure instanceof RequestStopped) line.stopped_by = failure.reason
    else if (failure !== undefined) line.error = describeError(failure)
    if (outcome === 'error') this.#options.log.warn(line, 'turn failed')
    else if (outcome === 'timed_out') this.#options.log.warn(line, 'turn timed out')
    else this.#options.log.info(line, 'turn')
  }
}

function key(principal: string, requestId: string): string {
  return `${principal}\u0000${requestId}`
}

/** A request's failure as its outcome: stopped by someone, or an error. */
function ended(err: unknown, request: InFlight): RequestEnd {
  if (!(err instanceof RequestStopped) || err.reason === 'shutdown') {
    return { status: 'error', error: err instanceof RequestStopped ? new errors.SHUTTING_DOWN() : err }
  }
  const { conversationId } = request
  return { status: 'cancelled', ...(conversationId === undefined ? {} : { conversationId }) }
}
