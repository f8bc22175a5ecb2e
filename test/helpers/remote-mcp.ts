// A real remote MCP server on a local port, for the platform's remote transports: Streamable HTTP
// (stateful sessions on /mcp) or the legacy HTTP+SSE transport (GET /sse, POST /messages). Tests
// read back the requests it received (with the JSON-RPC methods posted), and can take it away,
// bring it back, or restart it fresh. Options make it misbehave: a slow tool that counts its runs,
// an event stream that never names its endpoint, prompts that page forever, a long 401.
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js'
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest, ListPromptsRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'

export interface RemoteMcpOptions {
  /** `http`: Streamable HTTP on /mcp. `sse`: the legacy transport, GET /sse and POST /messages. */
  mode: 'http' | 'sse'
  /** Default: any free one. */
  port?: number
  /** Requests without exactly this header get 401, with a body that echoes the value received. */
  requireHeader?: { name: string; value: string }
  /**
   * How the 401 quotes what it got: the whole header value (default), or only the credential after
   * its scheme (`Bearer <credential>`); `pad` characters of filler make the body long.
   */
  unauthorized?: { quote?: 'header' | 'credential'; pad?: number }
  /** The MCP server's name (serverInfo) and the label `whoami` answers with. Default `remote`. */
  name?: string
  /** Streamable HTTP: each POST is answered with one JSON body rather than an SSE stream. */
  jsonResponse?: boolean
  /** Adds the tool `slow`, which takes this many milliseconds (and counts its runs, see runs()). */
  slowToolMs?: number
  /** sse: GET /sse opens the event stream (200, a comment) but never sends the `endpoint` event. */
  silentSse?: boolean
  /** prompts/list pages (one prompt a page) as endlessPrompts() says: see there. */
  pagedPrompts?: boolean
}

