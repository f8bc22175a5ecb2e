// One WebSocket connection of /ws/chat: frames in, frames out, the turns it runs. Every listener
// body is guarded: nothing a client sends may throw out of here or crash the process.
import type { WebSocket, RawData } from 'ws'
import {
  ConversationNotFoundError,
  InternalError,
  McpServerNotFoundError,
  ResourceNotFoundError,
  InvalidFrameError,
  RequestInProgressError,
  RequestNotFoundError,
  ShuttingDownError,
  ValidationFailedError,
  isPlatformError,
  withData,
  type PlatformError,
} from '../errors.js'
import type { McpContent, ToolRunner } from '../mcp/types.js'
import type { ChatStore } from '../store/types.js'
import { checkFrame, type ChunkBody, type ClientFrame, type ErrorBody, type ServerFrame } from './protocol.js'
import { TurnAborted, describeError, type ChatService, type TurnEndReason } from './service.js'

export interface ConnectionLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface ConnectionOptions {
  service: ChatService
  /** Conversations, for `get_history` and `list_conversations`. */
  store: ChatStore
  /** The MCP tools (for `list_tools`); none when absent. */
  tools?: ToolRunner
  /** The MCP prompts and resources (for their actions); none when absent. */
  content?: McpContent
  principal: string
  log: ConnectionLogger
  /** True once the server is shutting down: new chats, prompts and resource reads are refused with 503. */
  closing: () => boolean
  /** Removes secrets from text sent to the client. */
  redact: (text: string) => string
}

/** A request still running: a chat turn, or a `get_prompt` / `read_resource` (no conversation). */
interface RunningTurn {
  controller: AbortController
  conversationId?: string
  done: Promise<void>
}

