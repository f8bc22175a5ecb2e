// Remote MCP servers that misbehave, against the registry itself (and /ready through the platform),
// on real local servers (test/helpers/remote-mcp.ts): a restart while a tool runs, an event stream
// that never names its endpoint, finished requests that must stay finished (no stray
// notifications/cancelled), a prompt list that pages forever, and a long 401 quoting the credential.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ReadResourceResult } from '@modelcontextprotocol/sdk/types.js'
import type { PlatformConfig, RemoteServerConfig } from '../src/config/types.js'
import { McpRegistry, type McpRegistryOptions } from '../src/mcp/registry.js'
import type { ServerStatus } from '../src/mcp/types.js'
import { startLlmServer } from './helpers/llm-server.js'
import { mcpSettled, startPlatform, onCleanup } from './helpers/platform.js'
import { startRemoteMcp, type RemoteMcp, type RemoteMcpOptions } from './helpers/remote-mcp.js'

type Connection = PlatformConfig['mcp']['connection']

/** Short: every failure here is meant to show within a second or two. */
const QUICK: Connection = { max_reconnect_attempts: 3, connection_timeout: 2, initial_reconnect_delay: 0.1 }

interface LogLine {
  level: string
  obj: Record<string, any>
  msg: string
}

async function remoteMcp(t: TestContext, options: RemoteMcpOptions): Promise<RemoteMcp> {
  const remote = await startRemoteMcp(options)
  onCleanup(t, () => remote.close())
  return remote
}

function remoteConfig(
  name: string,
  url: string,
  extra: Partial<RemoteServerConfig> = {},
): RemoteServerConfig {
  return { name, transport: 'http', explicit: true, url, headers: {}, ...extra }
}

/** A started registry over these servers, closed after the test; its log lines are kept. */
function open(t: TestContext, servers: RemoteServerConfig[], options: Partial<McpRegistryOptions> = {}) {
  const lines: LogLine[] = []
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, obj: obj as Record<string, any>, msg })
  }
  const registry = new McpRegistry({
    servers: Object.fromEntries(servers.map((s) => [s.name, s])),
    connection: QUICK,
    toolTimeout: 20,
    env: {},
    secrets: [],
    log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    ...options,
  })
  registry.start()
  onCleanup(t, () => registry.close())
  return { registry, lines }
}

async function until<T>(what: string, probe: () => T | undefined | false, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(10)
  }
}

function statusOf(registry: McpRegistry, name: string): ServerStatus {
  const status = registry.status().find((s) => s.name === name)
  assert.ok(status, `server ${name} has a status`)
  return status
}

function ready(registry: McpRegistry, name: string): Promise<ServerStatus> {
  return until(`${name} ready`, () => {
    const status = statusOf(registry, name)
    return status.state === 'ready' && status
  })
}

/** The log, one line a line, for failure messages. */
function show(lines: LogLine[]): string {
  return lines
    .map((l) => {
      const why = l.obj.error
        ? ` [${l.obj.error.type}: ${l.obj.error.message}]`
        : l.obj.err
          ? ` [${l.obj.err}]`
          : ''
      return `  ${l.level} ${l.msg}${why}`
    })
    .join('\n')
}

const signal = () => new AbortController().signal

function texts(result: ReadResourceResult): string[] {
  return result.contents.map((c) => ('text' in c ? c.text : `[blob ${c.blob.length}]`))
}

