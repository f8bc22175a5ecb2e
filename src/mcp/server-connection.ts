// One configured MCP server and our connection to it: its state (connecting, starting, ready,
// failed, closed), reconnects with exponential backoff, a new session when the server forgot
// ours, and the requests sent to it (tool calls for the LLM, prompts and resources for a client).
// Each attempt to connect is a Session of its own (session.ts): only the current one's events
// change the state.
import { setMaxListeners } from 'node:events'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js'
import type { PlatformConfig, ServerConfig } from '../config/types.js'
import { errors, type McpServerErrorCode } from '../errors.js'
import type { Logger } from '../logging.js'
import { abortable, abortReason, deadline, Waiters } from '../util/abort.js'
import type { Catalogue, Counts } from './catalogue.js'
import {
  closedReason,
  connectFailure,
  errorMessage,
  isConnectionClosed,
  requestError,
  serverError,
  toolError,
  tooLargeAnswer,
  unavailable,
  wentAway,
  type ServerError,
} from './failures.js'
import { listAgain, listEverything, type ListKind, type Lists } from './listing.js'
import { isSseStreamError } from './remote.js'
import { forwardProgress, toolOutcome } from './results.js'
import { Session } from './session.js'
import type { TransportOpener } from './transports.js'
import type { ServerState, ServerStatus, ToolCallOptions, ToolOutcome } from './types.js'

/** Backoff doubles up to this, so a long series of retries stays useful. */
const MAX_RECONNECT_DELAY_MS = 60_000
/** The SDK's own request timeout is set past ours, so ours always decides (and words) a timeout. */
const SDK_TIMEOUT_MARGIN_MS = 5_000
/** A ping that checks whether a remote server is still there gets at most this long. */
const HEALTH_CHECK_MS = 5_000
/** A session forgotten again within this long of the last renewal is renewed with backoff. */
const RENEW_AFTER_MS = 1_000
const NOTHING: Counts = { tools: 0, prompts: 0, resources: 0 }
/**
 * A stdio child whose process still runs at connection_timeout is `starting`, and is waited for up
 * to this many times connection_timeout in all: a hung one is still ended and reported.
 */
export const START_BUDGET_FACTOR = 10
/** The longest delay setTimeout keeps (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

export interface ConnectionOptions {
  connection: PlatformConfig['mcp']['connection']
  /** Seconds for one tool call, unless the server sets its own `tool_timeout`. */
  toolTimeout: number
  log: Logger
  openTransport: TransportOpener
  /** Where the server's lists go. */
  catalogue: Catalogue
  /** A server's text as we repeat it. */
  clean: (text: string) => string
}

export class ServerConnection {
  readonly name: string
  readonly #config: ServerConfig
  readonly #options: ConnectionOptions
  #state: ServerState = 'connecting'
  #error?: string
  /** Failed connection attempts since the last success. */
  #attempts = 0
  /** Reconnects started since the last success (bounded by max_reconnect_attempts). */
  #reconnects = 0
  /** The first attempt has finished, one way or the other. */
  #settled = false
  #closing = false
  #timer?: NodeJS.Timeout
  /** When a forgotten session was last renewed (renewals in a row are slowed down by backoff). */
  #renewedAt = 0
  /** The current session, or the last one (its transport and process are still reported). */
  #session?: Session
  /** Sessions lost or replaced while requests on them still ran: closed after their last one. */
  readonly #retiring = new Set<Session>()
  /** Woken at every change of state (requests waiting for a reconnect). */
  readonly #changes = new Waiters()

  constructor(name: string, config: ServerConfig, options: ConnectionOptions) {
    this.name = name
    this.#config = config
    this.#options = options
  }

  get state(): ServerState {
    return this.#state
  }

  get settled(): boolean {
    return this.#settled
  }

  /** Connects in the background. */
  start(): void {
    void this.#connect()
  }

