// chat-route: the /ws/chat WebSocket endpoint (protocol.md). Needs @fastify/websocket registered
// by the app (once, with maxPayload set to websocket.max_message_bytes), a `chatStore` and an
// `llm`; MCP only when the app hands one in (`mcp`).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ChatActions } from '../src/chat/actions.js'
import { ANONYMOUS, Authenticator } from '../src/chat/auth.js'
import { ChatConnection, type ConnectionLimits } from '../src/chat/connection.js'
import { DEFAULT_MAX_LLM_REQUESTS, FairGate } from '../src/chat/fair-gate.js'
import { ChatService } from '../src/chat/service.js'
import type { PlatformConfig } from '../src/config/types.js'
import { errors } from '../src/errors.js'
import type { McpRegistryApi } from '../src/mcp/types.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal: string
  }
}

export interface ChatRouteOptions {
  /** `chat.service` of the configuration: prompts, limits, context, tool hops. */
  settings: PlatformConfig['chat']['service']
  /** Who may connect: `auth` (API keys; none: everyone is anonymous) and `websocket.allowed_origins`. */
  access: Pick<PlatformConfig, 'auth' | 'websocket'>
  /** The MCP servers' tools, prompts and resources (the app passes its `mcp`); none when absent. */
  mcp?: McpRegistryApi
  /** Removes secrets from text sent to clients (the app passes its log redactor). */
  redact?: (text: string) => string
  /** How long shutdown waits for a client to answer the closing handshake before cutting it off (ms). */
  closeHandshakeMs?: number
  /** Log each turn's token accounting (DEBUG_TOKENS=1). */
  debugTokens?: boolean
  /** What one connection may hold: replies unread, requests at once, time without reading. */
  limits: ConnectionLimits
  /** LLM requests in flight in this process (default 64); more wait, round robin by principal. */
  maxLlmRequests?: number
}

async function chatRoute(fastify: FastifyInstance, options: ChatRouteOptions): Promise<void> {
  const { settings, access, mcp } = options
  if (!settings || !access || !options.limits) {
    throw new TypeError('chat-route: options.settings, options.access and options.limits are required')
  }
  const log = fastify.log.child({ component: 'chat' })
  const service = new ChatService({
    store: fastify.chatStore,
    llm: fastify.llm,
    tools: mcp,
    content: mcp,
    settings,
    log,
    debugTokens: options.debugTokens,
    gate: new FairGate(options.maxLlmRequests ?? DEFAULT_MAX_LLM_REQUESTS),
  })
  const actions = new ChatActions({ store: fastify.chatStore, tools: mcp, content: mcp })
  const auth = new Authenticator(access)
  const redact = options.redact ?? ((text: string) => text)
  const connections = new Set<ChatConnection>()

  fastify.decorateRequest('principal', ANONYMOUS)

  // Before the HTTP server stops: the service ends every running request (unfinished turns stored,
  // clients told) and waits for them, wherever their socket is; then every socket closes with 1001.
  fastify.addHook('preClose', async () => {
    await service.shutdown()
    await Promise.allSettled([...connections].map((c) => c.close(options.closeHandshakeMs ?? 1000)))
  })

  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (service.closing) {
      const closing = new errors.SHUTTING_DOWN()
      return reply.code(closing.statusCode).send({ error: closing.message, type: closing.code })
    }
    const result = auth.authenticate(request.headers)
    if (!result.ok) {
      request.log.info({ status: result.status, error: { type: result.error.code } }, 'upgrade refused')
      return reply.code(result.status).send({ error: result.message })
    }
    request.principal = result.principal
  }

  fastify.get('/ws/chat', { websocket: true, onRequest: authenticate }, (socket, request) => {
    const connection = new ChatConnection(socket, {
      service,
      actions,
      principal: request.principal,
      log,
      redact,
      limits: options.limits,
    })
    connections.add(connection)
    socket.on('close', () => connections.delete(connection))
  })
}

export default fp(chatRoute, {
  name: 'chat-route',
  fastify: '5.x',
  encapsulate: true,
  dependencies: ['chat-store', 'llm-provider', '@fastify/websocket'],
  decorators: { fastify: ['chatStore', 'llm'] },
})
