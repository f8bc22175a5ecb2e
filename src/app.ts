// buildApp: the whole platform as one Fastify instance, plugins registered in dependency order
// (architecture.md). At close, preClose hooks end the requests in flight (chat-route) before the
// sockets close; then onClose hooks, last registered first, close MCP, the LLM and the store: the
// store flushes last.
// The composition root: each plugin gets its own section of the configuration, or the objects
// built before it.
// Start-up: the configuration files are read and the MCP servers' children spawned before Fastify
// and what serves chats (store, provider, WebSocket route) are loaded, which happens while the
// children start. Only what comes before the spawn is imported statically here.
import { setImmediate as nextTurn } from 'node:timers/promises'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import { defaultPaths, loadConfig } from './config/load.js'
import { EnvSchema } from './config/schema.js'
import { storeProblem } from './config/support.js'
import type { PlatformConfig } from './config/types.js'
import { ConfigError } from './errors.js'
import { schemaProfile, toolSchemaAdapter } from './llm/tool-schema.js'
import type { LlmProvider } from './llm/types.js'
import { createLogger, describeError, Redactor } from './logging.js'
import { McpRegistry, type McpRegistryOptions } from './mcp/registry.js'
import type { ChatStore } from './store/types.js'

export interface AppOptions {
  /** The environment to read (`env:` secrets, MCP_CONFIG_PATH, LOG_LEVEL, …). */
  env: Record<string, string | undefined>
  /** Where relative command-line paths and the default file locations are taken from. */
  cwd: string
  /** --config and --servers from the command line. */
  configPath?: string
  serversPath?: string
  /** Where log lines go (stdout when absent). */
  logStream?: DestinationStream
  /** Replace the configured store or provider (other apps embedding the platform). */
  store?: ChatStore
  llm?: LlmProvider
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const redactor = new Redactor()
  const logger: FastifyBaseLogger = createLogger({
    // LOG_LEVEL is not checked yet: the config plugin reports a bad one with the other problems,
    // and its checked level (LOG_LEVEL or logging.level) is set once the plugin has run.
    level: 'info',
    redactor,
    stream: options.logStream,
  })
  const redact = (text: string) => redactor.redact(text)
  // A child takes a while to start (a runtime, its packages): when the configuration is valid,
  // the servers start now and the rest of the platform loads meanwhile. The registry's plugin is
  // still registered after the store and the provider, so that it closes before them.
  const early = await readConfig(options)
  let unregistered: McpRegistry | undefined
  if (early) {
    redactor.add(early.secrets)
    logger.level = early.logging.level
    unregistered = startRegistry(logger, mcpRegistryOptions(early, options.env, redact))
  }
  let app: FastifyInstance | undefined
  try {
    const serving = await loadServing()
    app = serving.Fastify({ loggerInstance: logger, forceCloseConnections: true })
    // Given the configuration read above, the plugin checks the environment and uses it as it is.
    await app.register(serving.config, { ...configOptions(options), ...(early && { config: early }) })
    const config = app.platformConfig
    redactor.add(config.secrets)
    app.log.level = config.logging.level
    for (const w of config.warnings) app.log.warn({ config: w }, 'configuration adapted')
    const registry = (unregistered ??= startRegistry(
      app.log,
      mcpRegistryOptions(config, options.env, redact),
    ))
    await app.register(serving.chatStore, { config: config.store, store: options.store })
    await app.register(serving.llmProvider, { config: config.llm, provider: options.llm })
    await app.register(serving.mcpRegistry, { registry })
    unregistered = undefined
    await app.register(serving.websocket, {
      // Root preClose hooks run before those of encapsulated plugins, so the default one would
      // close every socket (without a code) before chat-route could end its turns and say 1001.
      // chat-route closes its own sockets; new upgrades are refused by Fastify once closing.
      preClose: (done) => done(),
      // Called for a socket's error and for an error thrown by the route's handler. A socket's
      // error (a frame over maxPayload, a broken frame) is the client's, logged once as a warning:
      // ws has already closed the socket with the right code. Anything else is a bug: logged as
      // one, and the socket, which nothing serves, is cut.
      errorHandler: (error, socket, request) => {
        if (isSocketError(error)) return request.log.warn({ error: socketError(error) }, 'websocket error')
        request.log.error({ error: describeError(error) }, 'websocket handler failed')
        socket.terminate()
      },
      options: {
        maxPayload: config.websocket.max_message_bytes,
        handleProtocols: (protocols) => serving.selectProtocol(protocols),
      },
    })
    await app.register(serving.chatRoute, {
      settings: config.chat.service,
      access: config,
      mcp: app.mcp,
      redact,
      debugTokens: config.debug_tokens,
      limits: {
        maxBufferedBytes: config.websocket.max_buffered_bytes,
        maxConcurrentRequests: config.websocket.max_concurrent_requests,
        unreadTimeoutMs: config.llm.request.timeout * 1000,
        textCoalesceMs: config.websocket.text_coalesce_ms,
      },
    })
    await app.register(serving.probes, { redact, mcp: app.mcp, access: config })
    return app
  } catch (err) {
    await app?.close().catch(() => undefined)
    await unregistered?.close().catch(() => undefined)
    throw err
  }
}

const checkEnv = TypeCompiler.Compile(EnvSchema)

/**
 * Both files read as the config plugin reads them, without Fastify; undefined when the
 * environment, a file or the store's type has a problem: nothing is started then, and the plugins
 * report every problem.
 */
