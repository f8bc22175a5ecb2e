// The MCP registry: connects every configured server (stdio children, and remote servers over
// Streamable HTTP or the older HTTP+SSE transport), keeps each one's state, tools, prompts and
// resources, reconnects with backoff, and runs tool calls for the chat service. A failing server
// never fails a turn: its tools report the problem as their result.
import { setMaxListeners } from 'node:events'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js'
import {
  ErrorCode,
  McpError,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
  type GetPromptResult,
  type Progress,
  type Prompt,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'
import type { PlatformConfig, ServerConfig, StdioServerConfig } from '../config/types.js'
import {
  McpRequestFailedError,
  McpRequestRefusedError,
  McpServerNotFoundError,
  McpServerUnavailableError,
  McpTimeoutError,
  PromptNotFoundError,
  ResourceAmbiguousError,
  ResourceNotFoundError,
  ValidationFailedError,
  isPlatformError,
  type McpServerErrorCode,
  withData,
} from '../errors.js'
import { Redactor } from '../logging.js'
import { assignToolNames } from './naming.js'
import {
  httpStatusOf,
  isSessionExpired,
  isSseStreamError,
  speaksOnlySse,
  sseTransport,
  streamableHttpTransport,
} from './remote.js'
import { toolOutcome } from './results.js'
import { StdioTransport } from './stdio-transport.js'
import type {
  McpContent,
  RegisteredTool,
  ServerPrompt,
  ServerResource,
  ServerResourceTemplate,
  ServerState,
  ServerStatus,
  ToolCallOptions,
  ToolOutcome,
  ToolRunner,
} from './types.js'

export interface RegistryLog {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface McpRegistryOptions {
  servers: Record<string, ServerConfig>
  connection: PlatformConfig['mcp']['connection']
  /** Seconds for one tool call, unless the server sets its own `tool_timeout`. */
  toolTimeout: number
  /** The parent environment the children's environments are made from. */
  env: Record<string, string | undefined>
  /** Secret values: a variable holding one of them is not passed to a child. */
  secrets: string[]
  log: RegistryLog
}

type TransportKind = ServerStatus['transport']
/** The lists a server keeps, each refreshed by its own list_changed notification. */
type ListKind = 'tools' | 'prompts' | 'resources'

const CLIENT_INFO = { name: 'mcp-platform', version: '0.1.0' }
/** Backoff doubles up to this, so a long series of retries stays useful. */
const MAX_RECONNECT_DELAY_MS = 60_000
/** The SDK's own request timeout is set past ours, so ours always decides (and words) a timeout. */
const SDK_TIMEOUT_MARGIN_MS = 5_000
/** A ping that checks whether a remote server is still there gets at most this long. */
const HEALTH_CHECK_MS = 5_000
/** A session forgotten again within this long of the last renewal is renewed with backoff. */
const RENEW_AFTER_MS = 1_000
/** Requests still running on a replaced connection get this long to end with their own answer. */
const RETIRE_GRACE_MS = 2_000
/** A paginated list longer than this many pages is refused (a server could page forever). */
const MAX_PAGES = 1_000
/** An error text from a server is cut to this length (a remote server may answer with a whole page). */
const MAX_ERROR_CHARS = 300
/** At shutdown, a remote server gets this long to hear that its session ends. */
const END_SESSION_MS = 1_000
/** Servers' schemas use keywords and formats of their own: check what ajv knows, ignore the rest. */
const AJV_OPTIONS = { allErrors: true, strict: false, validateFormats: false, logger: false } as const

interface Lists {
  /** The tools the LLM may see, as last listed (kept while the server is down, for routing). */
  tools: Tool[]
  prompts: Prompt[]
  resources: Resource[]
  templates: ResourceTemplate[]
}

interface Slot {
  name: string
  config: ServerConfig
  state: ServerState
  /** The transport of the current (or last) connection: a remote one may have fallen back to SSE. */
  kind: TransportKind
  error?: string
  /** Failed connection attempts since the last success. */
  attempts: number
  /** Reconnects started since the last success (bounded by max_reconnect_attempts). */
  reconnects: number
  /** The first attempt has finished, one way or the other. */
  settled: boolean
  /** Bumped by every attempt and at close: events of an older connection are ignored. */
  generation: number
  lists: Lists
  client?: Client
  transport?: Transport
  timer?: NodeJS.Timeout
  refreshing: Map<ListKind, { again: boolean }>
  /** list_changed came while still connecting: list again once ready. */
  stale: Set<ListKind>
  /** A ping checking whether the remote server is still there, while it runs. */
  checking?: Promise<void>
  /** When a forgotten session was last renewed (renewals in a row are slowed down by backoff). */
  renewedAt: number
  /** Requests running, by the generation of the connection they were sent on. */
  inflight: Map<number, number>
  /** Connections replaced while requests on them still ran: closed after their last one. */
  retiring: Map<number, Transport>
  /** Called on every change of state (requests waiting for a reconnect). */
  waiters: Set<() => void>
}

interface KnownTool {
  name: string
  server: string
  definition: Tool
  validator?: ValidateFunction | null
}

export class McpRegistry implements ToolRunner, McpContent {
  private readonly slots: Slot[]
  private tools = new Map<string, KnownTool>()
  private readonly validators = new Map<string, ValidateFunction | null>()
  private readonly ajv07 = new Ajv(AJV_OPTIONS)
  private readonly ajv2020 = new Ajv2020(AJV_OPTIONS)
  private started = false
  private closing = false
  private readonly redactor = new Redactor()

  constructor(private readonly options: McpRegistryOptions) {
    this.redactor.add(options.secrets)
    this.slots = Object.entries(options.servers).map(([name, config]) => ({
      name,
      config,
      state: 'connecting',
      kind: config.transport,
      attempts: 0,
      reconnects: 0,
      settled: false,
      generation: 0,
      lists: { tools: [], prompts: [], resources: [], templates: [] },
      refreshing: new Map(),
      stale: new Set(),
      renewedAt: 0,
      inflight: new Map(),
      retiring: new Map(),
      waiters: new Set(),
    }))
  }

  /** Connects every server in the background: returns at once. */
  start(): void {
    if (this.started) return
    this.started = true
    for (const slot of this.slots) void this.connect(slot)
  }

  list(): RegisteredTool[] {
    const ready = new Set(this.ready().map((s) => s.name))
    return [...this.tools.values()].filter((t) => ready.has(t.server)).map(registered)
  }

  prompts(): ServerPrompt[] {
    return this.ready().flatMap((slot) => slot.lists.prompts.map((prompt) => ({ server: slot.name, prompt })))
  }

  resources(): ServerResource[] {
    return this.ready().flatMap((slot) =>
      slot.lists.resources.map((resource) => ({ server: slot.name, resource })),
    )
  }

  resourceTemplates(): ServerResourceTemplate[] {
    return this.ready().flatMap((slot) =>
      slot.lists.templates.map((template) => ({ server: slot.name, template })),
    )
  }

  status(): ServerStatus[] {
    return this.slots.map((slot) => {
      const status: ServerStatus = {
        name: slot.name,
        transport: slot.kind,
        state: slot.state,
        ...counts(slot),
        attempts: slot.attempts,
      }
      if (slot.error !== undefined) status.error = slot.error
      const stdio = slot.transport instanceof StdioTransport ? slot.transport : undefined
      if (stdio?.pid !== undefined && stdio.exitDescription === undefined && slot.state !== 'closed') {
        status.pid = stdio.pid
      }
      return status
    })
  }

  settled(): boolean {
    return this.slots.every((s) => s.settled)
  }

  async close(): Promise<void> {
    this.closing = true
    await Promise.all(this.slots.map((slot) => this.closeSlot(slot)))
  }

  async call(name: string, args: string, options: ToolCallOptions): Promise<ToolOutcome> {
    options.signal.throwIfAborted()
    const known = this.tools.get(name)
    if (!known) return toolError(`Unknown tool "${name}".`)
    const parsed = parseArguments(args)
    if (typeof parsed === 'string') return toolError(parsed)
    const problems = this.validate(known, parsed)
    if (problems.length > 0) return toolError(`Invalid arguments for ${name}:\n${problems.join('\n')}`)
    const slot = this.slots.find((s) => s.name === known.server) as Slot
    // A server that is connecting is waited for (within the call's time); one that failed is not.
    if (slot.state === 'failed' || slot.state === 'closed') return toolError(unavailable(slot))
    return this.invoke(slot, known, parsed, options)
  }

  async getPrompt(
    server: string,
    name: string,
    args: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<GetPromptResult> {
    const slot = this.slotNamed(server)
    const prompt = slot.lists.prompts.find((p) => p.name === name)
    if (!prompt) {
      this.requireReady(slot)
      throw new PromptNotFoundError(server, name)
    }
    const missing = (prompt.arguments ?? []).filter((a) => a.required === true && args[a.name] === undefined)
    if (missing.length > 0) {
      throw withData(new ValidationFailedError(), {
        validation_errors: missing.map((a) => ({
          field: `payload.arguments.${a.name}`,
          message: `The prompt '${name}' needs the argument '${a.name}'`,
          type: 'missing',
        })),
      })
    }
    return this.request(slot, signal, (client, options) =>
      client.getPrompt({ name, arguments: args }, options),
    )
  }

  async readResource(
    uri: string,
    server?: string,
    signal?: AbortSignal,
  ): Promise<{ server: string; result: ReadResourceResult }> {
    const slot = server === undefined ? this.ownerOf(uri) : this.slotNamed(server)
    try {
      const result = await this.request(slot, signal, (client, options) =>
        client.readResource({ uri }, options),
      )
      return { server: slot.name, result }
    } catch (err) {
      // The specification's "resource not found" code, or the SDK's InvalidParams for the same.
      const code = (err as { data?: { mcp_error?: { code?: number } } }).data?.mcp_error?.code
      if (code === -32002 || code === Number(ErrorCode.InvalidParams)) {
        throw withData(new ResourceNotFoundError(uri), (err as { data: Record<string, unknown> }).data)
      }
      throw err
    }
  }

  /** A server's text as we repeat it (in /ready, logs, tool results): no secret, and not too long. */
  private clean(text: string): string {
    const redacted = this.redactor.redact(text)
    return redacted.length > MAX_ERROR_CHARS ? `${redacted.slice(0, MAX_ERROR_CHARS)}…` : redacted
  }

  private ready(): Slot[] {
    return this.slots.filter((s) => s.state === 'ready')
  }

  private slotNamed(name: string): Slot {
    const slot = this.slots.find((s) => s.name === name)
    if (!slot) throw new McpServerNotFoundError(name)
    return slot
  }

  private requireReady(slot: Slot): Client {
    if (slot.state !== 'ready' || !slot.client) {
      throw new McpServerUnavailableError(slot.name, slot.error ?? slot.state)
    }
    return slot.client
  }

  /** The one server that lists this URI, or failing that has a template matching it. */
  private ownerOf(uri: string): Slot {
    let owners = this.slots.filter((s) => s.lists.resources.some((r) => r.uri === uri))
    if (owners.length === 0) {
      owners = this.slots.filter((s) => s.lists.templates.some((t) => matches(t.uriTemplate, uri)))
    }
    if (owners.length === 0) throw new ResourceNotFoundError(uri)
    if (owners.length > 1) throw new ResourceAmbiguousError(uri, owners.map((s) => s.name).join(', '))
    return owners[0] as Slot
  }

  /**
   * One request to a server, for a client's action: timed out after connection_timeout, its
   * failures as the platform's errors. A remote server that lost our session is connected anew
   * and asked once more: it never saw the request, so asking again is safe.
   */
  private async request<T>(
    slot: Slot,
    signal: AbortSignal | undefined,
    send: (client: Client, options: RequestOptions) => Promise<T>,
  ): Promise<T> {
    const seconds = this.options.connection.connection_timeout
    const limit = deadline(seconds * 1000, signal)
    const options: RequestOptions = { signal: limit.signal, timeout: seconds * 1000 + SDK_TIMEOUT_MARGIN_MS }
    try {
      return await this.withSession(slot, options.signal, (client) => send(client, options))
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      if (limit.expired()) throw new McpTimeoutError(slot.name, seconds)
      throw requestError(slot, err, (text) => this.clean(text))
    } finally {
      limit.dispose()
    }
  }

  /**
   * Runs `send` on the ready connection (waiting for one that is connecting), and once more on a
   * new session when the Streamable HTTP server answered this very request with 404 for our
   * session (it restarted): refused so, the request never ran. A request cut off any other way
   * may have run, and is not sent again. A renewal does not cut off the requests still running on
   * the old connection: each ends with its own answer, and so is known to have run or not.
   */
  private async withSession<T>(
    slot: Slot,
    signal: AbortSignal | undefined,
    send: (client: Client) => Promise<T>,
  ): Promise<T> {
    if (slot.state === 'connecting') await this.settledAfter(slot, slot.generation - 1, signal)
    const client = this.requireReady(slot)
    const { generation, transport } = slot
    try {
      return await this.tracked(slot, generation, () => send(client))
    } catch (err) {
      if (signal?.aborted || !forgotSession(transport, err)) throw err
      this.sessionExpired(slot, generation)
      await this.settledAfter(slot, generation, signal)
      const renewed = this.requireReady(slot)
      return await this.tracked(slot, slot.generation, () => send(renewed))
    }
  }

  /** Counts a request on its connection, which, once replaced, closes after its last request. */
  private async tracked<T>(slot: Slot, generation: number, run: () => Promise<T>): Promise<T> {
    slot.inflight.set(generation, (slot.inflight.get(generation) ?? 0) + 1)
    try {
      return await run()
    } finally {
      const left = (slot.inflight.get(generation) ?? 1) - 1
      if (left > 0) slot.inflight.set(generation, left)
      else {
        slot.inflight.delete(generation)
        const retired = slot.retiring.get(generation)
        slot.retiring.delete(generation)
        void retired?.close().catch(() => undefined)
      }
    }
  }

  /**
   * Closes a replaced connection now, or after the requests still running on it, within a grace
   * period: one whose answer stream broke with the old server would otherwise wait for its timeout.
   */
  private retire(slot: Slot, generation: number, transport: Transport | undefined): void {
    if (!transport) return
    if (!slot.inflight.has(generation)) return void transport.close().catch(() => undefined)
    slot.retiring.set(generation, transport)
    setTimeout(() => {
      if (slot.retiring.get(generation) !== transport) return
      slot.retiring.delete(generation)
      void transport.close().catch(() => undefined)
    }, RETIRE_GRACE_MS).unref()
  }

  /** Resolves once an attempt newer than `generation` has ended (ready or failed), or on abort. */
  private settledAfter(slot: Slot, generation: number, signal: AbortSignal | undefined): Promise<void> {
    const done = () => slot.generation > generation && slot.state !== 'connecting'
    if (done() || signal?.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => {
        if (!done() && !signal?.aborted && !this.closing) return
        slot.waiters.delete(check)
        signal?.removeEventListener('abort', check)
        resolve()
      }
      slot.waiters.add(check)
      signal?.addEventListener('abort', check, { once: true })
    })
  }

  private async invoke(
    slot: Slot,
    known: KnownTool,
    args: Record<string, unknown>,
    options: ToolCallOptions,
  ): Promise<ToolOutcome> {
    const seconds = slot.config.tool_timeout ?? this.options.toolTimeout
    const limit = deadline(seconds * 1000, options.signal)
    const generation = slot.generation
    // The SDK sends notifications/cancelled to the server when this signal fires.
    const signal = limit.signal
    const requestOptions: RequestOptions = {
      signal,
      timeout: seconds * 1000 + SDK_TIMEOUT_MARGIN_MS,
      resetTimeoutOnProgress: false,
    }
    if (options.onProgress) requestOptions.onprogress = forwardProgress(options.onProgress)
    try {
      return toolOutcome(
        await this.withSession(slot, signal, (client) =>
          client.callTool({ name: known.definition.name, arguments: args }, undefined, requestOptions),
        ),
      )
    } catch (err) {
      if (options.signal.aborted) throw options.signal.reason
      if (limit.expired()) return toolError(`The tool call timed out after ${seconds} s.`)
      // The session expired and the new one could not be had.
      if (err instanceof McpServerUnavailableError) return toolError(unavailable(slot))
      if (isConnectionClosed(err) || generation !== slot.generation || slot.state !== 'ready') {
        return toolError(
          `The server "${slot.name}" went away during the call${slot.error ? ` (${slot.error})` : ''}.`,
        )
      }
      return toolError(`The tool call failed: ${this.clean(errorMessage(err))}`)
    } finally {
      limit.dispose()
    }
  }

  private validate(known: KnownTool, args: Record<string, unknown>): string[] {
    if (known.validator === undefined) known.validator = this.compile(known)
    if (!known.validator || known.validator(args)) return []
    return (known.validator.errors ?? []).map(describeAjvError)
  }

  /** The validator of a tool's input schema; null when it does not compile (the server judges then). */
  private compile(known: KnownTool): ValidateFunction | null {
    const { $schema, ...schema } = known.definition.inputSchema as Record<string, unknown>
    const draft07 = typeof $schema === 'string' && /draft-0[4-7]/.test($schema)
    const key = `${draft07 ? '07' : '2020'}:${JSON.stringify(schema)}`
    // Keyed by the schema's text: an unchanged tool after a refresh reuses its validator.
    if (this.validators.has(key)) return this.validators.get(key) as ValidateFunction | null
    let validator: ValidateFunction | null = null
    try {
      validator = (draft07 ? this.ajv07 : this.ajv2020).compile(schema)
    } catch (err) {
      this.options.log.warn(
        { server: known.server, tool: known.definition.name, err: errorMessage(err) },
        'mcp tool input schema does not compile; arguments are not checked',
      )
    }
    this.validators.set(key, validator)
    return validator
  }

  private async connect(slot: Slot): Promise<void> {
    if (this.closing) return
    const generation = ++slot.generation
    slot.timer = undefined
    slot.stale.clear()
    this.setState(slot, 'connecting')
    const seconds = this.options.connection.connection_timeout
    const deadline = new AbortController()
    // Every page of every list listens on it until the attempt ends: a long list is not a leak.
    setMaxListeners(0, deadline.signal)
    const timer = setTimeout(() => deadline.abort(new Error('connection timeout')), seconds * 1000)
    timer.unref()
    const requestOptions = { signal: deadline.signal, timeout: seconds * 1000 + SDK_TIMEOUT_MARGIN_MS }
    try {
      // The legacy SSE transport waits for its `endpoint` event without a signal: raced here.
      const client = await abortable(this.open(slot, generation, requestOptions), deadline.signal)
      const lists = await this.fetchLists(slot, client, requestOptions)
      if (generation !== slot.generation) return
      this.connected(slot, lists)
    } catch (err) {
      if (generation !== slot.generation) return
      if (deadline.signal.aborted) {
        void slot.transport?.close()
        this.attemptFailed(slot, `did not become ready within ${seconds} s`)
        return
      }
      // A child that dies at once often fails a write (EPIPE) before its exit is seen: once closed,
      // its exit status and last stderr lines say why.
      await slot.transport?.close()
      if (generation === slot.generation) this.attemptFailed(slot, connectFailure(err, slot.transport))
    } finally {
      clearTimeout(timer)
      slot.settled = true
    }
  }

  /** Starts the server's transport and initializes the session; a remote server may need SSE. */
  private async open(slot: Slot, generation: number, options: RequestOptions): Promise<Client> {
    const { config } = slot
    if (config.transport === 'stdio')
      return this.attach(slot, generation, 'stdio', this.stdio(config), options)
    if (config.transport === 'sse') return this.attach(slot, generation, 'sse', sseTransport(config), options)
    try {
      return await this.attach(slot, generation, 'http', streamableHttpTransport(config), options)
    } catch (err) {
      if (config.explicit || !speaksOnlySse(err) || generation !== slot.generation) throw err
      this.options.log.info(
        { server: slot.name, status: httpStatusOf(err) },
        'mcp server does not speak Streamable HTTP; trying HTTP+SSE',
      )
      await slot.transport?.close().catch(() => undefined)
      try {
        return await this.attach(slot, generation, 'sse', sseTransport(config), options)
      } catch (sseErr) {
        // Both failed: the Streamable HTTP answer is often the one that says what is wrong.
        throw new Error(
          `Streamable HTTP answered HTTP ${httpStatusOf(err)}, and HTTP+SSE failed: ${errorMessage(sseErr)}`,
          { cause: sseErr },
        )
      }
    }
  }

  private async attach(
    slot: Slot,
    generation: number,
    kind: TransportKind,
    transport: Transport,
    options: RequestOptions,
  ): Promise<Client> {
    const client = new Client(CLIENT_INFO, { capabilities: {} })
    slot.kind = kind
    slot.transport = transport
    slot.client = client
    client.onclose = () => this.connectionClosed(slot, generation)
    client.onerror = (err) => this.transportError(slot, generation, err)
    client.setNotificationHandler(ToolListChangedNotificationSchema, () =>
      this.listChanged(slot, generation, 'tools'),
    )
    client.setNotificationHandler(PromptListChangedNotificationSchema, () =>
      this.listChanged(slot, generation, 'prompts'),
    )
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () =>
      this.listChanged(slot, generation, 'resources'),
    )
    await client.connect(transport, options)
    return client
  }

  private stdio(config: StdioServerConfig): StdioTransport {
    const { log, env, secrets } = this.options
    return new StdioTransport({
      command: config.command,
      args: config.args,
      env: childEnv(env, secrets, config.env),
      onStderr: (line) => log.debug({ server: config.name, stderr: line }, 'mcp server stderr'),
      ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
    })
  }

  /**
   * Every list the server offers, every page. Tools decide whether the server is usable; a server
   * whose prompts or resources cannot be listed still serves its tools (the failure is logged).
   */
  private async fetchLists(slot: Slot, client: Client, options: RequestOptions): Promise<Lists> {
    const [tools, prompts, resources] = await Promise.all([
      listTools(client, options),
      this.tolerant(slot, 'prompts', listPrompts(client, options), []),
      this.tolerant(slot, 'resources', listResources(client, options), { resources: [], templates: [] }),
    ])
    return { tools: this.visible(slot, tools), prompts, ...resources }
  }

  private async tolerant<T>(slot: Slot, kind: ListKind, listing: Promise<T>, empty: T): Promise<T> {
    try {
      return await listing
    } catch (err) {
      const error: { type: McpServerErrorCode; message: string } = {
        type: 'MCP_LIST_REFRESH_FAILED',
        message: errorMessage(err),
      }
      this.options.log.warn(
        { server: slot.name, list: kind, error },
        `mcp server ${kind} could not be listed`,
      )
      return empty
    }
  }

  private connected(slot: Slot, lists: Lists): void {
    slot.attempts = 0
    slot.reconnects = 0
    delete slot.error
    slot.lists = lists
    this.reindex()
    this.setState(slot, 'ready')
    for (const kind of slot.stale) this.refresh(slot, slot.generation, kind)
    slot.stale.clear()
  }

  private attemptFailed(slot: Slot, reason: string): void {
    slot.attempts += 1
    this.failed(slot, reason, 'MCP_CONNECT_FAILED')
  }

  /** The live connection closed: the child died, or its pipes did. Ours to close at shutdown. */
  private connectionClosed(slot: Slot, generation: number): void {
    if (this.closing || generation !== slot.generation || slot.state !== 'ready') return
    const transport = slot.transport
    const stdio = transport instanceof StdioTransport ? transport : undefined
    const reason = stdio?.exitDescription
      ? withStderr(`the server process ${stdio.exitDescription}`, stdio)
      : 'the connection to the server closed'
    // Ends the group even if only the pipes closed and the process lingers.
    void transport?.close()
    this.failed(slot, reason, 'MCP_SERVER_LOST')
  }

  /**
   * A transport reported an error. Over stdio that is a protocol matter (the exit is seen by
   * onclose). A remote server's event stream broke, or a request failed: HTTP+SSE loses its session
   * with its stream; over Streamable HTTP a ping tells whether the server is still there.
   */
  private transportError(slot: Slot, generation: number, err: Error): void {
    this.options.log.debug({ server: slot.name, err: this.clean(err.message) }, 'mcp server transport error')
    if (this.closing || generation !== slot.generation || slot.state !== 'ready') return
    if (slot.kind === 'sse' && isSseStreamError(err))
      return this.lost(slot, `the event stream broke: ${err.message}`)
    if (slot.kind !== 'http') return
    // The SDK gave up reopening the event stream (its message is its only sign): without it no
    // notification (list_changed, progress) would arrive, so a new connection is made.
    if (err.message.startsWith('Maximum reconnection attempts')) {
      return this.lost(slot, 'the event stream could not be reopened')
    }
    void this.checkHealth(slot, generation)
  }

  /** Pings the server once (one check at a time); its verdict is acted on before this resolves. */
  private checkHealth(slot: Slot, generation: number): Promise<void> {
    const client = slot.client
    if (generation !== slot.generation || slot.state !== 'ready' || !client) return Promise.resolve()
    slot.checking ??= (async () => {
      try {
        await client.ping({ timeout: HEALTH_CHECK_MS })
      } catch (err) {
        if (generation !== slot.generation || slot.state !== 'ready') return
        if (forgotSession(slot.transport, err)) this.sessionExpired(slot, generation)
        else this.lost(slot, `the server does not answer: ${errorMessage(err)}`)
      } finally {
        slot.checking = undefined
      }
    })()
    return slot.checking
  }

  /** A remote server went away: the connection is dropped and retried with backoff. */
  private lost(slot: Slot, reason: string): void {
    const { transport, generation } = slot
    // Older events are ignored from here on, including the onclose of the close below.
    slot.generation += 1
    this.retire(slot, generation, transport)
    this.failed(slot, reason, 'MCP_SERVER_LOST')
  }

  /**
   * The server answered 404 for our session: it restarted, or dropped us. A new session, now;
   * unless the last renewal was only just made, which would make this a loop: then with backoff.
   */
  private sessionExpired(slot: Slot, generation: number): void {
    if (this.closing || generation !== slot.generation || slot.state !== 'ready') return
    if (Date.now() - slot.renewedAt < RENEW_AFTER_MS) {
      return this.lost(slot, 'the server keeps forgetting our session')
    }
    slot.renewedAt = Date.now()
    const transport = slot.transport
    this.options.log.info(
      {
        server: slot.name,
        error: { type: 'MCP_SESSION_EXPIRED', message: 'the server no longer knows our session' },
      },
      `mcp server ${slot.name} session expired; starting a new one`,
    )
    void this.connect(slot)
    this.retire(slot, generation, transport)
  }

  /** Records the failure and schedules the next attempt, or gives up. Logs it once. */
  private failed(slot: Slot, why: string, type: McpServerErrorCode): void {
    if (this.closing) return
    const reason = this.clean(why)
    const max = this.options.connection.max_reconnect_attempts
    if (slot.reconnects >= max) {
      slot.error = max > 0 ? `${reason} (gave up after ${max} reconnect attempts)` : reason
      this.setState(slot, 'failed', { type, message: reason }, { gave_up: true })
      return
    }
    const delay = Math.min(
      this.options.connection.initial_reconnect_delay * 1000 * 2 ** slot.reconnects,
      MAX_RECONNECT_DELAY_MS,
    )
    slot.reconnects += 1
    slot.error = reason
    slot.timer = setTimeout(() => void this.connect(slot), delay)
    slot.timer.unref()
    this.setState(slot, 'failed', { type, message: reason }, { retry_in_ms: Math.round(delay) })
  }

  private listChanged(slot: Slot, generation: number, kind: ListKind): void {
    if (generation !== slot.generation) return
    if (slot.state === 'ready') this.refresh(slot, generation, kind)
    else slot.stale.add(kind)
  }

  /** Lists one kind again; one refresh at a time per kind, and one more if told again meanwhile. */
  private refresh(slot: Slot, generation: number, kind: ListKind): void {
    const running = slot.refreshing.get(kind)
    if (running) {
      running.again = true
      return
    }
    const refresh = { again: true }
    slot.refreshing.set(kind, refresh)
    void (async () => {
      while (refresh.again && generation === slot.generation && slot.state === 'ready') {
        refresh.again = false
        await this.refreshOnce(slot, generation, kind)
      }
    })().finally(() => {
      slot.refreshing.delete(kind)
    })
  }

  private async refreshOnce(slot: Slot, generation: number, kind: ListKind): Promise<void> {
    const options = { timeout: this.options.connection.connection_timeout * 1000 }
    const client = slot.client as Client
    try {
      if (kind === 'tools') {
        const tools = await listTools(client, options)
        if (generation !== slot.generation || slot.state !== 'ready') return
        slot.lists.tools = this.visible(slot, tools)
        this.reindex()
      } else if (kind === 'prompts') {
        const prompts = await listPrompts(client, options)
        if (generation !== slot.generation || slot.state !== 'ready') return
        slot.lists.prompts = prompts
      } else {
        const { resources, templates } = await listResources(client, options)
        if (generation !== slot.generation || slot.state !== 'ready') return
        Object.assign(slot.lists, { resources, templates })
      }
      this.options.log.info(
        { server: slot.name, state: slot.state, [kind]: counts(slot)[kind] },
        `mcp server ${kind} changed`,
      )
    } catch (err) {
      const error: { type: McpServerErrorCode; message: string } = {
        type: 'MCP_LIST_REFRESH_FAILED',
        message: errorMessage(err),
      }
      this.options.log.warn(
        { server: slot.name, state: slot.state, list: kind, error },
        `mcp server ${kind} refresh failed`,
      )
    }
  }

  /** allow/deny of the server's configuration; tools that only run as tasks cannot be called here. */
  private visible(slot: Slot, tools: Tool[]): Tool[] {
    const { allow, deny } = slot.config.tools ?? {}
    return tools.filter(
      (t) =>
        (!allow || allow.includes(t.name)) &&
        !(deny ?? []).includes(t.name) &&
        t.execution?.taskSupport !== 'required',
    )
  }

  /** Names every known tool again: a change on one server may resolve or create a collision. */
  private reindex(): void {
    const entries = this.slots.flatMap((slot) =>
      slot.lists.tools.map((definition) => ({ server: slot.name, definition })),
    )
    const names = assignToolNames(entries.map((e) => ({ server: e.server, tool: e.definition.name })))
    this.tools = new Map(
      entries.map((entry, i) => [names[i] as string, { name: names[i] as string, ...entry }]),
    )
  }

  private async closeSlot(slot: Slot): Promise<void> {
    if (slot.state === 'closed') return
    clearTimeout(slot.timer)
    slot.timer = undefined
    slot.generation += 1
    const transport = slot.transport
    // A Streamable HTTP session is ended politely (DELETE), within a short bound.
    if (transport instanceof StreamableHTTPClientTransport && transport.sessionId !== undefined) {
      const bound = new Promise((resolve) => setTimeout(resolve, END_SESSION_MS).unref())
      await Promise.race([transport.terminateSession().catch(() => undefined), bound])
    }
    const open = [...slot.retiring.values(), ...(transport ? [transport] : [])]
    slot.retiring.clear()
    await Promise.all(open.map((t) => t.close().catch(() => undefined)))
    this.setState(slot, 'closed')
  }

  private setState(
    slot: Slot,
    state: ServerState,
    error?: { type: McpServerErrorCode; message: string },
    extra: Record<string, unknown> = {},
  ): void {
    slot.state = state
    const line = {
      server: slot.name,
      transport: slot.kind,
      state,
      ...counts(slot),
      attempts: slot.attempts,
      ...(error ? { error } : {}),
      ...extra,
    }
    const level = extra.gave_up === true ? 'error' : state === 'failed' ? 'warn' : 'info'
    this.options.log[level](line, `mcp server ${slot.name} ${state}`)
    for (const wake of [...slot.waiters]) wake()
  }
}

/** A child's environment: the parent's minus any variable holding a secret, plus its own `env`. */
export function childEnv(
  parent: Record<string, string | undefined>,
  secrets: readonly string[],
  own: Record<string, string>,
): Record<string, string> {
  const hidden = new Set(secrets.filter((s) => s !== ''))
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(parent)) {
    if (value !== undefined && !hidden.has(value)) env[key] = value
  }
  return { ...env, ...own }
}

