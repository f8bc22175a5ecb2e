// A real remote MCP server on a local port, for the platform's remote transports: Streamable HTTP
// (stateful sessions on /mcp) or the legacy HTTP+SSE transport (GET /sse, POST /messages). Tests
// read back the requests it received, and can take it away, bring it back, or restart it fresh.
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js'
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'

export interface RemoteMcpOptions {
  /** `http`: Streamable HTTP on /mcp. `sse`: the legacy transport, GET /sse and POST /messages. */
  mode: 'http' | 'sse'
  /** Default: any free one. */
  port?: number
  /** Requests without exactly this header get 401, with a body that echoes the value received. */
  requireHeader?: { name: string; value: string }
  /** The MCP server's name (serverInfo) and the label `whoami` answers with. Default `remote`. */
  name?: string
}

export interface RemoteRequest {
  method: string
  /** Path and query, e.g. `/messages?sessionId=…`. */
  path: string
  headers: IncomingHttpHeaders
  /** The response's status code once its head was sent (an open event stream has one). */
  readonly status: number | undefined
}

export interface RemoteMcp {
  /** The url to configure: http://127.0.0.1:PORT/mcp (http) or http://127.0.0.1:PORT/sse (sse). */
  url: string
  port: number
  /** Sessions initialized since the helper started, over every restart. */
  sessions(): number
  /** Sessions the current incarnation holds (a restart forgets them all). */
  liveSessions(): number
  /** How many times the server has started listening (1 at first, +1 per listen() or restart()). */
  generation(): number
  /** Every request received, over every restart. */
  requests: RemoteRequest[]
  /** Stops listening and cuts every connection (open SSE streams too); the state is dropped. */
  close(): Promise<void>
  /** Listens again on the same port, with fresh state (after close()). */
  listen(): Promise<void>
  /** close() then listen(): every old session id becomes unknown (404). */
  restart(): Promise<void>
}

interface Session {
  transport: StreamableHTTPServerTransport | SSEServerTransport
  server: McpServer
}

