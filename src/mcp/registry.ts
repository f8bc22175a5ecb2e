// The MCP registry: every configured server (stdio children, remote servers over Streamable HTTP
// or the older HTTP+SSE transport) and what they offer, behind the one surface the platform uses.
// A failing server never fails a turn: its tools report the problem as their result. The parts:
// a connection per server (server-connection.ts), the catalogue of what they offer and the tool
// names (catalogue.ts), argument checking (arguments.ts), the wording of failures (failures.ts).
import type { GetPromptResult, ReadResourceResult } from '@modelcontextprotocol/sdk/types.js'
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js'
import type { PlatformConfig, ServerConfig } from '../config/types.js'
import { errors, withData } from '../errors.js'
import { Redactor, type Logger } from '../logging.js'
import { ArgumentChecker, checkPromptArguments } from './arguments.js'
import { Catalogue } from './catalogue.js'
import { textCleaner, toolError } from './failures.js'
import { ServerConnection } from './server-connection.js'
import { realTransports, type TransportOpener } from './transports.js'
import type {
  McpRegistryApi,
  RegisteredTool,
  ServerPrompt,
  ServerResource,
  ServerResourceTemplate,
  ServerStatus,
  ToolCallOptions,
  ToolOutcome,
  ToolSchemaAdapter,
} from './types.js'

export type { TransportOpener } from './transports.js'

/** config.md's default for `mcp.max_message_bytes`. */
const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

export interface McpRegistryOptions {
  servers: Record<string, ServerConfig>
  connection: PlatformConfig['mcp']['connection']
  /** Seconds for one tool call, unless the server sets its own `tool_timeout`. */
  toolTimeout: number
  /** The parent environment the children's environments are made from. */
  env: Record<string, string | undefined>
  /** Secret values: a variable holding one of them is not passed to a child. */
  secrets: string[]
  /**
   * `mcp.max_message_bytes`: a larger message from a stdio server is dropped, and the request it
   * answered fails. By default 16 MiB, the documented default.
   */
  maxMessageBytes?: number
  /**
   * Removes secrets from a server's text before /ready, logs or a tool result repeat it: the app
   * passes its one redactor. By default one made from `secrets`.
   */
  redact?: (text: string) => string
  log: Logger
  /**
   * Adapts each tool's input schema to what the active LLM provider accepts (the app gives the
   * provider's); a tool it refuses is left out. Without one, schemas are offered as listed.
   */
  adaptSchema?: ToolSchemaAdapter
  /**
   * Opens a server's transport for each connection attempt. By default: a child over stdio, or
   * Streamable HTTP (falling back to HTTP+SSE) or HTTP+SSE, as the server is configured.
   */
  openTransport?: TransportOpener
}

export class McpRegistry implements McpRegistryApi {
  readonly #connections: Map<string, ServerConnection>
  readonly #catalogue: Catalogue
  readonly #arguments: ArgumentChecker
  #started = false

  constructor(options: McpRegistryOptions) {
    const { servers, connection, toolTimeout, env, secrets, log } = options
    const clean = textCleaner(options.redact ?? redactorOf(secrets))
    this.#arguments = new ArgumentChecker()
    this.#catalogue = new Catalogue(servers, {
      isReady: (server) => this.#connections.get(server)?.state === 'ready',
      inputSchemaProblem: (_server, tool) => this.#arguments.problem(tool),
      ...(options.adaptSchema ? { adaptSchema: options.adaptSchema } : {}),
      log,
      clean,
    })
    const shared = {
      connection,
      toolTimeout,
      log,
      openTransport:
        options.openTransport ??
        realTransports({
          env,
          secrets,
          log,
          maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
        }),
      catalogue: this.#catalogue,
      clean,
    }
    this.#connections = new Map(
      Object.entries(servers).map(([name, config]) => [name, new ServerConnection(name, config, shared)]),
    )
  }

  start(): void {
    if (this.#started) return
    this.#started = true
    for (const connection of this.#connections.values()) connection.start()
  }

  list(): RegisteredTool[] {
    return this.#catalogue.tools()
  }

  prompts(): ServerPrompt[] {
    return this.#catalogue.prompts()
  }

  resources(): ServerResource[] {
    return this.#catalogue.resources()
  }

  resourceTemplates(): ServerResourceTemplate[] {
    return this.#catalogue.resourceTemplates()
  }

  status(): ServerStatus[] {
    return [...this.#connections.values()].map((c) => {
      const status = c.status()
      // What the last listing adapted or left out, while its tools are offered.
      const notes = this.#catalogue.notes(c.name)
      return status.state === 'ready' && notes.length > 0 ? { ...status, tool_notes: notes } : status
    })
  }

  settled(): boolean {
    return [...this.#connections.values()].every((c) => c.settled)
  }

  async close(): Promise<void> {
    await Promise.all([...this.#connections.values()].map((c) => c.close()))
  }

  async call(name: string, args: string, options: ToolCallOptions): Promise<ToolOutcome> {
    options.signal.throwIfAborted()
    const tool = this.#catalogue.tool(name)
    if (!tool) return toolError(`Unknown tool "${name}".`)
    const checked = this.#arguments.check(tool, args)
    if (typeof checked === 'string') return toolError(checked)
    return this.#connection(tool.server).callTool(tool.definition.name, checked, options)
  }

  async getPrompt(
    server: string,
    name: string,
    args: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<GetPromptResult> {
    const connection = this.#connection(server)
    const prompt = this.#catalogue.prompt(server, name)
    if (!prompt) {
      connection.requireReady()
      throw new errors.PROMPT_NOT_FOUND(server, name)
    }
    checkPromptArguments(prompt, args)
    return connection.request(signal, (client, options) =>
      client.getPrompt({ name, arguments: args }, options),
    )
  }

  async readResource(
    uri: string,
    server?: string,
    signal?: AbortSignal,
  ): Promise<{ server: string; result: ReadResourceResult }> {
    const connection = this.#connection(server ?? this.#catalogue.ownerOf(uri))
    try {
      const result = await connection.request(signal, (client, options) =>
        client.readResource({ uri }, options),
      )
      return { server: connection.name, result }
    } catch (err) {
      // The specification's "resource not found" code, or the SDK's InvalidParams for the same.
      const code = (err as { data?: { mcp_error?: { code?: number } } }).data?.mcp_error?.code
      if (code === -32002 || code === Number(ErrorCode.InvalidParams)) {
        throw withData(new errors.RESOURCE_NOT_FOUND(uri), (err as { data: Record<string, unknown> }).data)
      }
      throw err
    }
  }

  #connection(server: string): ServerConnection {
    const connection = this.#connections.get(server)
    if (!connection) throw new errors.MCP_SERVER_NOT_FOUND(server)
    return connection
  }
}

function redactorOf(secrets: readonly string[]): (text: string) => string {
  const redactor = new Redactor()
  redactor.add(secrets)
  return (text) => redactor.redact(text)
}
