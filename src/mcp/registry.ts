// The MCP registry: connects every configured server (stdio here; remote servers come later),
// keeps each one's state and tools, reconnects with backoff, and runs tool calls for the chat
// service. A failing server never fails a turn: its tools report the problem as their result.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js'
import {
  ErrorCode,
  McpError,
  ToolListChangedNotificationSchema,
  type Progress,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'
import type { PlatformConfig, ServerConfig, StdioServerConfig } from '../config/types.js'
import { assignToolNames } from './naming.js'
import { toolOutcome } from './results.js'
import { StdioTransport } from './stdio-transport.js'
import type {
  RegisteredTool,
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

/** `error.type` of the registry's log lines. */
export type McpErrorType =
  'MCP_CONNECT_FAILED' | 'MCP_SERVER_LOST' | 'MCP_TRANSPORT_UNSUPPORTED' | 'MCP_TOOLS_REFRESH_FAILED'

export const REMOTE_UNSUPPORTED = 'remote servers are not supported in this version'
const CLIENT_INFO = { name: 'mcp-platform', version: '0.1.0' }
/** Backoff doubles up to this, so a long series of retries stays useful. */
const MAX_RECONNECT_DELAY_MS = 60_000
/** The SDK's own request timeout is set past ours, so ours always decides (and words) a timeout. */
const SDK_TIMEOUT_MARGIN_MS = 5_000
/** Servers' schemas use keywords and formats of their own: check what ajv knows, ignore the rest. */
const AJV_OPTIONS = { allErrors: true, strict: false, validateFormats: false, logger: false } as const

interface Slot {
  name: string
  config: ServerConfig
  state: ServerState
  error?: string
  /** Failed connection attempts since the last success. */
  attempts: number
  /** Reconnects started since the last success (bounded by max_reconnect_attempts). */
  reconnects: number
  /** The first attempt has finished, one way or the other. */
  settled: boolean
  /** Bumped by every attempt and at close: events of an older connection are ignored. */
  generation: number
  /** The tools the LLM may see, as last listed (kept while the server is down, for routing). */
  tools: Tool[]
  client?: Client
  transport?: StdioTransport
  timer?: NodeJS.Timeout
  refresh?: { again: boolean }
  /** tools/list_changed came while still connecting: list again once ready. */
  toolsStale?: boolean
}

interface KnownTool {
  name: string
  server: string
  definition: Tool
  validator?: ValidateFunction | null
}

export class McpRegistry implements ToolRunner {
  private readonly slots: Slot[]
  private tools = new Map<string, KnownTool>()
  private readonly validators = new Map<string, ValidateFunction | null>()
  private readonly ajv07 = new Ajv(AJV_OPTIONS)
  private readonly ajv2020 = new Ajv2020(AJV_OPTIONS)
  private started = false
  private closing = false

  constructor(private readonly options: McpRegistryOptions) {
    this.slots = Object.entries(options.servers).map(([name, config]) => ({
      name,
      config,
      state: 'connecting',
      attempts: 0,
      reconnects: 0,
      settled: false,
      generation: 0,
      tools: [],
    }))
  }

  /** Connects every server in the background: returns at once. */
  start(): void {
    if (this.started) return
    this.started = true
    for (const slot of this.slots) {
      if (slot.config.transport === 'stdio') void this.connect(slot)
      else this.unsupported(slot)
    }
  }

  list(): RegisteredTool[] {
    const ready = new Set(this.slots.filter((s) => s.state === 'ready').map((s) => s.name))
    return [...this.tools.values()].filter((t) => ready.has(t.server)).map(registered)
  }

  status(): ServerStatus[] {
    return this.slots.map((slot) => {
      const status: ServerStatus = {
        name: slot.name,
        transport: slot.config.transport,
        state: slot.state,
        tools: slot.state === 'ready' ? slot.tools.length : 0,
        attempts: slot.attempts,
      }
      if (slot.error !== undefined) status.error = slot.error
      const pid = slot.transport?.exitDescription === undefined ? slot.transport?.pid : undefined
      if (pid !== undefined && slot.state !== 'closed') status.pid = pid
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
    if (slot.state !== 'ready' || !slot.client) return toolError(unavailable(slot))
    return this.invoke(slot, slot.client, known, parsed, options)
  }

  private async invoke(
    slot: Slot,
    client: Client,
    known: KnownTool,
    args: Record<string, unknown>,
    options: ToolCallOptions,
  ): Promise<ToolOutcome> {
    const seconds = slot.config.tool_timeout ?? this.options.toolTimeout
    const timeout = new AbortController()
    const timer = setTimeout(() => timeout.abort(new Error(`timed out after ${seconds} s`)), seconds * 1000)
    timer.unref()
    const generation = slot.generation
    // The SDK sends notifications/cancelled to the server when this signal fires.
    const requestOptions: RequestOptions = {
      signal: AbortSignal.any([options.signal, timeout.signal]),
      timeout: seconds * 1000 + SDK_TIMEOUT_MARGIN_MS,
      resetTimeoutOnProgress: false,
    }
    if (options.onProgress) requestOptions.onprogress = forwardProgress(options.onProgress)
    try {
      return toolOutcome(
        await client.callTool({ name: known.definition.name, arguments: args }, undefined, requestOptions),
      )
    } catch (err) {
      if (options.signal.aborted) throw options.signal.reason
      if (timeout.signal.aborted) return toolError(`The tool call timed out after ${seconds} s.`)
      if (isConnectionClosed(err) || generation !== slot.generation || slot.state !== 'ready') {
        return toolError(
          `The server "${slot.name}" went away during the call${slot.error ? ` (${slot.error})` : ''}.`,
        )
      }
      return toolError(`The tool call failed: ${errorMessage(err)}`)
    } finally {
      clearTimeout(timer)
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
    const { config } = slot
    if (this.closing || config.transport !== 'stdio') return
    const generation = ++slot.generation
    slot.timer = undefined
    slot.toolsStale = false
    this.setState(slot, 'connecting')
    const transport = this.transportFor(config)
    const client = new Client(CLIENT_INFO, { capabilities: {} })
    slot.transport = transport
    slot.client = client
    client.onclose = () => this.connectionClosed(slot, generation)
    client.onerror = (err) =>
      this.options.log.debug({ server: slot.name, err: err.message }, 'mcp server protocol error')
    client.setNotificationHandler(ToolListChangedNotificationSchema, () =>
      this.toolsChanged(slot, generation),
    )
    const seconds = this.options.connection.connection_timeout
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(new Error('connection timeout')), seconds * 1000)
    timer.unref()
    try {
      const requestOptions = { signal: deadline.signal, timeout: seconds * 1000 + SDK_TIMEOUT_MARGIN_MS }
      await client.connect(transport, requestOptions)
      const tools = await listTools(client, requestOptions)
      if (generation !== slot.generation) return
      this.connected(slot, tools)
    } catch (err) {
      if (generation !== slot.generation) return
      if (deadline.signal.aborted) {
        void transport.close()
        this.attemptFailed(slot, `did not become ready within ${seconds} s`)
        return
      }
      // A child that dies at once often fails a write (EPIPE) before its exit is seen: once closed,
      // its exit status and last stderr lines say why.
      await transport.close()
      if (generation === slot.generation) this.attemptFailed(slot, connectFailure(err, transport))
    } finally {
      clearTimeout(timer)
      slot.settled = true
    }
  }

  private transportFor(config: StdioServerConfig): StdioTransport {
    const { log, env, secrets } = this.options
    const transport = new StdioTransport({
      command: config.command,
      args: config.args,
      env: childEnv(env, secrets, config.env),
      onStderr: (line) => log.debug({ server: config.name, stderr: line }, 'mcp server stderr'),
      ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
    })
    return transport
  }

  private connected(slot: Slot, tools: Tool[]): void {
    slot.attempts = 0
    slot.reconnects = 0
    delete slot.error
    slot.tools = this.visible(slot, tools)
    this.reindex()
    this.setState(slot, 'ready')
    if (slot.toolsStale) this.refreshTools(slot, slot.generation)
  }

  private attemptFailed(slot: Slot, reason: string): void {
    slot.attempts += 1
    this.failed(slot, reason, 'MCP_CONNECT_FAILED')
  }

  /** The live connection closed: the child died, or its pipes did. Ours to close at shutdown. */
  private connectionClosed(slot: Slot, generation: number): void {
    if (this.closing || generation !== slot.generation || slot.state !== 'ready') return
    const transport = slot.transport
    const reason = transport?.exitDescription
      ? withStderr(`the server process ${transport.exitDescription}`, transport)
      : 'the connection to the server closed'
    // Ends the group even if only the pipes closed and the process lingers.
    void transport?.close()
    this.failed(slot, reason, 'MCP_SERVER_LOST')
  }

  /** Records the failure and schedules the next attempt, or gives up. Logs it once. */
  private failed(slot: Slot, reason: string, type: McpErrorType): void {
    if (this.closing) return
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

  private unsupported(slot: Slot): void {
    slot.error = REMOTE_UNSUPPORTED
    slot.settled = true
    this.setState(slot, 'failed', { type: 'MCP_TRANSPORT_UNSUPPORTED', message: REMOTE_UNSUPPORTED })
  }

  private toolsChanged(slot: Slot, generation: number): void {
    if (generation !== slot.generation) return
    if (slot.state === 'ready') this.refreshTools(slot, generation)
    else slot.toolsStale = true
  }

  /** Re-lists a server's tools; one refresh at a time, and one more if told again meanwhile. */
  private refreshTools(slot: Slot, generation: number): void {
    slot.toolsStale = false
    if (slot.refresh) {
      slot.refresh.again = true
      return
    }
    const refresh = { again: true }
    slot.refresh = refresh
    void (async () => {
      while (refresh.again && generation === slot.generation && slot.state === 'ready') {
        refresh.again = false
        await this.refreshOnce(slot, generation)
      }
    })().finally(() => {
      slot.refresh = undefined
    })
  }

  private async refreshOnce(slot: Slot, generation: number): Promise<void> {
    const timeout = this.options.connection.connection_timeout * 1000
    try {
      const tools = await listTools(slot.client as Client, { timeout })
      if (generation !== slot.generation || slot.state !== 'ready') return
      slot.tools = this.visible(slot, tools)
      this.reindex()
      this.options.log.info(
        { server: slot.name, state: slot.state, tools: slot.tools.length },
        'mcp server tools changed',
      )
    } catch (err) {
      const error = { type: 'MCP_TOOLS_REFRESH_FAILED', message: errorMessage(err) }
      this.options.log.warn(
        { server: slot.name, state: slot.state, error },
        'mcp server tools refresh failed',
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
      slot.tools.map((definition) => ({ server: slot.name, definition })),
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
    await slot.transport?.close().catch(() => undefined)
    this.setState(slot, 'closed')
  }

  private setState(
    slot: Slot,
    state: ServerState,
    error?: { type: McpErrorType; message: string },
    extra: Record<string, unknown> = {},
  ): void {
    slot.state = state
    const line = {
      server: slot.name,
      state,
      tools: state === 'ready' ? slot.tools.length : 0,
      attempts: slot.attempts,
      ...(error ? { error } : {}),
      ...extra,
    }
    const level = extra.gave_up === true ? 'error' : state === 'failed' ? 'warn' : 'info'
    this.options.log[level](line, `mcp server ${slot.name} ${state}`)
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

/** Every page of tools/list (an empty list for a server without tools). */
async function listTools(client: Client, options: RequestOptions): Promise<Tool[]> {
  if (!client.getServerCapabilities()?.tools) return []
  const tools: Tool[] = []
  const seen = new Set<string>()
  let cursor: string | undefined
  do {
    const page = await client.listTools(cursor === undefined ? undefined : { cursor }, options)
    tools.push(...page.tools)
    cursor = page.nextCursor
    // A server that hands out the same cursor again would keep us here forever.
    if (cursor !== undefined && seen.has(cursor)) throw new Error('the server repeated a tools/list cursor')
    if (cursor !== undefined) seen.add(cursor)
  } while (cursor !== undefined)
  return tools
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

function connectFailure(err: unknown, transport: StdioTransport): string {
  // The SDK only says "Connection closed": the exit status and stderr say why.
  if (transport.exitDescription)
    return withStderr(`the server process ${transport.exitDescription}`, transport)
  return errorMessage(err)
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
  return err instanceof Error ? err.message : String(err)
}
