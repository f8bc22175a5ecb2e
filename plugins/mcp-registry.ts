// mcp-registry: the configured MCP servers with their tools, prompts and resources, decorated as
// `mcp`. The servers connect in the background: the platform serves at once and /ready reports
// their state.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { McpRegistry, type McpRegistryOptions } from '../src/mcp/registry.js'
import type { McpRegistryApi } from '../src/mcp/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    mcp: McpRegistryApi
  }
}

/**
 * The servers (servers_config.json, resolved), `mcp.connection`, `chat.service.tool_timeout`, the
 * environment the stdio servers' environments are made from (usually process.env), the secret
 * values a child must not inherit, and optionally `adaptSchema`: the active LLM provider's view of
 * a tool's input schema (src/llm/tool-schema.ts makes one for each provider profile).
 * Or `registry`: one built by the host app (buildApp starts its servers before it loads the rest
 * of the platform), used as it is, started here unless it was already, and closed with the app.
 */
export type McpRegistryPluginOptions = Omit<McpRegistryOptions, 'log'> | { registry: McpRegistryApi }

async function mcpRegistry(fastify: FastifyInstance, options: McpRegistryPluginOptions): Promise<void> {
  const registry = 'registry' in options ? given(options.registry) : build(fastify, options)
  fastify.decorate('mcp', registry)
  // Not awaited: a slow or broken server must not hold up the start.
  registry.start()
  fastify.addHook('onClose', async () => {
    await registry.close()
  })
}

function given(registry: McpRegistryApi): McpRegistryApi {
  if (typeof registry !== 'object' || registry === null || typeof registry.start !== 'function') {
    throw new TypeError('mcp-registry: options.registry must be an MCP registry (McpRegistryApi)')
  }
  return registry
}

function build(fastify: FastifyInstance, options: Omit<McpRegistryOptions, 'log'>): McpRegistryApi {
  if (typeof options.env !== 'object' || options.env === null) {
    throw new TypeError('mcp-registry: options.env must be the environment object')
  }
  if (typeof options.servers !== 'object' || options.servers === null) {
    throw new TypeError('mcp-registry: options.servers must map server names to their configuration')
  }
  if (options.adaptSchema !== undefined && typeof options.adaptSchema !== 'function') {
    throw new TypeError('mcp-registry: options.adaptSchema must be a function (schema) => adaptation')
  }
  return new McpRegistry({ ...options, log: fastify.log.child({ component: 'mcp' }) })
}

export default fp(mcpRegistry, { name: 'mcp-registry', fastify: '5.x' })