/** What a server offers, as /ready and the logs show it: nothing while it is not ready. */
function counts(slot: Slot): { tools: number; prompts: number; resources: number } {
  if (slot.state !== 'ready') return { tools: 0, prompts: 0, resources: 0 }
  const { tools, prompts, resources, templates } = slot.lists
  return { tools: tools.length, prompts: prompts.length, resources: resources.length + templates.length }
}

interface Page<T> {
  items: T[]
  next?: string | undefined
}

/** Every page of a paginated list, following the server's cursors to the end. */
async function allPages<T>(
  method: string,
  page: (params?: { cursor: string }) => Promise<Page<T>>,
): Promise<T[]> {
  const items: T[] = []
  const seen = new Set<string>()
  let cursor: string | undefined
  do {
    const result = await page(cursor === undefined ? undefined : { cursor })
    items.push(...result.items)
    cursor = result.next
    // A server that hands out the same cursor again would keep us here forever.
    if (cursor !== undefined && seen.has(cursor)) throw new Error(`the server repeated a ${method} cursor`)
    if (cursor !== undefined) seen.add(cursor)
    if (seen.size >= MAX_PAGES) throw new Error(`the server sent more than ${MAX_PAGES} pages of ${method}`)
  } while (cursor !== undefined)
  return items
}

