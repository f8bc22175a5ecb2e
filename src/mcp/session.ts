// One attempt to connect to a server and, once it succeeded, the MCP session it opened: its client
// and transport, the requests running on it, and its retirement once a newer session replaces it.
// Its events (the transport closed or failed, a list changed) reach the server's connection only
// while it is the current session: a replaced or closed session cannot act on its server's state.
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js'
import type { ServerConfig } from '../config/types.js'
import type { Logger } from '../logging.js'
import { PACKAGE } from '../util/package.js'
import { bothTransportsFailed } from './failures.js'
import type { ListKind } from './listing.js'
import {
  httpStatusOf,
  isSessionExpired,
  isStreamableHttp,
  loadRemoteTransports,
  speaksOnlySse,
} from './remote.js'
import { StdioTransport } from './stdio-transport.js'
import type { TransportOpener } from './transports.js'
import type { ServerStatus } from './types.js'

/** Who we are in `initialize`: this package, as its package.json says. */
const CLIENT_INFO = { name: PACKAGE.name, version: PACKAGE.version }
/** Requests still running on a replaced session get this long to end with their own answer. */
const RETIRE_GRACE_MS = 2_000
/** At shutdown, a remote server gets this long to hear that its session ends. */
const END_SESSION_MS = 1_000

export type TransportKind = ServerStatus['transport']

/** What a session tells its server's connection, while it is the current one. */
export interface SessionEvents {
  /** The transport closed: the child died, or the connection or its pipes did. */
  closed(): void
  error(err: Error): void
  listChanged(kind: ListKind): void
}

export class Session {
  readonly #server: string
  readonly #events: SessionEvents
  #kind: TransportKind
  #client?: Client
  #transport?: Transport
  #current = true
  #closed?: Promise<void>
  #retired?: Promise<void>
  #whenIdle?: () => void
  #inflight = 0
  /** list_changed that came while still connecting: listed again once ready. */
  readonly #deferred = new Set<ListKind>()
  readonly #repeating = new Map<string, { again: boolean }>()
  readonly #running = new Map<string, Promise<void>>()

  constructor(server: string, kind: TransportKind, events: SessionEvents) {
    this.#server = server
    this.#kind = kind
    this.#events = events
  }

  /** Whether this session's events still count: it has not been replaced, lost or shut down. */
  get current(): boolean {
    return this.#current
  }

  /** The transport of this session (a remote server's may have fallen back to SSE). */
  get kind(): TransportKind {
    return this.#kind
  }

  get transport(): Transport | undefined {
    return this.#transport
  }

  /** The stdio child's process id while it runs. */
  get pid(): number | undefined {
    const transport = this.#transport
    return transport instanceof StdioTransport && transport.exitDescription === undefined
      ? transport.pid
      : undefined
  }