async function readConfig(options: AppOptions): Promise<PlatformConfig | undefined> {
  const { env, cwd } = options
  const { MCP_CONFIG_PATH, MCP_SERVERS_CONFIG_PATH, LOG_LEVEL, DEBUG_TOKENS } = env
  if (!checkEnv.Check({ MCP_CONFIG_PATH, MCP_SERVERS_CONFIG_PATH, LOG_LEVEL, DEBUG_TOKENS })) return undefined
  const paths = defaultPaths({ MCP_CONFIG_PATH, MCP_SERVERS_CONFIG_PATH }, cwd, {
    config: options.configPath,
    servers: options.serversPath,
  })
  try {
    const config = await loadConfig({ ...paths, env, logLevel: LOG_LEVEL })
    return storeProblem(config.store) ? undefined : config
  } catch (err) {
    if (err instanceof ConfigError) return undefined
    throw err
  }
}

/** A registry of the configured servers, connecting them as the mcp-registry plugin would. */
function startRegistry(log: FastifyBaseLogger, options: Omit<McpRegistryOptions, 'log'>): McpRegistry {
  const registry = new McpRegistry({ ...options, log: log.child({ component: 'mcp' }) })
  registry.start()
  return registry
}

/**
 * Fastify and the plugins, loaded once the MCP servers' children are spawned: start() opens each
 * stdio child within the microtasks it queues, and one turn of the event loop lets them all run.
 */
async function loadServing() {
  await nextTurn()
  const [fastify, config, chatStore, llmProvider, mcpRegistry, websocket, chatRoute, probes, auth] =
    await Promise.all([
      import('fastify'),
      import('../plugins/config.js'),
      import('../plugins/chat-store.js'),
      import('../plugins/llm-provider.js'),
      import('../plugins/mcp-registry.js'),
      import('@fastify/websocket'),
      import('../plugins/chat-route.js'),
      import('../plugins/probes.js'),
      import('./chat/auth.js'),
    ])
  return {
    Fastify: fastify.default,
    config: config.default,
    chatStore: chatStore.default,
    llmProvider: llmProvider.default,
    mcpRegistry: mcpRegistry.default,
    websocket: websocket.default,
    chatRoute: chatRoute.default,
    probes: probes.default,
    selectProtocol: auth.selectProtocol,
  }
}

/**
 * The mcp-registry plugin's options from the configuration: one composition for `start` and
 * `tools`, so the command shows the tools exactly as the platform offers them.
 */
export function mcpRegistryOptions(
  config: PlatformConfig,
  env: Record<string, string | undefined>,
  redact: (text: string) => string,
): Omit<McpRegistryOptions, 'log'> {
  return {
    servers: config.servers,
    connection: config.mcp.connection,
    toolTimeout: config.chat.service.tool_timeout,
    env,
    secrets: config.secrets,
    maxMessageBytes: config.mcp.max_message_bytes,
    redact,
    // Tool schemas as the active provider's API accepts them (the registry knows no provider).
    adaptSchema: toolSchemaAdapter(schemaProfile(config.llm.provider)),
  }
}

/**
 * `mcp-platform tools`: the configuration and the MCP servers alone, composed as in buildApp; no
 * store, no provider, nothing listens. The servers start connecting at once. Its log is silent
 * unless LOG_LEVEL asks for it: the command prints its own report.
 */
export async function buildMcpApp(options: AppOptions): Promise<FastifyInstance> {
  const redactor = new Redactor()
  const logger: FastifyBaseLogger = createLogger({ level: 'silent', redactor, stream: options.logStream })
  const { Fastify, configPlugin, mcpRegistryPlugin } = await loadConfigPlugin()
  const app = Fastify({ loggerInstance: logger })
  try {
    // The LLM is never called: its key need not be set to see what the servers offer.
    await app.register(configPlugin, { ...configOptions(options), providerSecret: 'unused' })
    const config = app.platformConfig
    redactor.add(config.secrets)
    if (options.env.LOG_LEVEL !== undefined) app.log.level = config.logging.level
    const redact = (text: string) => redactor.redact(text)
    const registry = mcpRegistryOptions(config, options.env, redact)
    // The command reports each server's first attempt: a retry would hide a failure's reason.
    registry.connection = { ...registry.connection, max_reconnect_attempts: 0 }
    await app.register(mcpRegistryPlugin, registry)
    await app.ready()
    return app
  } catch (err) {
    await app.close().catch(() => undefined)
    throw err
  }
}

/** ws's own errors carry a `WS_ERR_…` code; a broken connection, a system one (ECONNRESET, …). */
function isSocketError(error: Error): boolean {
  const { code } = error as { code?: unknown }
  return typeof code === 'string' && (code.startsWith('WS_ERR_') || /^E[A-Z]+$/.test(code))
}

function socketError(error: Error): Record<string, unknown> {
  const { code } = error as { code?: unknown }
  return { type: 'WEBSOCKET_ERROR', message: error.message, ...(typeof code === 'string' ? { code } : {}) }
}

function configOptions(options: AppOptions) {
  const { env, cwd, configPath, serversPath } = options
  return { env, cwd, configPath, serversPath }
}

/** Validates everything start-up would, without starting anything; throws ConfigError. */
export async function checkConfig(options: AppOptions): Promise<PlatformConfig> {
  const { Fastify, configPlugin } = await loadConfigPlugin()
  const app = Fastify({ logger: false })
  try {
    await app.register(configPlugin, configOptions(options))
    const problem = storeProblem(app.platformConfig.store)
    if (problem) throw new ConfigError([problem])
    return app.platformConfig
  } finally {
    await app.close().catch(() => undefined)
  }
}

/** Fastify with the config and mcp-registry plugins: what `tools` and `check-config` need. */
async function loadConfigPlugin() {
  const [fastify, config, mcpRegistry] = await Promise.all([
    import('fastify'),
    import('../plugins/config.js'),
    import('../plugins/mcp-registry.js'),
  ])
  return { Fastify: fastify.default, configPlugin: config.default, mcpRegistryPlugin: mcpRegistry.default }
}