async function listTools(client: Client, options: RequestOptions): Promise<Tool[]> {
  if (!client.getServerCapabilities()?.tools) return []
  return allPages('tools/list', async (params) => {
    const result = await client.listTools(params, options)
    return { items: result.tools, next: result.nextCursor }
  })
}

async function listPrompts(client: Client, options: RequestOptions): Promise<Prompt[]> {
  if (!client.getServerCapabilities()?.prompts) return []
  return allPages('prompts/list', async (params) => {
    const result = await client.listPrompts(params, options)
    return { items: result.prompts, next: result.nextCursor }
  })
}

async function listResources(
  client: Client,
  options: RequestOptions,
): Promise<{ resources: Resource[]; templates: ResourceTemplate[] }> {
  if (!client.getServerCapabilities()?.resources) return { resources: [], templates: [] }
  const [resources, templates] = await Promise.all([
    allPages('resources/list', async (params) => {
      const result = await client.listResources(params, options)
      return { items: result.resources, next: result.nextCursor }
    }),
    allPages('resources/templates/list', async (params) => {
      const result = await client.listResourceTemplates(params, options)
      return { items: result.resourceTemplates, next: result.nextCursor }
    }).catch((err: unknown) => {
      // Templates are optional: a server without any may not know the method.
      if (err instanceof McpError && err.code === Number(ErrorCode.MethodNotFound)) return []
      throw err
    }),
  ])
  return { resources, templates }
}

