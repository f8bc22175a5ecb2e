// The registry's protocol behaviour on the SDK's in-memory linked transports, a real SDK McpServer
// on the other end: reconnect after the server closes the connection, a session the server forgot
// (renewed, the request sent again once), list_changed, the HTTP→SSE fallback when the registry
// shuts down or times out meanwhile, transports whose close fails, the client's name and version.
// No process, no port, no sleep: every wait is on an event (a log line, a transport closing), with
// a test timeout in case it never comes.
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import type { PlatformConfig, RemoteServerConfig, ServerConfig } from '../src/config/types.js'
import { McpRegistry, type TransportOpener } from '../src/mcp/registry.js'
import type { Logger } from '../src/logging.js'

type Connection = PlatformConfig['mcp']['connection']

const QUICK: Connection = { max_reconnect_attempts: 3, connection_timeout: 5, initial_reconnect_delay: 0.01 }
/** Only for a wait that never ends: every test here takes milliseconds. */
const NEVER = { timeout: 10_000 }

interface LogLine {
  level: string
  obj: Record<string, any>
  msg: string
}

/** The registry's log, kept; a test can wait for the next line that matches. */
class Log {
  readonly lines: LogLine[] = []
  readonly #waiting = new Set<{ match: (line: LogLine) => boolean; found: (line: LogLine) => void }>()
  readonly sink: Logger = {
    debug: (obj, msg) => this.#add('debug', obj, msg),
    info: (obj, msg) => this.#add('info', obj, msg),
    warn: (obj, msg) => this.#add('warn', obj, msg),
    error: (obj, msg) => this.#add('error', obj, msg),
  }

  /** The next line from now on that matches. */
  next(match: (line: LogLine) => boolean): Promise<LogLine> {
    return new Promise((found) => this.#waiting.add({ match, found }))
  }

  /** The next state line of the server with this state. */
  nextState(state: string): Promise<LogLine> {
    return this.next((l) => l.msg === 'mcp server state changed' && l.obj.state === state)
  }

  /** Every state the server went through, in order. */
  states(): string[] {
    return this.lines.filter((l) => l.msg === 'mcp server state changed').map((l) => l.obj.state as string)
  }

  #add(level: string, obj: object, msg: string): void {
    const line = { level, obj: obj as Record<string, any>, msg }
    this.lines.push(line)
    for (const waiter of [...this.#waiting]) {
      if (!waiter.match(line)) continue
      this.#waiting.delete(waiter)
      waiter.found(line)
    }
  }
}

/**
 * A client transport whose close() waits until released: a Streamable HTTP transport that takes its
 * time to close, and refuses the initialize POST with 405 (so the registry falls back to SSE).
 */
class RefusingTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void
  closes = 0
  #release!: () => void
  readonly #released = new Promise<void>((resolve) => (this.#release = resolve))

  async start(): Promise<void> {}

  async send(): Promise<void> {
    await Promise.resolve()
    const err = new StreamableHTTPError(405, 'Error POSTing to endpoint: method not allowed')
    this.onerror?.(err)
    throw err
  }

  async close(): Promise<void> {
    this.closes += 1
    await this.#released
    this.onclose?.()
  }

  release(): void {
    this.#release()
  }
}

/** A transport that never finishes starting (an SSE stream that never names its endpoint). */
class StuckTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void

  start(): Promise<void> {
    return new Promise(() => undefined)
  }

  async send(): Promise<void> {}

  close(): Promise<void> {
    this.onclose?.()
    return Promise.reject(new Error('close failed'))
  }
}

interface SideOptions {
  /** Every close() from the client's side fails (once it has closed). */
  failClose?: boolean
  /** From the first request with this method on, the server no longer knows the session. */
  forgetAt?: string
}

/**
 * The client's end of an in-memory link to a McpServer, as the registry gets it. Like Streamable
 * HTTP it has a session id once the server answered; a session the server forgot is refused as
 * that transport refuses it: onerror, then the send rejects, with StreamableHTTPError 404.
 */
