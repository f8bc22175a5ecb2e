// chat-route: the /ws/chat WebSocket endpoint (protocol.md). Needs @fastify/websocket registered
// by the app (once, with maxPayload set to websocket.max_message_bytes).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ANONYMOUS, Authenticator } from '../src/chat/auth.js'
import { ChatConnection } from '../src/chat/connection.js'
import { ChatService } from '../src/chat/service.js'
import { warmUp } from '../src/tokens/counter.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal: string
  }
}

export interface ChatRouteOptions {
  /** Removes secrets from text sent to clients (the app passes its log redactor). */
  redact?: (text: string) => string
  /** How long shutdown waits for a client to answer the closing handshake before cutting it off (ms). */
  closeHandshakeMs?: number
}

async function chatRoute(fastify: FastifyInstance, options: ChatRouteOptions): Promise<void> {
  const log = fastify.log.child({ component: 'chat' })
  // MCP is optional: without the mcp-registry plugin the LLM simply has no tools, prompts or resources.
  const mcp = fastify.hasDecorator('mcp') ? fastify.mcp : undefined
  const service = new ChatService({
    store: fastify.chatStore,
    llm: fastify.llm,
    tools: mcp,
    content: mcp,
    settings: fastify.config.chat.service,
    log,
    debugTokens: fastify.config.debug_tokens,
  })
  warmUp(fastify.llm.model)
  const auth = new Authenticator(fastify.config)
  const redact = options.redact ?? ((text: string) => text)
  const connections = new Set<ChatConnection>()
  let closing = false

  fastify.decorateRequest('principal', ANONYMOUS)
  fastify.addHook('onClose', () => {
    service.close()
    return Promise.resolve()
  })

  // Before the HTTP server stops: end running turns (stored as interrupted, clients told), then
  // close every socket with 1001.
  fastify.addHook('preClose', async () => {
    closing = true
    await Promise.allSettled([...connections].map((c) => c.shutdown(options.closeHandshakeMs ?? 1000)))
  })

  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (closing) return reply.code(503).send({ error: 'shutting down' })
    const result = auth.authenticate(request.headers)
    if (!result.ok) {
      request.log.info({ status: result.status, error: { type: 'UNAUTHENTICATED' } }, 'upgrade refused')
      return reply.code(result.status).send({ error: result.message })
    }
    request.principal = result.principal
  }

  fastify.get('/ws/chat', { websocket: true, onRequest: authenticate }, (socket, request) => {
    const connection = new ChatConnection(socket, {
      service,
      store: fastify.chatStore,
      tools: mcp,
      content: mcp,
      principal: request.principal,
      log,
      closing: () => closing,
      redact,
    })
    connections.add(connection)
    socket.on('close', () => connections.delete(connection))
  })
}

export default fp(chatRoute, {
  name: 'chat-route',
  fastify: '5.x',
  encapsulate: true,
  dependencies: ['config', 'chat-store', 'llm-provider', '@fastify/websocket'],
  decorators: { fastify: ['config', 'chatStore', 'llm'] },
})