function matches(template: string, uri: string): boolean {
  try {
    return new UriTemplate(template).match(uri) !== null
  } catch {
    return false
  }
}

/** A failed request of a client's action as the platform's error; MCP errors travel in `data`. */
function requestError(slot: Slot, err: unknown, clean: (text: string) => string): Error {
  if (isPlatformError(err)) return err
  if (err instanceof McpError) {
    if (err.code === Number(ErrorCode.ConnectionClosed)) {
      return new McpServerUnavailableError(slot.name, 'it went away during the request')
    }
    const message = clean(err.message.replace(/^MCP error -?\d+: /, ''))
    const mcp_error = { code: err.code, message, ...(err.data === undefined ? {} : { data: err.data }) }
    const Refused = err.code === Number(ErrorCode.InvalidParams)
    return withData(
      Refused
        ? new McpRequestRefusedError(slot.name, message)
        : new McpRequestFailedError(slot.name, message),
      { mcp_error },
    )
  }
  // The request never got an answer: the server is unreachable or answered HTTP with an error.
  return new McpServerUnavailableError(slot.name, clean(errorMessage(err)))
}

function registered(known: KnownTool): RegisteredTool {
  const { definition } = known
  const tool: RegisteredTool = {
    name: known.name,
    server: known.server,
    tool: definition.name,
    description: definition.description ?? definition.title ?? '',
    input_schema: definition.inputSchema,
  }
  if (definition.annotations) tool.annotations = definition.annotations
  return tool
}

