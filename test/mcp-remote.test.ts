// Remote MCP servers through the whole platform: Streamable HTTP and the legacy HTTP+SSE transport
// against real servers on local ports (test/helpers/remote-mcp.ts), a server that restarts or goes
// away for a while, and header secrets given as env: that must never show.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { openAiStream, openAiToolCalls, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import {
  Client,
  mcpSettled,
  startPlatform,
  terminal,
  type ConfigObject,
  type Frame,
  type Platform,
  onCleanup,
} from './helpers/platform.js'
import { startRemoteMcp, type RemoteMcp, type RemoteMcpOptions } from './helpers/remote-mcp.js'

const TOKEN = 'Bearer sk-remote-7c1e94b2d05a6f38'
const WRONG = 'Bearer sk-wrong-3f8a21c6e9d04b57'
const AUTH = { name: 'Authorization', value: TOKEN }
const HEADERS = { Authorization: 'env:REMOTE_TOKEN' }

interface Setup {
  llm: LlmServer
  platform: Platform
  client: Client
}

/** Remote servers first (their urls go into `servers`), then the platform. */
async function remotes(t: TestContext, ...options: RemoteMcpOptions[]): Promise<RemoteMcp[]> {
  const started = await Promise.all(options.map((o) => startRemoteMcp(o)))
  onCleanup(t, async () => void (await Promise.all(started.map((r) => r.close()))))
  return started
}

async function setup(
  t: TestContext,
  servers: ConfigObject,
  options: { env?: Record<string, string>; patch?: (c: ConfigObject) => void } = {},
): Promise<Setup> {
  const llm = await startLlmServer()
  onCleanup(t, () => llm.close())
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers,
    // debug: the registry's transport errors are in the log a failing test prints.
    env: { REMOTE_TOKEN: TOKEN, LOG_LEVEL: 'debug', ...options.env },
    patch: options.patch,
  })
  onCleanup(t, () => platform.close())
  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))
  await mcpSettled(platform.app)
  return { llm, platform, client }
}

/** Room for a server to come back: small delays, enough attempts not to give up during a test. */
function patience(c: ConfigObject): void {
  c.mcp.connection = { max_reconnect_attempts: 20, connection_timeout: 2, initial_reconnect_delay: 0.1 }
}

/** The registry's log lines, one per line, for failure messages. */
function mcpLog(platform: Platform): string {
  return platform.logs
    .lines()
    .filter((l) => l.component === 'mcp')
    .map((l) => {
      const why = l.error ? ` [${l.error.type}: ${l.error.message}]` : l.err ? ` [${l.err}]` : ''
      return `  ${l.time} ${l.level} ${l.msg}${why}`
    })
    .join('\n')
}

async function readyBody(platform: Platform): Promise<{ text: string; json: any }> {
  const res = await platform.app.inject('/ready')
  return { text: res.body, json: res.json() }
}

async function serverStatus(platform: Platform, name: string): Promise<any> {
  const { json } = await readyBody(platform)
  return json.checks.mcp.servers.find((s: any) => s.name === name)
}