  get client(): Client {
    if (!this.#client) throw new Error(`no MCP client for ${this.#server} yet`)
    return this.#client
  }

  /** The server refused a request for this session, which it no longer knows: the request never ran. */
  forgot(err: unknown): boolean {
    return isSessionExpired(err) && this.#transport?.sessionId !== undefined
  }

  /** Starts the server's transport and initializes the session; a remote server may need SSE. */
  async open(
    config: ServerConfig,
    openTransport: TransportOpener,
    options: RequestOptions,
    log: Logger,
  ): Promise<Client> {
    // Before the attempt, whatever opens the transport: its failures are read with these modules.
    if (config.transport !== 'stdio') await loadRemoteTransports()
    if (config.transport !== 'http') return this.#attach(config, openTransport, options)
    try {
      return await this.#attach(config, openTransport, options)
    } catch (err) {
      if (config.explicit || !speaksOnlySse(err) || !this.#current || this.#closed) throw err
      log.info(
        { server: this.#server, status: httpStatusOf(err) },
        'mcp server does not speak Streamable HTTP; trying HTTP+SSE',
      )
      await this.#transport?.close().catch(() => undefined)
      try {
        return await this.#attach({ ...config, transport: 'sse' }, openTransport, options)
      } catch (sseErr) {
        throw bothTransportsFailed(err, sseErr)
      }
    }
  }

  /** A request on this session, counted: a retired session closes after its last one. */
  async track<T>(run: () => Promise<T>): Promise<T> {
    this.#inflight += 1
    try {
      return await run()
    } finally {
      this.#inflight -= 1
      if (this.#inflight === 0) this.#whenIdle?.()
    }
  }

  /** A newer session takes over: this one's events are ignored from now on. */
  supersede(): void {
    this.#current = false
  }

  /**
   * Lost or replaced: closed now, or once the requests still running on it have their own answer
   * (and so are known to have run or not), within a grace period: one whose answer stream broke
   * with the old server would otherwise wait for its timeout. Resolves once closed.
   */
  retire(): Promise<void> {
    this.#current = false
    this.#retired ??= new Promise<void>((resolve) => {
      if (this.#inflight === 0) return resolve()
      this.#whenIdle = resolve
      setTimeout(resolve, RETIRE_GRACE_MS).unref()
    }).then(() => this.close())
    return this.#retired
  }

  /** Closes the transport, once; nothing this session would open afterwards stays open. */
  close(): Promise<void> {
    this.#closed ??= this.#transport?.close().catch(() => undefined) ?? Promise.resolve()
    return this.#closed
  }

  /** At shutdown: a Streamable HTTP session is ended politely (DELETE), within a short bound. */
  async end(): Promise<void> {
    this.#current = false
    const transport = this.#transport
    if (!this.#closed && isStreamableHttp(transport) && transport.sessionId) {
      let timer: NodeJS.Timeout | undefined
      const bound = new Promise((resolve) => (timer = setTimeout(resolve, END_SESSION_MS)))
      await Promise.race([transport.terminateSession().catch(() => undefined), bound])
      clearTimeout(timer)
    }
    await this.close()
  }

  /** Remembers a list to fetch again once the session is ready. */
  defer(kind: ListKind): void {
    this.#deferred.add(kind)
  }

  /** The lists remembered by defer(), forgotten from here. */
  takeDeferred(): ListKind[] {
    const kinds = [...this.#deferred]
    this.#deferred.clear()
    return kinds
  }

  /** Runs `task` for this key, one run at a time; asked again meanwhile, once more after it (while current). */
  repeat(key: string, task: () => Promise<void>): void {
    const running = this.#repeating.get(key)
    if (running) {
      running.again = true
      return
    }
    const state = { again: true }
    this.#repeating.set(key, state)
    void (async () => {
      while (state.again && this.#current) {
        state.again = false
        await task()
      }
    })().finally(() => this.#repeating.delete(key))
  }

  /** Runs `task` for this key unless it already runs: then the running one is the answer. */
  once(key: string, task: () => Promise<void>): Promise<void> {
    let running = this.#running.get(key)
    if (!running) {
      // Started a microtask later, once registered: the task may cause itself to be asked again.
      running = Promise.resolve()
        .then(task)
        .finally(() => this.#running.delete(key))
      this.#running.set(key, running)
    }
    return running
  }

  async #attach(
    config: ServerConfig,
    openTransport: TransportOpener,
    options: RequestOptions,
  ): Promise<Client> {
    // Shut down or timed out before this transport was opened (while the last one closed).
    if (this.#closed) throw new Error('the connection attempt was abandoned')
    const transport = await openTransport(this.#server, config)
    if (this.#closed) {
      await transport.close().catch(() => undefined)
      throw new Error('the connection attempt was abandoned')
    }
    const client = new Client(CLIENT_INFO, { capabilities: {} })
    this.#kind = config.transport
    this.#transport = transport
    this.#client = client
    // Only the session's latest client speaks for it: not the one it gave up for SSE.
    const live = () => this.#current && this.#client === client
    client.onclose = () => {
      if (live()) this.#events.closed()
    }
    client.onerror = (err) => {
      if (live()) this.#events.error(err)
    }
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      if (live()) this.#events.listChanged('tools')
    })
    client.setNotificationHandler(PromptListChangedNotificationSchema, () => {
      if (live()) this.#events.listChanged('prompts')
    })
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => {
      if (live()) this.#events.listChanged('resources')
    })
    await client.connect(transport, options)
    return client
  }
}