/** The arguments as an object, or what is wrong with them (in words for the LLM). */
function parseArguments(args: string): Record<string, unknown> | string {
  // Some models send nothing at all for a tool without parameters.
  if (args.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(args)
  } catch (err) {
    return `The arguments are not valid JSON: ${errorMessage(err)}`
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return 'The arguments must be a JSON object.'
  }
  return value as Record<string, unknown>
}

function describeAjvError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>
  if (error.keyword === 'required')
    return `${error.instancePath}/${String(params.missingProperty)}: is required`
  if (error.keyword === 'additionalProperties') {
    return `${error.instancePath}/${String(params.additionalProperty)}: is not allowed`
  }
  return `${error.instancePath || '/'}: ${error.message ?? 'is not valid'}`
}

function forwardProgress(onProgress: NonNullable<ToolCallOptions['onProgress']>): (p: Progress) => void {
  return (p) => {
    try {
      onProgress({
        progress: p.progress,
        ...(p.total === undefined ? {} : { total: p.total }),
        ...(p.message === undefined ? {} : { message: p.message }),
      })
    } catch {
      // A listener's failure must not break the call (the SDK would drop the whole message).
    }
  }
}

function connectFailure(err: unknown, transport: Transport | undefined): string {
  // The SDK only says "Connection closed": the exit status and stderr say why.
  if (transport instanceof StdioTransport && transport.exitDescription)
    return withStderr(`the server process ${transport.exitDescription}`, transport)
  const status = httpStatusOf(err)
  return status === undefined ? errorMessage(err) : `HTTP ${status}: ${errorMessage(err)}`
}