for (const jsonResponse of [false, true]) {
  const answers = jsonResponse ? 'JSON responses' : 'SSE responses'
  test(`Streamable HTTP (${answers}): a tool call running when the server restarts fails, and is not run again`, async (t) => {
    const remote = await remoteMcp(t, { mode: 'http', jsonResponse, slowToolMs: 1000 })
    const { registry, lines } = open(t, [remoteConfig('remote', remote.url)], { toolTimeout: 20 })
    await ready(registry, 'remote')

    const started = Date.now()
    const call = registry.call('remote__slow', '{}', { signal: signal() })
    await until('the tool runs on the server', () => remote.runs('slow') === 1)
    await remote.restart()
    const outcome = await call
    const took = Date.now() - started

    // The call may have had its effect: the platform says it failed, and does not run it again.
    assert.equal(outcome.is_error, true, `${JSON.stringify(outcome)}\n${show(lines)}`)
    assert.match(outcome.content, /went away|failed/, JSON.stringify(outcome))
    assert.ok(took < 5000, `the outcome came after ${took} ms, not after the tool timeout (20 s)`)
    assert.equal(remote.runs('slow'), 1, 'the tool ran once')
    await sleep(500)
    assert.equal(remote.runs('slow'), 1, 'and was not sent again later either')
    assert.equal(remote.posted('tools/call'), 1, 'one tools/call was posted')

    // A call made now is answered by the restarted server, on a new session.
    const again = await registry.call('remote__whoami', '{}', { signal: signal() })
    assert.deepEqual(again, { content: 'remote #2', is_error: false }, show(lines))
    assert.ok(remote.sessions() >= 2, 'a new session was initialized')
  })
}

test('HTTP+SSE: an event stream that never sends `endpoint` fails after connection_timeout; close is quick', async (t) => {
  const remote = await remoteMcp(t, { mode: 'sse', silentSse: true })
  const { registry, lines } = open(
    t,
    [
      remoteConfig('silent', remote.url, { transport: 'sse' }),
      // Without a type: Streamable HTTP first (405 at the SSE url), then the legacy transport.
      remoteConfig('fallback', remote.url, { explicit: false }),
    ],
    { connection: { max_reconnect_attempts: 0, connection_timeout: 1, initial_reconnect_delay: 0.1 } },
  )
  const started = Date.now()
  await until('the registry settles (/ready is not stuck)', () => registry.settled(), 4000)
  const took = Date.now() - started
  assert.ok(took >= 900 && took < 3000, `settled after ${took} ms (connection_timeout 1 s)`)

  for (const name of ['silent', 'fallback']) {
    const status = statusOf(registry, name)
    assert.equal(status.state, 'failed', `${name}: ${JSON.stringify(status)}\n${show(lines)}`)
    assert.equal(status.transport, 'sse', name)
    assert.match(status.error ?? '', /did not become ready within 1 s/, name)
    const failure = lines.find((l) => l.obj.server === name && l.obj.state === 'failed')
    assert.equal(failure?.obj.error?.type, 'MCP_CONNECT_FAILED', name)
  }
  assert.equal(
    remote.requests.filter((r) => r.method === 'GET' && r.path === '/sse' && r.status === 200).length,
    2,
    'both event streams did open',
  )
  assert.ok(
    !remote.requests.some((r) => r.method === 'POST' && r.path.startsWith('/messages')),
    'nothing could be posted',
  )

  const closing = Date.now()
  await registry.close()
  assert.ok(Date.now() - closing < 1000, `close took ${Date.now() - closing} ms`)
  assert.deepEqual(
    registry.status().map((s) => s.state),
    ['closed', 'closed'],
  )
})

test('finished requests stay finished: no notifications/cancelled after read_resource, get_prompt or a tool call', async (t) => {
  const remote = await remoteMcp(t, { mode: 'http', slowToolMs: 3000 })
  const { registry, lines } = open(t, [remoteConfig('remote', remote.url, { tool_timeout: 1 })], {
    connection: { ...QUICK, connection_timeout: 1 },
  })
  await ready(registry, 'remote')

  // The turn's signal, which fires later (the user stops the turn while the LLM answers).
  const turn = new AbortController()
  const info = await registry.readResource('remote://info', 'remote')
  assert.deepEqual(texts(info.result), ['remote is a remote MCP server.'])
  const item = await registry.readResource('remote://items/3', undefined, turn.signal)
  assert.deepEqual(texts(item.result), ['item 3'])
  const prompt = await registry.getPrompt('remote', 'hello', { name: 'Ada' }, turn.signal)
  assert.equal(prompt.messages.length, 1)
  const added = await registry.call('remote__add', '{"a":1,"b":2}', { signal: turn.signal })
  assert.deepEqual(added, { content: '3', is_error: false })

  // Longer than connection_timeout (read_resource, get_prompt) and the tool timeout (1 s each).
  await sleep(1300)
  turn.abort(new Error('the turn was stopped after its requests were answered'))
  await sleep(300)
  const posted = remote.requests.flatMap((r) => r.rpc)
  assert.equal(remote.posted('notifications/cancelled'), 0, `posted: ${posted.join(', ')}\n${show(lines)}`)

  // What is still running when its turn stops is cancelled on the server: the count above sees it.
  const stopping = new AbortController()
  const slow = registry.call('remote__slow', '{}', { signal: stopping.signal })
  await until('the slow tool runs', () => remote.runs('slow') === 1)
  stopping.abort(new Error('stopped'))
  await assert.rejects(slow, /stopped/)
  await until('the server is told', () => remote.posted('notifications/cancelled') === 1)
  // And one that runs out of time is cancelled once, by its own timeout.
  const late = await registry.call('remote__slow', '{}', { signal: signal() })
  assert.deepEqual(late, { content: 'The tool call timed out after 1 s.', is_error: true })
  await until('the server is told', () => remote.posted('notifications/cancelled') === 2)
  assert.equal(statusOf(registry, 'remote').state, 'ready')
})