class ClientSide implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void
  sessionId?: string
  closed = false
  /** The methods of the requests sent, refused ones included. */
  readonly sent: string[] = []
  readonly server: McpServer
  readonly #inner: InMemoryTransport
  readonly #options: SideOptions
  #forgotten = false

  constructor(inner: InMemoryTransport, server: McpServer, id: string, options: SideOptions) {
    this.#inner = inner
    this.server = server
    this.#options = options
    inner.onmessage = (message) => {
      this.sessionId ??= id
      this.onmessage?.(message)
    }
    inner.onerror = (err) => this.onerror?.(err)
    inner.onclose = () => {
      this.closed = true
      this.onclose?.()
    }
  }

  start(): Promise<void> {
    return this.#inner.start()
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const method = 'method' in message ? message.method : undefined
    if (method !== undefined && 'id' in message) this.sent.push(method)
    if (method === this.#options.forgetAt) this.#forgotten = true
    if (!this.#forgotten) return this.#inner.send(message, options)
    // The HTTP round trip: the refusal comes later, never within send itself.
    await Promise.resolve()
    const err = new StreamableHTTPError(404, 'Error POSTing to endpoint: {"error":"Session not found"}')
    this.onerror?.(err)
    throw err
  }

  async close(): Promise<void> {
    await this.#inner.close()
    if (this.#options.failClose) throw new Error('close failed')
  }

  /** The server no longer knows this session (it restarted). */
  forget(): void {
    this.#forgotten = true
  }
}

/** An opener that links each attempt to a new server of its own (`build(1)`, `build(2)`, …). */
function servers(
  build: (attempt: number) => McpServer,
  options: (attempt: number) => SideOptions = () => ({}),
): { openTransport: TransportOpener; sides: ClientSide[] } {
  const sides: ClientSide[] = []
  const openTransport: TransportOpener = async () => {
    const attempt = sides.length + 1
    const server = build(attempt)
    const [client, serverSide] = InMemoryTransport.createLinkedPair()
    await server.connect(serverSide)
    const side = new ClientSide(client, server, `session-${attempt}`, options(attempt))
    sides.push(side)
    return side
  }
  return { openTransport, sides }
}

/** A server with the tool `whoami`, which answers `label` and counts its runs. */
function echoServer(label: string, runs: string[] = []): McpServer {
  const server = new McpServer({ name: label, version: '1.0.0' })
  server.registerTool('whoami', { description: 'Who answers.', inputSchema: {} }, () => {
    runs.push(label)
    return { content: [{ type: 'text', text: label }] }
  })
  return server
}

function remote(extra: Partial<RemoteServerConfig> = {}): RemoteServerConfig {
  return {
    name: 'mem',
    transport: 'http',
    explicit: true,
    url: 'http://memory.invalid/mcp',
    headers: {},
    ...extra,
  }
}

function open(
  t: TestContext,
  config: ServerConfig,
  openTransport: TransportOpener,
  connection: Partial<Connection> = {},
  Registry: typeof McpRegistry = McpRegistry,
): { registry: McpRegistry; log: Log } {
  const log = new Log()
  const registry = new Registry({
    servers: { [config.name]: config },
    connection: { ...QUICK, ...connection },
    toolTimeout: 5,
    env: {},
    secrets: [],
    log: log.sink,
    openTransport,
  })
  // The registry's timers (deadlines, backoff) are unref'd, and in-memory transports hold no
  // handle: this one, which never fires, keeps the process up while a test waits for them.
  const keepAlive = setInterval(() => undefined, 60_000)
  t.after(async () => {
    try {
      await registry.close()
    } finally {
      clearInterval(keepAlive)
    }
  })
  registry.start()
  return { registry, log }
}

const call = (registry: McpRegistry, name: string, args = '{}') =>
  registry.call(name, args, { signal: new AbortController().signal })

/** Rejections nobody handled while the test ran. */
function unhandledRejections(t: TestContext): unknown[] {
  const seen: unknown[] = []
  const note = (reason: unknown) => void seen.push(reason)
  process.on('unhandledRejection', note)
  t.after(() => process.off('unhandledRejection', note))
  return seen
}

test(
  'the server closes the connection: ready, failed, connecting, ready again; its tools come back',
  NEVER,
  async (t) => {
    const runs: string[] = []
    const { openTransport, sides } = servers((n) => echoServer(`server ${n}`, runs))
    const { registry, log } = open(t, remote(), openTransport)
    await log.nextState('ready')
    assert.deepEqual(await call(registry, 'mem__whoami'), { content: 'server 1', is_error: false })

    const back = log.nextState('ready')
    await (sides[0] as ClientSide).server.close()
    await back
    assert.deepEqual(log.states(), ['connecting', 'ready', 'failed', 'connecting', 'ready'])
    const lost = log.lines.find((l) => l.obj.state === 'failed')
    assert.deepEqual(lost?.obj.error, {
      type: 'MCP_SERVER_LOST',
      message: 'the connection to the server closed',
    })
    assert.equal(lost?.obj.retry_in_ms, 10)
    assert.equal(lost?.level, 'warn')

    assert.deepEqual(
      registry.list().map((tool) => tool.name),
      ['mem__whoami'],
    )
    assert.deepEqual(await call(registry, 'mem__whoami'), { content: 'server 2', is_error: false })
    assert.deepEqual(runs, ['server 1', 'server 2'])
    assert.equal(sides.length, 2)
    assert.ok((sides[0] as ClientSide).closed)
    assert.equal(registry.status()[0]?.attempts, 0)
  },
)

test(
  'a session the server forgot (404): a new session, and the request that met the 404 sent again on it',
  NEVER,
  async (t) => {
    const runs: string[] = []
    const { openTransport, sides } = servers((n) => echoServer(`session ${n}`, runs))
    const { registry, log } = open(t, remote(), openTransport)
    await log.nextState('ready')
    // The server restarts: it forgets session 1 (the client learns it at its next request).
    const first = sides[0] as ClientSide
    first.forget()

    const outcome = await call(registry, 'mem__whoami')
    assert.deepEqual(outcome, { content: 'session 2', is_error: false })
    assert.deepEqual(runs, ['session 2'], 'the call ran once, on the new session')
    assert.equal(first.sent.filter((m) => m === 'tools/call').length, 1, 'refused once on the old one')
    assert.ok(first.closed, 'the old session is closed')
    const expired = log.lines.filter((l) => l.msg === 'mcp server session expired; starting a new one')
    assert.equal(expired.length, 1)
    assert.equal(expired[0]?.obj.error.type, 'MCP_SESSION_EXPIRED')
    assert.deepEqual(log.states(), ['connecting', 'ready', 'connecting', 'ready'], 'never failed')
    assert.equal(sides.length, 2)
  },
)

test(
  'a session forgotten again at once: the request is not sent a third time; a new session after backoff',
  NEVER,
  async (t) => {
    const runs: string[] = []
    const { openTransport, sides } = servers(
      (n) => echoServer(`session ${n}`, runs),
      // Sessions 1 and 2 are forgotten by the time a tool is called on them.
      (n) => (n <= 2 ? { forgetAt: 'tools/call' } : {}),
    )
    const { registry, log } = open(t, remote(), openTransport)
    await log.nextState('ready')

    const lost = log.next((l) => l.obj.state === 'failed')
    const outcome = await call(registry, 'mem__whoami')
    assert.equal(outcome.is_error, true)
    assert.match(outcome.content, /^The server "mem" went away during the call/)
    const sent = sides.map((side) => side.sent.filter((m) => m === 'tools/call').length)
    assert.deepEqual(sent, [1, 1], 'sent once, and once again on the renewed session')
    assert.deepEqual(runs, [])

    assert.deepEqual((await lost).obj.error, {
      type: 'MCP_SERVER_LOST',
      message: 'the server keeps forgetting our session',
    })
    await log.nextState('ready')
    assert.deepEqual(await call(registry, 'mem__whoami'), { content: 'session 3', is_error: false })
    assert.deepEqual(runs, ['session 3'])
  },
)

test('tools, prompts and resources list_changed: each list is fetched again', NEVER, async (t) => {
  let server: McpServer | undefined
  const { openTransport } = servers(() => {
    server = echoServer('changing')
    server.registerPrompt('hello', { description: 'Say hello.' }, () => ({
      messages: [{ role: 'user', content: { type: 'text', text: 'Hello.' } }],
    }))
    server.registerResource('info', 'mem://info', { mimeType: 'text/plain' }, (uri) => ({
      contents: [{ uri: uri.href, text: 'info' }],
    }))
    return server
  })
  const { registry, log } = open(t, remote(), openTransport)
  await log.nextState('ready')
  const mcp = server as McpServer
  const refreshed = (list: string) =>
    log.next((l) => l.msg === 'mcp server list refreshed' && l.obj.list === list)

  let done = refreshed('tools')
  mcp.registerTool('added', { description: 'New.', inputSchema: {} }, () => ({
    content: [{ type: 'text', text: 'added here' }],
  }))
  assert.equal((await done).obj.tools, 2)
  assert.deepEqual(
    registry.list().map((tool) => tool.name),
    ['mem__whoami', 'mem__added'],
  )
  assert.deepEqual(await call(registry, 'mem__added'), { content: 'added here', is_error: false })

  done = refreshed('prompts')
  mcp.registerPrompt('bye', { description: 'Say goodbye.' }, () => ({
    messages: [{ role: 'user', content: { type: 'text', text: 'Bye.' } }],
  }))
  assert.equal((await done).obj.prompts, 2)
  assert.deepEqual(
    registry.prompts().map((p) => p.prompt.name),
    ['hello', 'bye'],
  )

  done = refreshed('resources')
  mcp.registerResource('more', 'mem://more', { mimeType: 'text/plain' }, (uri) => ({
    contents: [{ uri: uri.href, text: 'more' }],
  }))
  assert.equal((await done).obj.resources, 2)
  assert.deepEqual(
    registry.resources().map((r) => r.resource.uri),
    ['mem://info', 'mem://more'],
  )
  assert.equal(registry.status()[0]?.tools, 2)
})

for (const cause of ['shutdown', 'timeout'] as const) {
  test(
    `HTTP→SSE fallback: a ${cause} while the Streamable HTTP transport closes opens no SSE session`,
    NEVER,
    async (t) => {
      const http = new RefusingTransport()
      const sse = servers(() => echoServer('sse'))
      const { registry, log } = open(
        t,
        remote({ explicit: false }),
        (server, config) => (config.transport === 'http' ? http : sse.openTransport(server, config)),
        { max_reconnect_attempts: 0, connection_timeout: cause === 'timeout' ? 0.05 : 5 },
      )
      // The registry is told 405, gives up on Streamable HTTP and waits for its transport to close.
      await log.next((l) => l.msg === 'mcp server does not speak Streamable HTTP; trying HTTP+SSE')
      assert.ok(http.closes > 0, 'the Streamable HTTP transport is closing')

      if (cause === 'shutdown') {
        const closing = registry.close()
        http.release()
        await closing
      } else {
        const failed = await log.nextState('failed')
        assert.match(failed.obj.error.message, /did not become ready within 0.05 s/)
        http.release()
      }
      // What follows the close runs in microtasks only (in-memory transports): a turn sees it all.
      await nextTurn()
      await nextTurn()

      assert.deepEqual(
        sse.sides.map((s) => s.closed),
        sse.sides.map(() => true),
        `an SSE session opened after the ${cause} and was left open`,
      )
      assert.equal(sse.sides.length, 0, `an SSE session was opened after the ${cause}`)
      assert.equal(registry.status()[0]?.state, cause === 'shutdown' ? 'closed' : 'failed')
    },
  )
}

test(
  'a transport whose close() fails: a timed-out attempt and a lost session leave no unhandled rejection',
  NEVER,
  async (t) => {
    const unhandled = unhandledRejections(t)
    const linked = servers(
      (n) => echoServer(`attempt ${n + 1}`),
      () => ({ failClose: true }),
    )
    let attempts = 0
    const { log } = open(
      t,
      remote(),
      (server, config) => (++attempts === 1 ? new StuckTransport() : linked.openTransport(server, config)),
      { connection_timeout: 0.05 },
    )
    const timedOut = await log.nextState('failed')
    assert.match(timedOut.obj.error.message, /did not become ready within 0.05 s/)
    await log.nextState('ready')

    // The server ends the session: the registry closes its side too (which fails), and reconnects.
    const lost = log.nextState('failed')
    const back = log.nextState('ready')
    await (linked.sides[0] as ClientSide).server.close()
    assert.equal((await lost).obj.error.type, 'MCP_SERVER_LOST')
    await back
    await nextTurn()
    assert.deepEqual(unhandled, [])
  },
)

test(
  'initialize names the client and its version as the package.json above the running code says',
  NEVER,
  async (t) => {
    // The built code, copied into a package whose package.json has another version.
    const root = mkdtempSync(join(tmpdir(), 'mcp-platform-copy-'))
    t.after(() => rmSync(root, { recursive: true, force: true }))
    const repository = fileURLToPath(new URL('../../', import.meta.url))
    cpSync(join(repository, 'dist/src'), join(root, 'dist/src'), { recursive: true })
    symlinkSync(realpathSync(join(repository, 'node_modules')), join(root, 'node_modules'))
    writeFileSync(
      join(root, 'package.json'),
      JSON.stringify({ name: 'mcp-platform', version: '9.8.7-copy', type: 'module' }),
    )
    const copy = (await import(pathToFileURL(join(root, 'dist/src/mcp/registry.js')).href)) as {
      McpRegistry: typeof McpRegistry
    }
    const own = JSON.parse(readFileSync(join(repository, 'package.json'), 'utf8')) as { version: string }

    for (const [Registry, version] of [
      [McpRegistry, own.version],
      [copy.McpRegistry, '9.8.7-copy'],
    ] as const) {
      const { openTransport, sides } = servers(() => echoServer('versions'))
      const { registry, log } = open(t, remote(), openTransport, {}, Registry)
      await log.nextState('ready')
      assert.deepEqual((sides[0] as ClientSide).server.server.getClientVersion(), {
        name: 'mcp-platform',
        version,
      })
      await registry.close()
    }
  },
)