/** The MCP server each session gets: two tools, a prompt, a resource and a resource template. */
function mcpServer(label: string, generation: number): McpServer {
  const server = new McpServer({ name: label, version: '1.0.0' })
  server.registerTool(
    'add',
    {
      description: 'Add two numbers.',
      inputSchema: { a: z.number().describe('first addend'), b: z.number().describe('second addend') },
      annotations: { readOnlyHint: true },
    },
    ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
  )
  server.registerTool(
    'whoami',
    { description: 'Which server (and which start of it) answers.', inputSchema: {} },
    () => ({ content: [{ type: 'text', text: `${label} #${generation}` }] }),
  )
  server.registerPrompt(
    'hello',
    { description: 'Say hello to someone.', argsSchema: { name: z.string().describe('who to greet') } },
    ({ name }) => ({
      messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${name}.` } }],
    }),
  )
  server.registerResource(
    'info',
    'remote://info',
    { description: 'About this remote server.', mimeType: 'text/plain' },
    (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'text/plain', text: `${label} is a remote MCP server.` }],
    }),
  )
  server.registerResource(
    'item',
    new ResourceTemplate('remote://items/{id}', { list: undefined }),
    { description: 'One item by id.', mimeType: 'text/plain' },
    (uri, { id }) => ({
      contents: [{ uri: uri.href, mimeType: 'text/plain', text: `item ${String(id)}` }],
    }),
  )
  return server
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = []
  for await (const part of req) parts.push(part as Buffer)
  const text = Buffer.concat(parts).toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
}

const notFound = { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }

export async function startRemoteMcp(options: RemoteMcpOptions): Promise<RemoteMcp> {
  const label = options.name ?? 'remote'
  const requests: RemoteRequest[] = []
  const sessions = new Map<string, Session>()
  const sockets = new Set<Socket>()
  let initialized = 0
  let generation = 0
  let port = options.port ?? 0

  async function handleHttp(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path !== '/mcp') return sendJson(res, 404, { error: 'not found' })
    const id = req.headers['mcp-session-id']
    const sessionId = Array.isArray(id) ? id[0] : id
    if (req.method === 'POST') {
      const body = await readJson(req)
      const session = sessionId === undefined ? undefined : sessions.get(sessionId)
      if (session) return (session.transport as StreamableHTTPServerTransport).handleRequest(req, res, body)
      if (sessionId !== undefined) return sendJson(res, 404, notFound)
      if (!isInitializeRequest(body)) {
        return sendJson(res, 400, {
          jsonrpc: '2.0',
          error: { code: -32000, message: 'Bad Request: no session id and not an initialize request' },
          id: null,
        })
      }
      const server = mcpServer(label, generation)
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => {
          initialized++
          sessions.set(sid, { transport, server })
        },
      })
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
      }
      await server.connect(transport)
      return transport.handleRequest(req, res, body)
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      if (sessionId === undefined) return sendJson(res, 400, { error: 'missing mcp-session-id' })
      const session = sessions.get(sessionId)
      if (!session) return sendJson(res, 404, notFound)
      return (session.transport as StreamableHTTPServerTransport).handleRequest(req, res)
    }
    sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, POST, DELETE' })
  }

  async function handleSse(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams) {
    if (path === '/sse' && req.method === 'GET') {
      const server = mcpServer(label, generation)
      const transport = new SSEServerTransport('/messages', res)
      const sid = transport.sessionId
      sessions.set(sid, { transport, server })
      initialized++
      transport.onclose = () => void sessions.delete(sid)
      await server.connect(transport)
      return
    }
    // A Streamable HTTP attempt at the SSE url fails with a 4xx: the client falls back.
    if (path === '/sse') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' })
    if (path === '/messages' && req.method === 'POST') {
      const sid = query.get('sessionId')
      if (!sid) return sendJson(res, 400, { error: 'missing sessionId' })
      const session = sessions.get(sid)
      if (!session) return sendJson(res, 404, { error: 'session not found' })
      const body = await readJson(req)
      return (session.transport as SSEServerTransport).handlePostMessage(req, res, body)
    }
    sendJson(res, 404, { error: 'not found' })
  }

  const httpServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    requests.push({
      method: req.method ?? '',
      path: url.pathname + url.search,
      headers: req.headers,
      get status() {
        return res.headersSent ? res.statusCode : undefined
      },
    })
    const required = options.requireHeader
    if (required) {
      const received = req.headers[required.name.toLowerCase()]
      if (received !== required.value) {
        // Like servers that quote what they got: a leak of this body would show the secret.
        return sendJson(res, 401, { error: 'unauthorized', received: received ?? null })
      }
    }
    const handled =
      options.mode === 'http'
        ? handleHttp(req, res, url.pathname)
        : handleSse(req, res, url.pathname, url.searchParams)
    handled.catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) })
      else res.destroy()
    })
  })
  httpServer.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  async function listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject)
      httpServer.listen(port, '127.0.0.1', () => {
        httpServer.off('error', reject)
        resolve()
      })
    })
    port = (httpServer.address() as AddressInfo).port
    generation++
  }

  async function close(): Promise<void> {
    if (!httpServer.listening) return
    const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()))
    // Cut first, so the client sees the server go away rather than a polite end of its streams.
    httpServer.closeAllConnections()
    for (const socket of sockets) socket.destroy()
    const old = [...sessions.values()]
    sessions.clear()
    await Promise.all(old.map((s) => s.server.close().catch(() => undefined)))
    await closed
  }

  await listen()
  return {
    url: `http://127.0.0.1:${port}/${options.mode === 'http' ? 'mcp' : 'sse'}`,
    port,
    sessions: () => initialized,
    liveSessions: () => sessions.size,
    generation: () => generation,
    requests,
    close,
    listen,
    async restart() {
      await close()
      await listen()
    },
  }
}
