// One WebSocket connection of /ws/chat: frames in, frames out, and backpressure. What runs, and
// for how long, is the chat service's (service.ts); the non-chat actions are actions.ts'. Every
// listener body is guarded: nothing a client sends may throw out of here or crash the process.
import { performance } from 'node:perf_hooks'
import type { Writable } from 'node:stream'
import type { WebSocket, RawData } from 'ws'
import { errors, isPlatformError, withData, type PlatformError } from '../errors.js'
import { describeError, redactStrings, type Logger } from '../logging.js'
import type { ChatActions } from './actions.js'
import { checkFrame, type ClientFrame } from './protocol.js'
import type { ChunkBody, ErrorBody, ServerFrame } from './server-frames.js'
import type { RequestEnd } from './requests.js'
import type { ChatService } from './service.js'

export interface ConnectionOptions {
  service: ChatService
  actions: ChatActions
  principal: string
  log: Logger
  /** Removes secrets from text sent to the client. */
  redact: (text: string) => string
  limits: ConnectionLimits
}

/** What one connection may hold (config.md: websocket, llm.request.timeout). */
export interface ConnectionLimits {
  /** Replies sent and not yet taken by the client; past it the socket is closed (1008). */
  maxBufferedBytes: number
  /** Requests of this connection running at once; more get 429. */
  maxConcurrentRequests: number
  /** A chat whose client takes nothing for this long is stopped (it would hold its LLM stream). */
  unreadTimeoutMs: number
  /**
   * `websocket.text_coalesce_ms`: how long a request's text (or reasoning) may be held so that the
   * deltas arriving meanwhile go out as one chunk. Absent: only the deltas of one tick are.
   */
  textCoalesceMs?: number
}

/** Policy Violation: the client takes in nothing of what it asked for. */
export const CLOSE_NOT_READING = 1008

export const CLOSE_GOING_AWAY = 1001
/**
 * Bytes handed to the socket but not yet flushed to the network above which a turn stops reading
 * its LLM stream (below a quarter of it, it goes on): a client that reads slowly, or not at all,
 * holds the provider back instead of making this process buffer the whole answer.
 */
export const HIGH_WATER_BYTES = 256 * 1024
/**
 * Text held for one chunk goes out once it is this long, window or not: what a request holds stays
 * small beside the backpressure limits above, which count only what was sent.
 */
export const HELD_TEXT_CHARS = 16 * 1024

/** Text of one request waiting to go out as one chunk. */
interface HeldText {
  type: 'text' | 'reasoning'
  parts: string[]
  chars: number
  /** Sends it at the end of the coalescing window (none: at the end of the tick). */
  timer?: NodeJS.Timeout
}

export class ChatConnection {
  readonly #socket: WebSocket
  readonly #options: ConnectionOptions
  /** Bytes sent but not yet flushed to the network. */
  #unflushed = 0
  /** The sizes of the frames sent and not yet flushed, oldest first. */
  readonly #pending: number[] = []
  /** When a frame was last flushed: the client was taking its replies in then. */
  #flushedAt = performance.now()
  /** Above it a chat stops reading its LLM stream; below a quarter of it, it goes on. */
  readonly #highWater: number
  readonly #drainWaiters = new Set<() => void>()
  /** Text deltas not sent yet, by request_id (see #hold). */
  readonly #held = new Map<string, HeldText>()
  /** The TCP socket under the WebSocket, corked while a tick's frames are written (see #write). */
  readonly #stream: Writable | undefined
  /** Whether the end of this tick is scheduled: held text to send, the socket to uncork. */
  #tickEnding = false
  #corked = false

  constructor(socket: WebSocket, options: ConnectionOptions) {
    this.#socket = socket
    this.#options = options
    // ws writes each frame to its socket at once (one system call each) and batches nothing
    // itself: corking that socket while a tick's frames are sent makes them one write.
    const stream = (socket as unknown as { _socket?: Writable })._socket
    this.#stream = typeof stream?.cork === 'function' ? stream : undefined
    // Backpressure pauses a chat well before its client could be cut off for not reading.
    this.#highWater = Math.min(HIGH_WATER_BYTES, Math.floor(options.limits.maxBufferedBytes / 4))
    socket.on('message', (data, isBinary) => this.#guard(() => this.#onMessage(data, isBinary)))
    socket.on('close', () =>
      this.#guard(() => {
        for (const held of this.#held.values()) clearTimeout(held.timer)
        this.#held.clear()
        this.#options.service.abandon(this)
        this.#wakeDrainWaiters()
      }),
    )
  }