export interface RemoteRequest {
  method: string
  /** Path and query, e.g. `/messages?sessionId=…`. */
  path: string
  headers: IncomingHttpHeaders
  /** The JSON-RPC methods of the messages a POST carried (none for a response, or before it is read). */
  rpc: string[]
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
  /** How many messages with this JSON-RPC method were posted, over every restart. */
  posted(method: string): number
  /** How many times this tool started running, over every restart. */
  runs(tool: string): number
  /**
   * With `pagedPrompts`: off (the default), prompts/list is `hello` on one page; on, every page
   * hands out a new cursor (`p0`, `p1`, … one prompt a page), forever.
   */
  endlessPrompts(on: boolean): void
  /** Sends notifications/prompts/list_changed on every live session. */
  promptsChanged(): Promise<void>
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

interface Behaviour {
  label: string
  generation: number
  /** Counts a tool's run as it starts. */
  ran: (tool: string) => void
  slowToolMs: number | undefined
  pagedPrompts: boolean
  endless: () => boolean
}

const helloPrompt = {
  name: 'hello',
  description: 'Say hello to someone.',
  arguments: [{ name: 'name', description: 'who to greet', required: true }],
}

/** The MCP server each session gets: two tools, a prompt, a resource and a resource template. */
function mcpServer(behaviour: Behaviour): McpServer {
  const { label, generation, ran } = behaviour
  const server = new McpServer({ name: label, version: '1.0.0' })
  server.registerTool(
    'add',
    {
      description: 'Add two numbers.',
      inputSchema: { a: z.number().describe('first addend'), b: z.number().describe('second addend') },
      annotations: { readOnlyHint: true },
    },
    ({ a, b }) => {
      ran('add')
      return { content: [{ type: 'text', text: String(a + b) }] }
    },
  )
  server.registerTool(
    'whoami',
    { description: 'Which server (and which start of it) answers.', inputSchema: {} },
    () => {
      ran('whoami')
      return { content: [{ type: 'text', text: `${label} #${generation}` }] }
    },
  )
  const slowMs = behaviour.slowToolMs
  if (slowMs !== undefined) {
    server.registerTool(
      'slow',
      { description: 'A side effect that takes its time: each run counts.', inputSchema: {} },
      async () => {
        ran('slow')
        await new Promise((resolve) => setTimeout(resolve, slowMs))
        return { content: [{ type: 'text', text: `done by ${label} #${generation}` }] }
      },
    )
  }
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
  if (behaviour.pagedPrompts) {
    // Replaces the list McpServer installed with registerPrompt (get_prompt is still its own).
    server.server.setRequestHandler(ListPromptsRequestSchema, (request) => {
      if (!behaviour.endless()) return { prompts: [helloPrompt] }
      const page = Number(request.params?.cursor ?? 0)
      return { prompts: [{ name: `p${page}` }], nextCursor: String(page + 1) }
    })
  }
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

/** The JSON-RPC methods of a message or a batch of them. */
function methodsOf(body: unknown): string[] {
  return (Array.isArray(body) ? body : [body])
    .map((m) => (m as { method?: unknown } | null)?.method)
    .filter((m): m is string => typeof m === 'string')
}

/** `Bearer <credential>` → `<credential>`; a value without a scheme as it is. */
function credentialOf(value: string): string {
  return value.replace(/^\S+\s+/, '')
}

export async function startRemoteMcp(options: RemoteMcpOptions): Promise<RemoteMcp> {
  const label = options.name ?? 'remote'
  const requests: RemoteRequest[] = []
  const sessions = new Map<string, Session>()
  const sockets = new Set<Socket>()
  const runs = new Map<string, number>()
  let initialized = 0
  let generation = 0
  let endless = false
  let port = options.port ?? 0
  const behaviour = (): Behaviour => ({
    label,
    generation,
    ran: (tool) => void runs.set(tool, (runs.get(tool) ?? 0) + 1),
    slowToolMs: options.slowToolMs,
    pagedPrompts: options.pagedPrompts === true,
    endless: () => endless,
  })

  /** A POST's body, parsed (undefined if it is not JSON), its methods noted on the request. */
  async function readBody(req: IncomingMessage, entry: RemoteRequest): Promise<unknown> {
    const body = await readJson(req)
    entry.rpc.push(...methodsOf(body))
    return body
  }

  async function handleHttp(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    entry: RemoteRequest,
  ): Promise<void> {
    if (path !== '/mcp') return sendJson(res, 404, { error: 'not found' })
    const id = req.headers['mcp-session-id']
    const sessionId = Array.isArray(id) ? id[0] : id
    if (req.method === 'POST') {
      const body = await readBody(req, entry)
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
      const server = mcpServer(behaviour())
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: options.jsonResponse === true,
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

  async function handleSse(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    entry: RemoteRequest,
  ): Promise<void> {
    const path = url.pathname
    if (path === '/sse' && req.method === 'GET' && options.silentSse) {
      // The stream is open, and stays so, but says nothing a client could post to.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.write(': no endpoint for you\n\n')
      return
    }
    if (path === '/sse' && req.method === 'GET') {
      const server = mcpServer(behaviour())
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
      const sid = url.searchParams.get('sessionId')
      if (!sid) return sendJson(res, 400, { error: 'missing sessionId' })
      const session = sessions.get(sid)
      if (!session) return sendJson(res, 404, { error: 'session not found' })
      const body = await readBody(req, entry)
      return (session.transport as SSEServerTransport).handlePostMessage(req, res, body)
    }
    sendJson(res, 404, { error: 'not found' })
  }

  const httpServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const entry: RemoteRequest = {
      method: req.method ?? '',
      path: url.pathname + url.search,
      headers: req.headers,
      rpc: [],
      get status() {
        return res.headersSent ? res.statusCode : undefined
      },
    }
    requests.push(entry)
    const required = options.requireHeader
    if (required) {
      const header = req.headers[required.name.toLowerCase()]
      const received = Array.isArray(header) ? header.join(', ') : header
      if (received !== required.value) {
        // Like servers that quote what they got: a leak of this body would show the secret.
        const quoted =
          received === undefined
            ? null
            : options.unauthorized?.quote === 'credential'
              ? credentialOf(received)
              : received
        const pad = 'x'.repeat(options.unauthorized?.pad ?? 0)
        return sendJson(res, 401, {
          error: 'unauthorized',
          received: quoted,
          ...(pad ? { detail: `the credential ${String(quoted)} is not valid ${pad}` } : {}),
        })
      }
    }
    const handled =
      options.mode === 'http' ? handleHttp(req, res, url.pathname, entry) : handleSse(req, res, url, entry)
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
    posted: (method) => requests.reduce((n, r) => n + r.rpc.filter((m) => m === method).length, 0),
    runs: (tool) => runs.get(tool) ?? 0,
    endlessPrompts(on) {
      endless = on
    },
    async promptsChanged() {
      await Promise.all([...sessions.values()].map((s) => s.server.server.sendPromptListChanged()))
    },
    close,
    listen,
    async restart() {
      await close()
      await listen()
    },
  }
}