function withStderr(reason: string, transport: StdioTransport): string {
  const tail = transport.stderrTail.slice(-3).join(' | ')
  return tail ? `${reason}: ${tail}` : reason
}

function unavailable(slot: Slot): string {
  const why = slot.error ? `: ${slot.error}` : ''
  return `The server "${slot.name}" is not available right now (${slot.state}${why}). Try again later.`
}

function isConnectionClosed(err: unknown): boolean {
  return err instanceof McpError && err.code === Number(ErrorCode.ConnectionClosed)
}

function toolError(content: string): ToolOutcome {
  return { content, is_error: true }
}

function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  // fetch only says "fetch failed": the cause says why (ECONNREFUSED, a DNS failure, …).
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined
  const why =
    typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : ''
  return why && !err.message.includes(why) ? `${err.message} (${why})` : err.message
}

/** The server refused this request for a session it no longer knows: it never ran. */
function forgotSession(transport: Transport | undefined, err: unknown): boolean {
  return (
    isSessionExpired(err) &&
    transport instanceof StreamableHTTPClientTransport &&
    transport.sessionId !== undefined
  )
}

/**
 * A signal that fires when `outer` does or after `ms`, and no more once disposed: the SDK keeps
 * listening to a request's signal after it is answered, and would cancel a finished request.
 */
function deadline(
  ms: number,
  outer: AbortSignal | undefined,
): { signal: AbortSignal; expired: () => boolean; dispose: () => void } {
  const controller = new AbortController()
  let expired = false
  const timer = setTimeout(() => {
    expired = true
    controller.abort(new Error(`timed out after ${ms} ms`))
  }, ms)
  timer.unref()
  const forward = () => controller.abort(outer?.reason)
  if (outer?.aborted) forward()
  else outer?.addEventListener('abort', forward, { once: true })
  return {
    signal: controller.signal,
    expired: () => expired,
    dispose: () => {
      clearTimeout(timer)
      outer?.removeEventListener('abort', forward)
    },
  }
}

/** `promise`, or the signal's reason once it fires first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error)
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })
    promise.then(resolve, reject)
  })
}
