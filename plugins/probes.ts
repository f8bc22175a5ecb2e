// probes: GET /health (liveness: the process answers) and GET /ready (readiness: each
// dependency's state; 503 while something needed is not ready or the server is shutting down).
// With `auth` configured, the dependencies' details (a store's path, a server's pid, an upstream
// error) are told only to a caller with an API key or on the same host; anyone else learns only
// ready or not.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Authenticator } from '../src/chat/auth.js'
import type { PlatformConfig } from '../src/config/types.js'
import { redactStrings } from '../src/logging.js'
import type { McpRegistryApi } from '../src/mcp/types.js'

interface Check {
  ready: boolean
  [detail: string]: unknown
}

export interface ProbesOptions {
  /** Removes secrets from what /ready reports (a failed server's reason quotes its stderr). */
  redact?: (text: string) => string
  /** The MCP servers to report (the app passes its `mcp`); none when absent. */
  mcp?: Pick<McpRegistryApi, 'settled' | 'status'>
  /** `auth` (the API keys) decides who sees the details; everyone does when absent or without `auth`. */
  access?: Pick<PlatformConfig, 'auth' | 'websocket'>
}

/** The loopback addresses, IPv4-mapped included. */
const LOCAL = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

async function probes(fastify: FastifyInstance, options: ProbesOptions): Promise<void> {
  const { mcp } = options
  const redact = options.redact ?? ((text: string) => text)
  const auth = options.access && new Authenticator(options.access)
  const toldDetails = (request: FastifyRequest): boolean =>
    !auth?.required ||
    LOCAL.has(request.socket.remoteAddress ?? '') ||
    auth.keyHolder(request.headers) !== undefined
  fastify.get('/health', () => ({ status: 'ok' }))

  fastify.get('/ready', (request, reply) => {
    const { ready: storeReady, ...store } = fastify.chatStore.status()
    const checks: Record<string, Check> = {
      store: { ready: storeReady, ...store },
      llm: { ready: true, provider: fastify.llm.name, model: fastify.llm.model },
    }
    // MCP servers are not needed to chat, but the first attempt to connect each is awaited, so
    // traffic arrives once the tools that can be had are there. A failed server shows its reason.
    if (mcp) checks.mcp = { ready: mcp.settled(), servers: mcp.status() }
    // Once the app is closing Fastify itself answers 503 to every new request, this one included.
    const ready = Object.values(checks).every((c) => c.ready)
    const status = ready ? 'ready' : 'not_ready'
    if (!toldDetails(request)) return reply.code(ready ? 200 : 503).send({ status })
    // Secrets are cut out of the strings before serializing, so the answer stays valid JSON.
    const body = redactStrings({ status, checks }, redact)
    return reply.code(ready ? 200 : 503).send(body)
  })
}

export default fp(probes, {
  name: 'probes',
  fastify: '5.x',
  encapsulate: true,
  dependencies: ['chat-store', 'llm-provider'],
  decorators: { fastify: ['chatStore', 'llm'] },
})