test('prompts/list that pages forever: the refresh stops at 1000 pages with a warning; the tools still work', async (t) => {
  const remote = await remoteMcp(t, { mode: 'http', jsonResponse: true, pagedPrompts: true })
  const { registry, lines } = open(t, [remoteConfig('remote', remote.url)])
  await ready(registry, 'remote')
  assert.deepEqual(
    registry.prompts().map((p) => p.prompt.name),
    ['hello'],
  )
  // list_changed comes on the session's GET event stream: once it is open.
  await until('the event stream is open', () =>
    remote.requests.some((r) => r.method === 'GET' && r.status === 200),
  )

  remote.endlessPrompts(true)
  const before = remote.posted('prompts/list')
  const heap = process.memoryUsage().heapUsed
  await remote.promptsChanged()
  const warning = await until(
    'the refresh to give up',
    () => lines.find((l) => l.msg === 'mcp server list refresh failed' && l.obj.list === 'prompts'),
    15_000,
  )
  const pages = remote.posted('prompts/list') - before
  assert.equal(warning.level, 'warn')
  assert.equal(warning.obj.list, 'prompts')
  assert.equal(warning.obj.error?.type, 'MCP_LIST_REFRESH_FAILED', show(lines))
  assert.match(warning.obj.error?.message, /more than 1000 pages of prompts\/list/)
  assert.ok(pages >= 999 && pages <= 1001, `${pages} pages were asked for`)
  await sleep(300)
  assert.equal(remote.posted('prompts/list') - before, pages, 'and no more after')
  const grown = (process.memoryUsage().heapUsed - heap) / 1e6
  assert.ok(grown < 100, `the heap grew by ${grown.toFixed(0)} MB`)

  // The server is still ready, with its last good list, and its tools answer.
  assert.equal(statusOf(registry, 'remote').state, 'ready')
  assert.deepEqual(
    registry.prompts().map((p) => p.prompt.name),
    ['hello'],
  )
  const added = await registry.call('remote__add', '{"a":20,"b":22}', { signal: signal() })
  assert.deepEqual(added, { content: '42', is_error: false })
})

test('prompts/list that pages forever from the start: the server connects without prompts, with a warning', async (t) => {
  const remote = await remoteMcp(t, { mode: 'http', jsonResponse: true, pagedPrompts: true })
  remote.endlessPrompts(true)
  // Time enough for 1000 pages: the page limit ends the listing, not the connection timeout.
  const { registry, lines } = open(t, [remoteConfig('remote', remote.url)], {
    connection: { ...QUICK, connection_timeout: 10 },
  })
  const status = await until(
    'the server to settle',
    () => registry.settled() && statusOf(registry, 'remote'),
    12_000,
  )
  assert.equal(status.state, 'ready', `${JSON.stringify(status)}\n${show(lines)}`)
  assert.equal(status.prompts, 0)
  assert.equal(status.tools, 2)
  const warning = lines.find((l) => l.msg === 'mcp server list unavailable' && l.obj.list === 'prompts')
  assert.equal(warning?.level, 'warn', show(lines))
  assert.equal(warning.obj.error?.type, 'MCP_LIST_REFRESH_FAILED')
  assert.match(warning.obj.error?.message, /more than 1000 pages of prompts\/list/)
  const pages = remote.posted('prompts/list')
  assert.ok(pages >= 999 && pages <= 1001, `${pages} pages were asked for`)
  const added = await registry.call('remote__add', '{"a":1,"b":1}', { signal: signal() })
  assert.deepEqual(added, { content: '2', is_error: false })
})

