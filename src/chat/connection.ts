// One WebSocket connection of /ws/chat: frames in, frames out, and backpressure. What runs, and
// for how long, is the chat service's (service.ts); the non-chat actions are actions.ts'. Every
// listener body is guarded: nothing a client sends may throw out of here or crash the process.
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
}

export const CLOSE_GOING_AWAY = 1001
/**
 * Bytes handed to the socket but not yet flushed to the network above which a turn stops reading
 * its LLM stream, and below which it goes on: a client that reads slowly, or not at all, holds the
 * provider back instead of making this process buffer the whole answer.
 */
export const HIGH_WATER_BYTES = 256 * 1024
export const LOW_WATER_BYTES = 64 * 1024

export class ChatConnection {
  readonly #socket: WebSocket
  readonly #options: ConnectionOptions
  /** Bytes sent but not yet flushed to the network. */
  #unflushed = 0
  readonly #drainWaiters = new Set<() => void>()

  constructor(socket: WebSocket, options: ConnectionOptions) {
    this.#socket = socket
    this.#options = options
    socket.on('message', (data, isBinary) => this.#guard(() => this.#onMessage(data, isBinary)))
    socket.on('close', () =>
      this.#guard(() => {
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
        withData(new errors.VALIDATION_FAILED(), { validation_errors: checked.issues }),
      )
    }
    this.#dispatch(checked.frame)
  }

  #dispatch(frame: ClientFrame): void {
    const { service, actions, principal } = this.#options
    const id = frame.request_id
    if (service.isRunning(principal, id)) return this.#sendError(id, new errors.REQUEST_IN_PROGRESS(id))
    const from = { principal, requestId: id, origin: this }
    const end = (outcome: RequestEnd) => this.#end(id, outcome)
    switch (frame.action) {
      case 'chat':
        return service.chat(from, frame.payload, this.#emitter(id), end)
      // Reads of the store are requests too: refused once shutting down, and waited for before
      // the store closes.
      case 'get_history':
      case 'list_conversations':
        return service.start(
          frame.action,
          from,
          async () => ({ result: await actions.answer(frame, principal) }),
          end,
        )
      case 'get_prompt':
      case 'read_resource':
        return service.start(
          frame.action,
          from,
          async (signal) => ({ result: await actions.fetch(frame, signal) }),
          end,
        )
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
      chunk: (chunk: ChunkBody) => this.#send({ request_id: id, status: 'chunk', chunk }),
      drained: (signal: AbortSignal) => this.#drained(signal),
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

  #send(frame: ServerFrame): void {
    if (this.#socket.readyState !== this.#socket.OPEN) return
    const data = JSON.stringify(frame)
    const size = Buffer.byteLength(data)
    this.#unflushed += size
    // Called once the frame is written out to the network (or the socket failed).
    this.#socket.send(data, () => {
      this.#unflushed -= size
      if (this.#unflushed <= LOW_WATER_BYTES) this.#wakeDrainWaiters()
    })
  }

  /** Resolves at once while the client keeps up; otherwise once it has caught up, or on abort. */
  #drained(signal: AbortSignal): Promise<void> {
    if (
      this.#unflushed <= HIGH_WATER_BYTES ||
      this.#socket.readyState !== this.#socket.OPEN ||
      signal.aborted
    ) {
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const done = () => {
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