/** Polls /ready until the server's entry satisfies `ok`; fails with the last entry seen. */
async function waitForStatus(
  platform: Platform,
  name: string,
  ok: (status: any) => boolean,
  what: string,
  timeoutMs = 8000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await serverStatus(platform, name)
    if (ok(status)) return status
    if (Date.now() > deadline) {
      assert.fail(`${name}: ${what}; last seen in /ready: ${JSON.stringify(status)}\n${mcpLog(platform)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

let seq = 0
/** A chat turn where the LLM calls one tool, then answers; returns the frames and the tool_result. */
async function toolTurn(
  s: Setup,
  call: { name: string; arguments: unknown },
): Promise<{ frames: Frame[]; result: any; requestsBefore: number }> {
  const id = `turn-${++seq}`
  const requestsBefore = s.llm.requests.length
  s.llm.reply({ body: openAiToolCalls([{ id: `call-${id}`, ...call }]) })
  s.llm.reply({ body: openAiStream(['Done.']) })
  const frames = await s.client.chatAndWait(id, { text: `please use ${call.name}` })
  const results = frames.filter((f) => f.chunk?.type === 'tool_result').map((f) => f.chunk!.data)
  assert.equal(results.length, 1, JSON.stringify(frames))
  return { frames, result: results[0], requestsBefore }
}

/** The tool_result is a success with this content; otherwise fails with the registry's log. */
function assertResult(s: Setup, result: any, content: string, message = ''): void {
  assert.deepEqual(
    [result.is_error, result.content],
    [false, content],
    `${message} tool_result ${JSON.stringify(result)}\n${mcpLog(s.platform)}`,
  )
}

test('Streamable HTTP: the tools of a remote server in list_tools and a turn; its header from env:; /ready', async (t) => {
  const [remote] = await remotes(t, { mode: 'http', requireHeader: AUTH })
  const s = await setup(t, { remote: { url: remote!.url, headers: HEADERS } })

  const status = await serverStatus(s.platform, 'remote')
  assert.equal(status.state, 'ready', JSON.stringify(status))
  assert.equal(status.transport, 'http')
  assert.equal(status.tools, 2)
  assert.equal(status.error, undefined)

  const listed = await s.client.ask('list_tools')
  const tools = listed.result!.tools as any[]
  assert.deepEqual(tools.map((x) => x.name).sort(), ['remote__add', 'remote__whoami'])
  const add = tools.find((x) => x.name === 'remote__add')
  assert.equal(add.server, 'remote')
  assert.equal(add.description, 'Add two numbers.')
  assert.deepEqual(add.input_schema.required, ['a', 'b'])
  assert.equal(add.annotations.readOnlyHint, true)

  const { frames, result, requestsBefore } = await toolTurn(s, {
    name: 'remote__add',
    arguments: { a: 2, b: 40 },
  })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  assert.deepEqual(result, { id: result.id, name: 'remote__add', is_error: false, content: '42' })
  const second = s.llm.requests[requestsBefore + 1]!.body
  assert.ok(
    s.llm.requests[requestsBefore]!.body.tools.some((x: any) => x.function.name === 'remote__add'),
    'the remote tool was offered to the LLM',
  )
  assert.deepEqual(second.messages.at(-1), { role: 'tool', tool_call_id: result.id, content: '42' })

  // Every request the server got carried the header, resolved from env:; none was refused.
  assert.ok(remote!.requests.length > 0)
  for (const r of remote!.requests) {
    assert.equal(r.headers.authorization, TOKEN, `${r.method} ${r.path}`)
    assert.notEqual(r.status, 401, `${r.method} ${r.path}`)
  }
  assert.equal(remote!.sessions(), 1, 'one session for all of it')
})

test('Streamable HTTP: prompts and resources through the WebSocket actions, and in a chat turn', async (t) => {
  const [remote] = await remotes(t, { mode: 'http', requireHeader: AUTH })
  const s = await setup(t, { remote: { url: remote!.url, headers: HEADERS } })
  const status = await serverStatus(s.platform, 'remote')
  assert.equal(status.state, 'ready', JSON.stringify(status))
  assert.equal(status.prompts, 1)
  assert.equal(status.resources, 2, 'a resource and a template')

  const prompts = (await s.client.ask('list_prompts')).result!.prompts as any[]
  assert.deepEqual(
    prompts.filter((p) => p.server === 'remote'),
    [
      {
        server: 'remote',
        name: 'hello',
        description: 'Say hello to someone.',
        arguments: [{ name: 'name', description: 'who to greet', required: true }],
      },
    ],
  )
  const prompt = await s.client.ask('get_prompt', {
    server: 'remote',
    name: 'hello',
    arguments: { name: 'Ada' },
  })
  assert.equal(prompt.status, 'complete', JSON.stringify(prompt))
  assert.deepEqual(prompt.result!.messages, [
    { role: 'user', content: { type: 'text', text: 'Say hello to Ada.' } },
  ])

  const resources = (await s.client.ask('list_resources')).result!.resources as any[]
  assert.deepEqual(
    resources.find((r) => r.uri === 'remote://info'),
    {
      server: 'remote',
      uri: 'remote://info',
      name: 'info',
      mime_type: 'text/plain',
      description: 'About this remote server.',
    },
  )
  assert.deepEqual(
    resources.find((r) => r.uri_template !== undefined),
    {
      server: 'remote',
      uri_template: 'remote://items/{id}',
      name: 'item',
      mime_type: 'text/plain',
      description: 'One item by id.',
    },
  )
  const info = await s.client.ask('read_resource', { server: 'remote', uri: 'remote://info' })
  assert.equal(info.status, 'complete', JSON.stringify(info))
  assert.deepEqual(info.result!.contents, [
    { uri: 'remote://info', mimeType: 'text/plain', text: 'remote is a remote MCP server.' },
  ])
  const item = await s.client.ask('read_resource', { uri: 'remote://items/7' })
  assert.equal(item.status, 'complete', JSON.stringify(item))
  assert.deepEqual(item.result!.contents, [
    { uri: 'remote://items/7', mimeType: 'text/plain', text: 'item 7' },
  ])

  // A chat turn with a prompt and a resource: both reach the LLM.
  const before = s.llm.requests.length
  s.llm.reply({ body: openAiStream(['Hello, Ada.']) })
  const withPrompt = await s.client.chatAndWait('with-prompt', {
    text: 'go ahead',
    prompt: { server: 'remote', name: 'hello', arguments: { name: 'Ada' } },
    resources: ['remote://info'],
  })
  assert.equal(terminal(withPrompt).status, 'complete', JSON.stringify(withPrompt))
  const sent = JSON.stringify(s.llm.requests[before]!.body.messages)
  assert.ok(sent.includes('Say hello to Ada.'), `the prompt's text reached the LLM: ${sent}`)
  assert.ok(sent.includes('remote is a remote MCP server.'), `the resource's text reached the LLM: ${sent}`)
})

test('a restarted server (its sessions unknown, 404): the next tool call re-initializes and succeeds', async (t) => {
  const [remote] = await remotes(t, { mode: 'http', requireHeader: AUTH })
  const s = await setup(t, { remote: { url: remote!.url, headers: HEADERS } }, { patch: patience })

  const first = await toolTurn(s, { name: 'remote__whoami', arguments: {} })
  assertResult(s, first.result, 'remote #1')

  await remote!.restart()
  const again = await toolTurn(s, { name: 'remote__whoami', arguments: {} })
  assert.equal(terminal(again.frames).status, 'complete', JSON.stringify(again.frames))
  assertResult(s, again.result, 'remote #2', 'answered by the restarted server:')
  assert.ok(remote!.sessions() >= 2, 'a new session was initialized')
  const added = await toolTurn(s, { name: 'remote__add', arguments: { a: 1, b: 2 } })
  assertResult(s, added.result, '3')
  assert.equal((await serverStatus(s.platform, 'remote')).state, 'ready')
})

test('a restarted server is reconnected on its own: /ready shows it ready with a new session', async (t) => {
  const [remote] = await remotes(t, { mode: 'http', requireHeader: AUTH })
  const s = await setup(t, { remote: { url: remote!.url, headers: HEADERS } }, { patch: patience })
  const first = await toolTurn(s, { name: 'remote__add', arguments: { a: 2, b: 2 } })
  assertResult(s, first.result, '4')
  const sessions = remote!.sessions()

  await remote!.restart()
  const status = await waitForStatus(
    s.platform,
    'remote',
    (st) => st.state === 'ready' && remote!.sessions() > sessions,
    'reconnects to the restarted server without being asked to',
  )
  assert.equal(status.transport, 'http')
  assert.equal(status.tools, 2)
  assert.equal(remote!.liveSessions(), 1, 'the new session lives on the restarted server')
  const again = await toolTurn(s, { name: 'remote__whoami', arguments: {} })
  assert.equal(terminal(again.frames).status, 'complete')
  assertResult(s, again.result, 'remote #2')
})

test('a server gone for a while: tool calls fail softly, /ready says so, then it is back', async (t) => {
  const [remote] = await remotes(t, { mode: 'http', requireHeader: AUTH })
  const s = await setup(t, { remote: { url: remote!.url, headers: HEADERS } }, { patch: patience })
  assertResult(s, (await toolTurn(s, { name: 'remote__add', arguments: { a: 1, b: 1 } })).result, '2')

  await remote!.close()
  const during = await toolTurn(s, { name: 'remote__add', arguments: { a: 3, b: 4 } })
  assert.equal(terminal(during.frames).status, 'complete', 'the turn itself completes')
  assert.equal(during.result.is_error, true, JSON.stringify(during.result))
  assert.match(during.result.content, /remote/)
  const down = await waitForStatus(
    s.platform,
    'remote',
    (st) => st.state === 'failed' || st.state === 'connecting',
    'shows the server down',
  )
  assert.equal(down.tools, 0)
  const listed = await s.client.ask('list_tools')
  assert.ok(
    !(listed.result!.tools as any[]).some((x) => x.server === 'remote'),
    'no tools of a server that is down',
  )

  await new Promise((resolve) => setTimeout(resolve, 300))
  await remote!.listen()
  const up = await waitForStatus(s.platform, 'remote', (st) => st.state === 'ready', 'is back within seconds')
  assert.equal(up.transport, 'http')
  assert.equal(up.tools, 2)
  const after = await toolTurn(s, { name: 'remote__add', arguments: { a: 3, b: 4 } })
  assert.equal(terminal(after.frames).status, 'complete')
  assertResult(s, after.result, '7')
})

test('a server that only speaks the legacy HTTP+SSE transport: found by fallback, or forced by type', async (t) => {
  const [legacy, forced, strict] = await remotes(
    t,
    { mode: 'sse', requireHeader: AUTH, name: 'legacy' },
    { mode: 'sse', requireHeader: AUTH, name: 'forced' },
    { mode: 'sse', requireHeader: AUTH, name: 'strict' },
  )
  const s = await setup(t, {
    legacy: { url: legacy!.url, headers: HEADERS },
    forced: { url: forced!.url, headers: HEADERS, type: 'sse' },
    // Forced to Streamable HTTP: no fallback, so it cannot connect to an SSE-only server.
    strict: { url: strict!.url, headers: HEADERS, type: 'http' },
  })

  for (const [name, remote] of [
    ['legacy', legacy!],
    ['forced', forced!],
  ] as const) {
    const status = await serverStatus(s.platform, name)
    assert.equal(status.state, 'ready', JSON.stringify(status))
    assert.equal(status.transport, 'sse', name)
    assert.equal(status.tools, 2)
    const turn = await toolTurn(s, { name: `${name}__add`, arguments: { a: 20, b: 22 } })
    assert.equal(terminal(turn.frames).status, 'complete')
    assertResult(s, turn.result, '42', name)
    const whoami = await toolTurn(s, { name: `${name}__whoami`, arguments: {} })
    assertResult(s, whoami.result, `${name} #1`, 'routed to its own server:')
    assert.ok(
      remote.requests.some((r) => r.method === 'GET' && r.path === '/sse' && r.status === 200),
      'the event stream was opened',
    )
    assert.ok(
      remote.requests.some((r) => r.method === 'POST' && r.path.startsWith('/messages?sessionId=')),
      'messages were posted to the endpoint the stream named',
    )
    for (const r of remote.requests)
      assert.equal(r.headers.authorization, TOKEN, `${name}: ${r.method} ${r.path}`)
  }
  assert.ok(
    legacy!.requests.some((r) => r.method === 'POST' && r.path === '/sse' && r.status === 405),
    'without type, Streamable HTTP was tried first',
  )
  assert.ok(
    !forced!.requests.some((r) => r.method === 'POST' && r.path === '/sse'),
    'with type sse, Streamable HTTP was not tried',
  )

  const strictStatus = await waitForStatus(s.platform, 'strict', (st) => st.state === 'failed', 'fails')
  assert.equal(strictStatus.transport, 'http')
  assert.match(strictStatus.error, /405/)
  assert.ok(
    !strict!.requests.some((r) => r.method === 'GET' && r.path === '/sse'),
    'with type http, the legacy transport was not tried',
  )

  // Over the legacy transport too, a resource is read (from a template).
  const read = await s.client.ask('read_resource', { server: 'legacy', uri: 'remote://items/9' })
  assert.deepEqual(read.result?.contents, [
    { uri: 'remote://items/9', mimeType: 'text/plain', text: 'item 9' },
  ])
})

test('legacy transport: a restarted server breaks the event stream; it is reconnected', async (t) => {
  const [remote] = await remotes(t, { mode: 'sse', requireHeader: AUTH })
  const s = await setup(t, { remote: { url: remote!.url, headers: HEADERS } }, { patch: patience })
  const first = await toolTurn(s, { name: 'remote__whoami', arguments: {} })
  assertResult(s, first.result, 'remote #1')
  const sessions = remote!.sessions()

  await remote!.restart()
  const status = await waitForStatus(
    s.platform,
    'remote',
    (st) => st.state === 'ready' && remote!.sessions() > sessions,
    'reconnects over the legacy transport',
  )
  assert.equal(status.transport, 'sse')
  const again = await toolTurn(s, { name: 'remote__whoami', arguments: {} })
  assertResult(s, again.result, 'remote #2')
  assert.equal(remote!.liveSessions(), 1, 'one stream open on the restarted server')
})

test('header secrets from env: never show in logs, /ready or frames, even when a server echoes them', async (t) => {
  const [good, bad] = await remotes(
    t,
    { mode: 'http', requireHeader: AUTH, name: 'good' },
    { mode: 'http', requireHeader: AUTH, name: 'bad' },
  )
  const s = await setup(
    t,
    {
      good: { url: good!.url, headers: HEADERS },
      bad: { url: bad!.url, headers: { Authorization: 'env:WRONG_TOKEN' } },
    },
    { env: { WRONG_TOKEN: WRONG, LOG_LEVEL: 'trace' } },
  )

  const badStatus = await waitForStatus(s.platform, 'bad', (st) => st.state === 'failed', 'fails on its 401')
  assert.match(badStatus.error, /401|unauthori[sz]ed/i, 'the reason says the credentials were refused')
  assert.ok(
    bad!.requests.some((r) => r.headers.authorization === WRONG && r.status === 401),
    'the wrong token was sent, and the 401 body echoed it',
  )
  assert.equal((await serverStatus(s.platform, 'good')).state, 'ready')

  const turn = await toolTurn(s, { name: 'good__add', arguments: { a: 5, b: 6 } })
  assertResult(s, turn.result, '11')
  const unavailable = await toolTurn(s, { name: 'bad__add', arguments: { a: 5, b: 6 } })
  assert.equal(unavailable.result.is_error, true)
  await s.client.ask('list_tools')
  await s.client.ask('list_prompts')
  await s.client.ask('list_resources')
  const refused = await s.client.ask('read_resource', { server: 'bad', uri: 'remote://info' })
  assert.equal(refused.status, 'error', JSON.stringify(refused))
  const prompt = await s.client.ask('get_prompt', { server: 'bad', name: 'hello', arguments: { name: 'x' } })
  assert.equal(prompt.status, 'error', JSON.stringify(prompt))

  const ready = await readyBody(s.platform)
  await s.platform.app.close()
  const places = {
    '/ready': ready.text,
    frames: JSON.stringify(s.client.frames),
    logs: s.platform.logs.text,
    'LLM requests': JSON.stringify(s.llm.requests.map((r) => r.body)),
  }
  assert.ok(s.platform.logs.lines().length > 0, 'there are logs to look at')
  for (const [where, text] of Object.entries(places)) {
    for (const secret of [TOKEN, WRONG, TOKEN.slice('Bearer '.length), WRONG.slice('Bearer '.length)]) {
      assert.ok(!text.includes(secret), `${secret} appears in ${where}`)
    }
  }
})