test('a long 401 quoting the credential of `Authorization: Bearer …`: /ready and the logs show neither', async (t) => {
  const TOKEN = 'Bearer sk-remote-5d2a8e71c94b06f3'
  const CREDENTIAL = TOKEN.slice('Bearer '.length)
  const remote = await remoteMcp(t, {
    mode: 'http',
    requireHeader: { name: 'Authorization', value: 'Bearer something-else-entirely' },
    unauthorized: { quote: 'credential', pad: 20_000 },
  })
  // The server does quote the credential alone, in a long body.
  const refused = await fetch(remote.url, { method: 'POST', headers: { authorization: TOKEN } })
  const body = await refused.text()
  assert.equal(refused.status, 401)
  assert.ok(body.includes(CREDENTIAL) && !body.includes(TOKEN) && body.length > 20_000)

  const llm = await startLlmServer()
  onCleanup(t, () => llm.close())
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers: { locked: { url: remote.url, headers: { Authorization: 'env:LOCKED_TOKEN' } } },
    env: { LOCKED_TOKEN: TOKEN, LOG_LEVEL: 'trace' },
    patch: (c) => {
      c.mcp.connection = { max_reconnect_attempts: 0, connection_timeout: 2, initial_reconnect_delay: 0.1 }
    },
  })
  onCleanup(t, () => platform.close())
  await mcpSettled(platform.app)

  const res = await platform.app.inject('/ready')
  const status = (res.json().checks.mcp.servers as ServerStatus[]).find((s) => s.name === 'locked')
  assert.equal(status?.state, 'failed', res.body)
  assert.match(status.error ?? '', /401/)
  assert.ok(
    remote.requests.some((r) => r.headers.authorization === TOKEN && r.status === 401),
    'the token was sent and refused',
  )
  assert.ok(!res.body.includes(CREDENTIAL), `the credential is in /ready: ${res.body.slice(0, 500)}`)
  // The server's text is cut (300 characters), plus what the platform says around it.
  assert.ok((status.error ?? '').length < 400, `/ready's error is ${status.error?.length} characters long`)
  assert.ok(res.body.length < 2000, `/ready is ${res.body.length} characters long`)

  await platform.app.close()
  const logs = platform.logs.lines()
  assert.ok(
    logs.some((l) => l.component === 'mcp' && l.state === 'failed'),
    'the failure was logged',
  )
  for (const line of platform.logs.text.split('\n')) {
    assert.ok(!line.includes(CREDENTIAL), `the credential is in a log line: ${line.slice(0, 300)}`)
  }
  const failed = logs.find((l) => l.component === 'mcp' && l.state === 'failed')
  assert.ok(
    JSON.stringify(failed).length < 1500,
    `the failure's log line is ${JSON.stringify(failed).length} long`,
  )
})

test('a long Streamable HTTP session prints no MaxListenersExceededWarning', async (t) => {
  const remote = await remoteMcp(t, { mode: 'http' })
  const { registry } = open(t, [remoteConfig('remote', remote.url)])
  await ready(registry, 'remote')
  const warnings: string[] = []
  const onWarning = (w: Error) => {
    if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message)
  }
  process.on('warning', onWarning)
  t.after(() => process.off('warning', onWarning))
  // Each fetch of the SDK's transport listens on the session's one signal until it is collected;
  // Node's limit there is passed after about 1,500 calls.
  let sum = 0
  for (let i = 0; i < 2500; i++) {
    const outcome = await registry.call('remote__add', '{"a":1,"b":2}', { signal: signal() })
    sum += Number(outcome.content)
  }
  await sleep(10)
  assert.equal(sum, 7500)
  assert.deepEqual(warnings, [])
})