  /**
   * Closes with 1001, once the service has ended this connection's requests. A client that does not
   * answer the closing handshake within `handshakeMs` is cut off, so it cannot hold up the shutdown.
   */
  async close(handshakeMs: number): Promise<void> {
    if (this.#socket.readyState === this.#socket.CLOSED) return
    const closed = new Promise((resolve) => this.#socket.once('close', resolve))
    this.#socket.close(CLOSE_GOING_AWAY, 'server shutting down')
    const timer = setTimeout(() => this.#socket.terminate(), handshakeMs)
    await closed
    clearTimeout(timer)
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (isBinary)
      return this.#sendError(null, new errors.INVALID_FRAME('binary frames are not accepted; send JSON text'))
    let value: unknown
    try {
      value = JSON.parse(rawText(data))
    } catch {
      return this.#sendError(null, new errors.INVALID_FRAME('not valid JSON'))
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.#sendError(null, new errors.INVALID_FRAME('expected a JSON object'))
    }
    const checked = checkFrame(value as Record<string, unknown>)
    if (!checked.ok) {
      return this.#sendError(
        checked.requestId,
        withData(new errors.VALIDATION_FAILED(), {
          validation_errors: checked.issues,
          ...(checked.more > 0 && { validation_errors_more: checked.more }),
        }),
      )
    }
    this.#dispatch(checked.frame)
  }

  #dispatch(frame: ClientFrame): void {
    const { service, actions, principal } = this.#options
    const id = frame.request_id
    if (service.isRunning(principal, id)) return this.#sendError(id, new errors.REQUEST_IN_PROGRESS(id))
    const from = { principal, requestId: id, origin: this, limit: this.#options.limits.maxConcurrentRequests }
    const end = (outcome: RequestEnd) => this.#end(id, outcome)
    switch (frame.action) {
      case 'chat':
        return service.chat(from, frame.payload, this.#emitter(id), end)
      // Reads of the store are requests too: refused once shutting down, and waited for before
      // the store closes.
      case 'get_history':
      case 'list_conversations':
        return service.start(from, async () => ({ result: await actions.answer(frame, principal) }), end)
      case 'get_prompt':
      case 'read_resource':
        return service.start(from, async (signal) => ({ result: await actions.fetch(frame, signal) }), end)
      case 'cancel': {
        const target = frame.payload.target_request_id
        if (!service.cancel(principal, target))
          return this.#sendError(id, new errors.REQUEST_NOT_FOUND(target))
        return this.#send({ request_id: id, status: 'complete', result: { cancelled: true } })
      }
      default:
        actions.answer(frame, principal).then(
          (result) => this.#send({ request_id: id, status: 'complete', result }),
          (err: unknown) => this.#sendError(id, err),
        )
    }
  }

  #emitter(id: string) {
    return {
      processing: (metadata: { conversation_id: string }) =>
        this.#send({ request_id: id, status: 'processing', metadata }),
      chunk: (chunk: ChunkBody) =>
        chunk.type === 'text' || chunk.type === 'reasoning'
          ? this.#hold(id, chunk.type, chunk.data)
          : this.#send({ request_id: id, status: 'chunk', chunk }),
      drained: (signal: AbortSignal) => this.#drained(signal, id),
    }
  }

  /** A request's one terminal frame. */
  #end(id: string, outcome: RequestEnd): void {
    switch (outcome.status) {
      case 'complete':
        return this.#send({ request_id: id, ...outcome })
      case 'cancelled':
        return this.#send({
          request_id: id,
          status: 'cancelled',
          metadata: { conversation_id: outcome.conversationId },
        })
      case 'error':
        return this.#sendError(id, outcome.error)
    }
  }

  #sendError(requestId: string | null, err: unknown): void {
    let error: PlatformError
    if (isPlatformError(err)) error = err
    else {
      this.#options.log.error({ request_id: requestId, error: describeError(err) }, 'unexpected error')
      error = new errors.INTERNAL()
    }
    const body: ErrorBody = {
      code: error.statusCode,
      type: error.code,
      message: this.#options.redact(error.message),
    }
    // Each string of `data` is redacted, never its serialized text: that could break its syntax.
    if (error.data) body.data = redactStrings(error.data, this.#options.redact)
    this.#send({ request_id: requestId, status: 'error', error: body })
  }

  /**
   * Text of request `id`, held to go out with the deltas that follow it as one chunk: those of this
   * tick, or of the coalescing window when one is set. Any other frame of the request sends it first
   * (#send), so its place among them is kept; text and reasoning never share a chunk.
   */
  #hold(id: string, type: HeldText['type'], data: string): void {
    if (this.#socket.readyState !== this.#socket.OPEN) return
    let held = this.#held.get(id)
    if (held && held.type !== type) {
      this.#release(id)
      held = undefined
    }
    if (!held) {
      held = { type, parts: [], chars: 0 }
      this.#held.set(id, held)
      const windowMs = this.#options.limits.textCoalesceMs
      if (windowMs === undefined) this.#endTickSoon()
      else {
        held.timer = setTimeout(() => this.#guard(() => this.#release(id)), windowMs)
        held.timer.unref()
      }
    }
    held.parts.push(data)
    held.chars += data.length
    if (held.chars >= HELD_TEXT_CHARS) this.#release(id)
  }

  /** Sends the text held for request `id`, if any, as one chunk. */
  #release(id: string): void {
    const held = this.#held.get(id)
    if (!held) return
    this.#held.delete(id)
    clearTimeout(held.timer)
    this.#write({ request_id: id, status: 'chunk', chunk: { type: held.type, data: held.parts.join('') } })
  }

  /** A frame, after the text its request holds. */
  #send(frame: ServerFrame): void {
    if (frame.request_id !== null && this.#held.size > 0) this.#release(frame.request_id)
    this.#write(frame)
  }

  #write(frame: ServerFrame): void {
    if (this.#socket.readyState !== this.#socket.OPEN) return
    const data = JSON.stringify(frame)
    const size = Buffer.byteLength(data)
    if (this.#overLimit(size)) return this.#notReading(size)
    this.#unflushed += size
    this.#pending.push(size)
    // The frames of one tick leave in one write (one system call), not one each: the socket stays
    // corked until the tick ends.
    if (this.#stream && !this.#corked) {
      this.#stream.cork()
      this.#corked = true
      this.#endTickSoon()
    }
    // Called once the frame is written out to the network (or the socket failed), in order.
    this.#socket.send(data, () => {
      this.#unflushed -= size
      this.#pending.shift()
      this.#flushedAt = performance.now()
      if (this.#unflushed <= this.#highWater / 4) this.#wakeDrainWaiters()
    })
  }

  /**
   * At the end of this tick (once the I/O callbacks of this turn of the event loop have run, and
   * every promise they resolved): held text without a window goes out, then the socket is
   * uncorked and writes what the tick sent.
   */
  #endTickSoon(): void {
    if (this.#tickEnding) return
    this.#tickEnding = true
    setImmediate(() => this.#guard(() => this.#endTick()))
  }

  #endTick(): void {
    try {
      for (const [id, held] of [...this.#held]) if (held.timer === undefined) this.#release(id)
    } finally {
      this.#tickEnding = false
      if (this.#corked) {
        this.#corked = false
        this.#stream?.uncork()
      }
    }
  }

  /**
   * Whether sending `size` more bytes leaves the client over its limit. The largest frame waiting
   * does not count: one large reply (a long non-streamed answer, a big tool result) and what
   * follows it go out; a pile of replies the client does not read does not.
   */
  #overLimit(size: number): boolean {
    const max = this.#options.limits.maxBufferedBytes
    if (this.#unflushed + size <= max) return false
    let largest = size
    for (const pending of this.#pending) if (pending > largest) largest = pending
    return this.#unflushed + size - largest > max
  }

  /**
   * A client that leaves more than maxBufferedBytes of replies unread is cut off: the socket is
   * closed (1008), which ends its requests, and terminated if the close is not taken in either.
   */
  #notReading(size: number): void {
    const unread = this.#unflushed + size
    this.#options.log.warn(
      { error: { type: 'CLIENT_NOT_READING' }, unread_bytes: unread },
      'client not reading',
    )
    this.#socket.close(CLOSE_NOT_READING, 'replies not read')
    setTimeout(() => this.#socket.terminate(), 1000).unref()
  }

  /**
   * Resolves at once while the client keeps up; otherwise once it has caught up, or on abort. A
   * client that takes nothing in for unreadTimeoutMs has request `id` stopped.
   */
  #drained(signal: AbortSignal, id: string): Promise<void> {
    if (
      this.#unflushed <= this.#highWater ||
      this.#socket.readyState !== this.#socket.OPEN ||
      signal.aborted
    ) {
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const { unreadTimeoutMs } = this.#options.limits
      // Stopped only when the client took nothing in for the whole time: a slow reader goes on.
      const check = () => {
        const quiet = performance.now() - this.#flushedAt
        if (quiet < unreadTimeoutMs) {
          timer = setTimeout(check, unreadTimeoutMs - quiet)
          timer.unref()
          return
        }
        this.#options.log.warn(
          { request_id: id, error: { type: 'CLIENT_NOT_READING' } },
          'client not reading',
        )
        this.#options.service.cancel(this.#options.principal, id, 'unread')
      }
      let timer = setTimeout(check, unreadTimeoutMs)
      timer.unref()
      const done = () => {
        clearTimeout(timer)
        this.#drainWaiters.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      this.#drainWaiters.add(done)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  #wakeDrainWaiters(): void {
    for (const wake of [...this.#drainWaiters]) wake()
  }

  #guard(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.#options.log.error({ error: describeError(err) }, 'websocket handler failed')
    }
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8')
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data).toString('utf8')
}