/** What a running request's `complete` frame carries. */
type Completion = Pick<Extract<ServerFrame, { status: 'complete' }>, 'metadata' | 'result'>

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
  /** Requests of this connection still running, by request_id. */
  readonly #turns = new Map<string, RunningTurn>()
  /** Bytes sent but not yet flushed to the network. */
  #unflushed = 0
  readonly #drainWaiters = new Set<() => void>()

  constructor(socket: WebSocket, options: ConnectionOptions) {
    this.#socket = socket
    this.#options = options
    socket.on('message', (data, isBinary) => this.#guard(() => this.#onMessage(data, isBinary)))
    socket.on('close', () =>
      this.#guard(() => {
        this.#abortAll('disconnect')
        this.#wakeDrainWaiters()
      }),
    )
    socket.on('error', (err) => this.#options.log.warn({ error: describeError(err) }, 'websocket error'))
  }

  /**
   * Ends running turns (the client is told), then closes with 1001. A client that does not answer
   * the closing handshake within `handshakeMs` is cut off, so it cannot hold up the shutdown.
   */
  async shutdown(handshakeMs: number): Promise<void> {
    const running = [...this.#turns.values()].map((turn) => turn.done)
    this.#abortAll('shutdown')
    await Promise.allSettled(running)
    if (this.#socket.readyState === this.#socket.CLOSED) return
    const closed = new Promise((resolve) => this.#socket.once('close', resolve))
    this.#socket.close(CLOSE_GOING_AWAY, 'server shutting down')
    const timer = setTimeout(() => this.#socket.terminate(), handshakeMs)
    await closed
    clearTimeout(timer)
  }

  #abortAll(reason: TurnEndReason): void {
    for (const turn of this.#turns.values()) turn.controller.abort(new TurnAborted(reason))
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (isBinary)
      return this.#sendError(null, new InvalidFrameError('binary frames are not accepted; send JSON text'))
    let value: unknown
    try {
      value = JSON.parse(rawText(data))
    } catch {
      return this.#sendError(null, new InvalidFrameError('not valid JSON'))
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.#sendError(null, new InvalidFrameError('expected a JSON object'))
    }
    const checked = checkFrame(value as Record<string, unknown>)
    if (!checked.ok) {
      return this.#sendError(
        checked.requestId,
        withData(new ValidationFailedError(), { validation_errors: checked.issues }),
      )
    }
    this.#dispatch(checked.frame)
  }

  #dispatch(frame: ClientFrame): void {
    const id = frame.request_id
    if (this.#turns.has(id)) return this.#sendError(id, new RequestInProgressError(id))
    switch (frame.action) {
      case 'ping':
        return this.#send({ request_id: id, status: 'complete', result: { pong: true } })
      case 'list_tools': {
        const tools = (this.#options.tools?.list() ?? []).map((t) => ({
          name: t.name,
          server: t.server,
          description: t.description,
          input_schema: t.input_schema,
          annotations: t.annotations ?? {},
        }))
        return this.#send({ request_id: id, status: 'complete', result: { tools } })
      }
      case 'list_prompts':
        return this.#complete(id, { prompts: this.#prompts() })
      case 'list_resources':
        return this.#complete(id, { resources: this.#resources() })
      case 'get_prompt':
      case 'read_resource':
        return this.#track(id, (turn) => this.#fetch(frame, turn.controller.signal))
      case 'list_conversations':
      case 'get_history':
        return void this.#read(frame)
      case 'cancel': {
        const target = this.#turns.get(frame.payload.target_request_id)
        if (!target) return this.#sendError(id, new RequestNotFoundError(frame.payload.target_request_id))
        target.controller.abort(new TurnAborted('cancel'))
        return this.#send({ request_id: id, status: 'complete', result: { cancelled: true } })
      }
      case 'chat':
        return this.#track(id, (turn) => this.#runTurn(id, turn, frame.payload))
    }
  }

  #complete(requestId: string, result: Record<string, unknown>): void {
    this.#send({ request_id: requestId, status: 'complete', result })
  }

  #prompts(): Record<string, unknown>[] {
    return (this.#options.content?.prompts() ?? []).map(({ server, prompt }) => ({
      server,
      name: prompt.name,
      description: prompt.description ?? prompt.title ?? '',
      arguments: prompt.arguments ?? [],
    }))
  }

  #resources(): Record<string, unknown>[] {
    const content = this.#options.content
    if (!content) return []
    const described = (item: { name: string; mimeType?: string; description?: string }) => ({
      name: item.name,
      ...(item.mimeType === undefined ? {} : { mime_type: item.mimeType }),
      ...(item.description === undefined ? {} : { description: item.description }),
    })
    return [
      ...content
        .resources()
        .map(({ server, resource }) => ({ server, uri: resource.uri, ...described(resource) })),
      ...content.resourceTemplates().map(({ server, template }) => ({
        server,
        uri_template: template.uriTemplate,
        ...described(template),
      })),
    ]
  }

  /** Requests to an MCP server on the client's behalf; `signal` cancels them on the server. */
  async #fetch(
    frame: Extract<ClientFrame, { action: 'get_prompt' | 'read_resource' }>,
    signal: AbortSignal,
  ): Promise<Completion> {
    const { content } = this.#options
    if (frame.action === 'get_prompt') {
      const { server, name, arguments: args = {} } = frame.payload
      if (!content) throw new McpServerNotFoundError(server)
      const result = await content.getPrompt(server, name, args, signal)
      const description = result.description ? { description: result.description } : {}
      return { result: { messages: result.messages, ...description } }
    }
    const { server, uri } = frame.payload
    if (!content) throw new ResourceNotFoundError(uri)
    const { result } = await content.readResource(uri, server, signal)
    return { result: { contents: result.contents } }
  }

  /** Reads of the store, scoped to this connection's principal. */
  async #read(frame: Extract<ClientFrame, { action: 'list_conversations' | 'get_history' }>): Promise<void> {
    const { principal } = this.#options
    try {
      if (frame.action === 'list_conversations') {
        const { limit = 20, before } = frame.payload
        const conversations = await this.#options.store.listConversations(principal, { limit, before })
        return this.#send({ request_id: frame.request_id, status: 'complete', result: { conversations } })
      }
      const { conversation_id, limit = 100, before_seq } = frame.payload
      const events = await this.#options.store.history(principal, conversation_id, {
        limit,
        beforeSeq: before_seq,
      })
      if (!events) return this.#sendError(frame.request_id, new ConversationNotFoundError(conversation_id))
      const visible = events.map(({ instance: _instance, principal: _principal, ...event }) => event)
      this.#send({ request_id: frame.request_id, status: 'complete', result: { events: visible } })
    } catch (err) {
      this.#sendError(frame.request_id, err)
    }
  }

  /**
   * Runs a request that takes a while, registered as running under its request_id until its one
   * terminal frame is sent: refused with 503 once the server is closing; `cancel`, a closed socket
   * and shutdown stop it by firing its signal with TurnAborted; shutdown waits for it to end.
   */
  #track(id: string, run: (turn: RunningTurn) => Promise<Completion>): void {
    if (this.#options.closing()) return this.#sendError(id, new ShuttingDownError())
    const turn: RunningTurn = { controller: new AbortController(), done: Promise.resolve() }
    this.#turns.set(id, turn)
    turn.done = run(turn)
      .then(
        (completion) => this.#send({ request_id: id, status: 'complete', ...completion }),
        (err: unknown) => this.#endWithError(id, turn, err),
      )
      .finally(() => this.#turns.delete(id))
  }

  async #runTurn(
    id: string,
    turn: RunningTurn,
    payload: Extract<ClientFrame, { action: 'chat' }>['payload'],
  ): Promise<Completion> {
    const emit = {
      processing: (metadata: { conversation_id: string }) => {
        turn.conversationId = metadata.conversation_id
        this.#send({ request_id: id, status: 'processing', metadata })
      },
      chunk: (chunk: ChunkBody) => this.#send({ request_id: id, status: 'chunk', chunk }),
      drained: (signal: AbortSignal) => this.#drained(signal),
    }
    const request = { principal: this.#options.principal, request_id: id, payload }
    return { metadata: await this.#options.service.runTurn(request, emit, turn.controller.signal) }
  }

  #endWithError(id: string, turn: RunningTurn, err: unknown): void {
    if (err instanceof TurnAborted) {
      if (err.reason === 'shutdown') return this.#sendError(id, new ShuttingDownError())
      return this.#send({
        request_id: id,
        status: 'cancelled',
        metadata: { conversation_id: turn.conversationId },
      })
    }
    this.#sendError(id, err)
  }

  #sendError(requestId: string | null, err: unknown): void {
    let error: PlatformError
    if (isPlatformError(err)) error = err
    else {
      this.#options.log.error({ request_id: requestId, error: describeError(err) }, 'unexpected error')
      error = new InternalError()
    }
    const body: ErrorBody = {
      code: error.statusCode,
      type: error.code,
      message: this.#options.redact(error.message),
    }
    if (error.data)
      body.data = JSON.parse(this.#options.redact(JSON.stringify(error.data))) as Record<string, unknown>
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