  status(): ServerStatus {
    const status: ServerStatus = {
      name: this.name,
      ...(this.#config.configured_name === undefined
        ? {}
        : { configured_name: this.#config.configured_name }),
      transport: this.#session?.kind ?? this.#config.transport,
      state: this.#state,
      ...this.#counts(),
      attempts: this.#attempts,
    }
    if (this.#error !== undefined) status.error = this.#error
    const pid = this.#session?.pid
    if (pid !== undefined && this.#state !== 'closed') status.pid = pid
    return status
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return
    this.#closing = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    const retiring = [...this.#retiring]
    this.#retiring.clear()
    await Promise.all([this.#session?.end(), ...retiring.map((s) => s.close())])
    this.#setState('closed')
  }

  /** Throws errors.MCP_SERVER_UNAVAILABLE unless the server is ready. */
  requireReady(): Session {
    const session = this.#session
    if (this.#state !== 'ready' || !session) {
      throw new errors.MCP_SERVER_UNAVAILABLE(this.name, this.#error ?? this.#state)
    }
    return session
  }

  /** A tool call, its every failure worded for the LLM (see ToolRunner.call). */
  async callTool(
    tool: string,
    args: Record<string, unknown>,
    options: ToolCallOptions,
  ): Promise<ToolOutcome> {
    // A server that is connecting is waited for (within the call's time); one that failed is not.
    if (this.#state === 'failed' || this.#state === 'closed') {
      return toolError(unavailable(this.name, this.#state, this.#error))
    }
    const seconds = this.#config.tool_timeout ?? this.#options.toolTimeout
    const limit = deadline(seconds * 1000, options.signal)
    const session = this.#session
    // The SDK sends notifications/cancelled to the server when this signal fires.
    const requestOptions: RequestOptions = {
      signal: limit.signal,
      timeout: seconds * 1000 + SDK_TIMEOUT_MARGIN_MS,
      resetTimeoutOnProgress: false,
    }
    if (options.onProgress) requestOptions.onprogress = forwardProgress(options.onProgress)
    try {
      return toolOutcome(
        await this.#withSession(limit.signal, (client) =>
          client.callTool({ name: tool, arguments: args }, undefined, requestOptions),
        ),
      )
    } catch (err) {
      if (options.signal.aborted) throw abortReason(options.signal)
      if (limit.expired()) return toolError(`The tool call timed out after ${seconds} s.`)
      // The session expired and the new one could not be had.
      if (err instanceof errors.MCP_SERVER_UNAVAILABLE) {
        return toolError(unavailable(this.name, this.#state, this.#error))
      }
      const tooLarge = tooLargeAnswer(err)
      if (tooLarge !== undefined) return toolError(tooLarge)
      if (isConnectionClosed(err) || !session?.current || this.#state !== 'ready') {
        return toolError(wentAway(this.name, this.#error))
      }
      return toolError(`The tool call failed: ${this.#options.clean(errorMessage(err))}`)
    } finally {
      limit.dispose()
    }
  }

  /**
   * One request for a client's action: timed out after connection_timeout, its failures as the
   * platform's errors.
   */
  async request<T>(
    signal: AbortSignal | undefined,
    send: (client: Client, options: RequestOptions) => Promise<T>,
  ): Promise<T> {
    const seconds = this.#options.connection.connection_timeout
    const limit = deadline(seconds * 1000, signal)
    const options: RequestOptions = { signal: limit.signal, timeout: seconds * 1000 + SDK_TIMEOUT_MARGIN_MS }
    try {
      return await this.#withSession(limit.signal, (client) => send(client, options))
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal)
      if (limit.expired()) throw new errors.MCP_TIMEOUT(this.name, seconds)
      throw requestError(this.name, err, this.#options.clean)
    } finally {
      limit.dispose()
    }
  }

  /**
   * Runs `send` on the ready session (waiting for one that is connecting), and once more on a new
   * session when the server answered this very request with 404 for our session (it restarted):
   * refused so, the request never ran. A request cut off any other way may have run, and is not
   * sent again. A renewal does not cut off the requests still running on the old session: each
   * ends with its own answer, and so is known to have run or not.
   */
  async #withSession<T>(signal: AbortSignal, send: (client: Client) => Promise<T>): Promise<T> {
    if (this.#state === 'connecting' || this.#state === 'starting') {
      await this.#settledAfter(undefined, signal)
    }
    const session = this.requireReady()
    try {
      return await session.track(() => send(session.client))
    } catch (err) {
      if (signal.aborted || !session.forgot(err)) throw err
      this.#sessionExpired(session)
      await this.#settledAfter(session, signal)
      const renewed = this.requireReady()
      return await renewed.track(() => send(renewed.client))
    }
  }

  /** Resolves once no attempt runs and `session`, if given, is no longer current (or on abort). */
  #settledAfter(session: Session | undefined, signal: AbortSignal): Promise<void> {
    // Shutdown ends in 'closed', with every session ended: that wakes these too.
    const done = () =>
      (session === undefined || !session.current) &&
      this.#state !== 'connecting' &&
      this.#state !== 'starting'
    return this.#changes.until(done, signal)
  }

  async #connect(): Promise<void> {
    if (this.#closing) return
    this.#timer = undefined
    const previous = this.#session
    previous?.supersede()
    const session: Session = new Session(this.name, previous?.kind ?? this.#config.transport, {
      closed: () => this.#connectionClosed(session),
      error: (err) => this.#transportError(session, err),
      listChanged: (kind) => this.#listChanged(session, kind),
    })
    this.#session = session
    this.#setState('connecting')
    const { log, connection, openTransport } = this.#options
    const seconds = connection.connection_timeout
    // A stdio child may need far longer than usual the first time (`npx -y` installing its
    // package): while its process runs it is waited for, up to the start budget, never killed
    // mid-install by a retry that would have to start the install again.
    const budget = this.#config.transport === 'stdio' ? seconds * START_BUDGET_FACTOR : seconds
    const clock = new AttemptClock()
    let initialized = false
    clock.after(seconds, () => {
      if (initialized || budget <= seconds || session.pid === undefined || !session.current) {
        return clock.expire(`did not become ready within ${seconds} s`)
      }
      this.#setState('starting', undefined, { waits_up_to_s: budget })
      clock.after(budget - seconds, () =>
        clock.expire(
          `did not become ready within ${budget} s (${START_BUDGET_FACTOR} × connection_timeout): ` +
            'its process ran but never answered',
        ),
      )
    })
    // Every page of every list listens on it until the attempt ends: a long list is not a leak.
    setMaxListeners(0, clock.signal)
    const options: RequestOptions = { signal: clock.signal, timeout: budget * 1000 + SDK_TIMEOUT_MARGIN_MS }
    try {
      // The legacy SSE transport waits for its `endpoint` event without a signal: raced here.
      const client = await abortable(session.open(this.#config, openTransport, options, log), clock.signal)
      initialized = true
      // Started late, it gets the usual time to list what it offers.
      if (this.#state === 'starting') {
        clock.after(seconds, () => clock.expire(`did not list its tools within ${seconds} s of starting`))
      }
      const lists = await listEverything(client, options, (kind, err) => {
        const error = serverError('MCP_LIST_REFRESH_FAILED', errorMessage(err))
        log.warn({ server: this.name, list: kind, error }, 'mcp server list unavailable')
      })
      if (session.current) this.#connected(session, lists)
    } catch (err) {
      if (!session.current) return
      const expired = clock.expired
      if (expired !== undefined) {
        void session.close()
        this.#attemptFailed(expired)
        return
      }
      // A child that dies at once often fails a write (EPIPE) before its exit is seen: once closed,
      // its exit status and last stderr lines say why.
      await session.close()
      if (session.current) this.#attemptFailed(connectFailure(err, session.transport))
    } finally {
      clock.stop()
      this.#settled = true
    }
  }

  #connected(session: Session, lists: Lists): void {
    this.#attempts = 0
    this.#reconnects = 0
    this.#error = undefined
    this.#options.catalogue.update(this.name, lists)
    this.#setState('ready')
    for (const kind of session.takeDeferred()) this.#refresh(session, kind)
  }

  #attemptFailed(reason: string): void {
    this.#attempts += 1
    this.#failed(reason, 'MCP_CONNECT_FAILED')
  }

  /** The live connection closed: the child died, or its pipes did. Ours to close at shutdown. */
  #connectionClosed(session: Session): void {
    if (this.#closing || this.#state !== 'ready') return
    const reason = closedReason(session.transport)
    // Ends the group even if only the pipes closed and the process lingers.
    void session.close()
    this.#failed(reason, 'MCP_SERVER_LOST')
  }

  /**
   * A transport reported an error. Over stdio that is a protocol matter (the exit is seen by
   * onclose). A remote server's event stream broke, or a request failed: HTTP+SSE loses its session
   * with its stream; over Streamable HTTP a ping tells whether the server is still there.
   */
  #transportError(session: Session, err: Error): void {
    this.#options.log.debug(
      { server: this.name, err: this.#options.clean(err.message) },
      'mcp server transport error',
    )
    if (this.#closing || this.#state !== 'ready') return
    if (session.kind === 'sse' && isSseStreamError(err)) {
      return this.#lost(session, `the event stream broke: ${err.message}`)
    }
    if (session.kind !== 'http') return
    // The SDK gave up reopening the event stream (its message is its only sign): without it no
    // notification (list_changed, progress) would arrive, so a new connection is made.
    if (err.message.startsWith('Maximum reconnection attempts')) {
      return this.#lost(session, 'the event stream could not be reopened')
    }
    void this.#checkHealth(session)
  }

  /** Pings the server once (one check at a time); its verdict is acted on before this resolves. */
  #checkHealth(session: Session): Promise<void> {
    if (!session.current || this.#state !== 'ready') return Promise.resolve()
    return session.once('health check', async () => {
      try {
        await session.client.ping({ timeout: HEALTH_CHECK_MS })
      } catch (err) {
        if (!session.current || this.#state !== 'ready') return
        if (session.forgot(err)) this.#sessionExpired(session)
        else this.#lost(session, `the server does not answer: ${errorMessage(err)}`)
      }
    })
  }

  /** A remote server went away: the session is dropped and a new one tried with backoff. */
  #lost(session: Session, reason: string): void {
    this.#retire(session)
    this.#failed(reason, 'MCP_SERVER_LOST')
  }

  /**
   * The server answered 404 for our session: it restarted, or dropped us. A new session, now;
   * unless the last renewal was only just made, which would make this a loop: then with backoff.
   */
  #sessionExpired(session: Session): void {
    if (this.#closing || !session.current || this.#state !== 'ready') return
    if (Date.now() - this.#renewedAt < RENEW_AFTER_MS) {
      return this.#lost(session, 'the server keeps forgetting our session')
    }
    this.#renewedAt = Date.now()
    const error = serverError('MCP_SESSION_EXPIRED', 'the server no longer knows our session')
    this.#options.log.info({ server: this.name, error }, 'mcp server session expired; starting a new one')
    void this.#connect()
    this.#retire(session)
  }

  #retire(session: Session): void {
    this.#retiring.add(session)
    void session.retire().then(() => this.#retiring.delete(session))
  }

  /** Records the failure and schedules the next attempt, or gives up. Logs it once. */
  #failed(why: string, type: McpServerErrorCode): void {
    if (this.#closing) return
    const reason = this.#options.clean(why)
    const { max_reconnect_attempts: max, initial_reconnect_delay } = this.#options.connection
    const error = serverError(type, reason)
    if (this.#reconnects >= max) {
      this.#error = max > 0 ? `${reason} (gave up after ${max} reconnect attempts)` : reason
      this.#setState('failed', error, { gave_up: true })
      return
    }
    const delay = Math.min(initial_reconnect_delay * 1000 * 2 ** this.#reconnects, MAX_RECONNECT_DELAY_MS)
    this.#reconnects += 1
    this.#error = reason
    this.#timer = setTimeout(() => void this.#connect(), delay)
    this.#timer.unref()
    this.#setState('failed', error, { retry_in_ms: Math.round(delay) })
  }

  #listChanged(session: Session, kind: ListKind): void {
    if (this.#state === 'ready') this.#refresh(session, kind)
    else session.defer(kind)
  }

  /** Lists one kind again; one refresh at a time per kind, and one more if told again meanwhile. */
  #refresh(session: Session, kind: ListKind): void {
    session.repeat(kind, () => this.#refreshOnce(session, kind))
  }

  async #refreshOnce(session: Session, kind: ListKind): Promise<void> {
    if (this.#state !== 'ready') return
    const { log, connection, catalogue } = this.#options
    try {
      const lists = await listAgain(session.client, kind, { timeout: connection.connection_timeout * 1000 })
      if (!session.current || this.#state !== 'ready') return
      catalogue.update(this.name, lists)
      log.info(
        { server: this.name, state: this.#state, list: kind, [kind]: this.#counts()[kind] },
        'mcp server list refreshed',
      )
    } catch (err) {
      const error = serverError('MCP_LIST_REFRESH_FAILED', errorMessage(err))
      log.warn({ server: this.name, state: this.#state, list: kind, error }, 'mcp server list refresh failed')
    }
  }

  /** What the server offers, as /ready and the logs show it: nothing while it is not ready. */
  #counts(): Counts {
    return this.#state === 'ready' ? this.#options.catalogue.counts(this.name) : NOTHING
  }

  #setState(state: ServerState, error?: ServerError, extra: Record<string, unknown> = {}): void {
    this.#state = state
    const line = {
      server: this.name,
      transport: this.#session?.kind ?? this.#config.transport,
      state,
      ...this.#counts(),
      attempts: this.#attempts,
      ...(error ? { error } : {}),
      ...extra,
    }
    const level = extra.gave_up === true ? 'error' : state === 'failed' ? 'warn' : 'info'
    this.#options.log[level](line, 'mcp server state changed')
    this.#changes.wake()
  }
}

/**
 * The clock of one connection attempt: its signal fires once the time is up (expire), and never
 * after stop(): the MCP SDK keeps listening to a request's signal after it is answered.
 */
class AttemptClock {
  readonly #controller = new AbortController()
  #timer?: NodeJS.Timeout
  #expired?: string

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /** Why the time ran out, once it has. */
  get expired(): string | undefined {
    return this.#expired
  }

  /** Runs `then` after `seconds` (in place of what was due before), unless stopped first. */
  after(seconds: number, then: () => void): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(then, Math.min(seconds * 1000, MAX_TIMER_MS))
    this.#timer.unref()
  }

  expire(reason: string): void {
    this.#expired = reason
    this.#controller.abort(new Error(reason))
  }

  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
