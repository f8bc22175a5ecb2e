// mcp-registry: the configured MCP servers and their tools, decorated as `mcp`. The servers
// connect in the background: the platform serves at once and /ready reports their state.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { McpRegistry } from '../src/mcp/registry.js'
import type { McpRegistryApi } from '../src/mcp/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    mcp: McpRegistryApi
  }
}

export interface McpRegistryPluginOptions {
  /** The environment the stdio servers' environments are made from: usually process.env. */
  env: Record<string, string | undefined>
}

async function mcpRegistry(fastify: FastifyInstance, options: McpRegistryPluginOptions): Promise<void> {
  if (typeof options.env !== 'object' || options.env === null) {
    throw new TypeError('mcp-registry: options.env must be the environment object')
  }
  const { servers, mcp, chat, secrets } = fastify.config
  const registry = new McpRegistry({
    servers,
    connection: mcp.connection,
    toolTimeout: chat.service.tool_timeout,
    env: options.env,
    secrets,
    log: fastify.log.child({ component: 'mcp' }),
  })
  fastify.decorate('mcp', registry)
  // Not awaited: a slow or broken server must not hold up the start.
  registry.start()
  fastify.addHook('onClose', async () => {
    await registry.close()
  })
}

export default fp(mcpRegistry, {
  name: 'mcp-registry',
  fastify: '5.x',
  dependencies: ['config'],
  decorators: { fastify: ['config'] },
})
