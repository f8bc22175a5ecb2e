// The MCP registry against real MCP servers over stdio: our demo server (dist/servers/demo.js)
// and the reference server-everything, started directly or through a shell.
import { createServer, type AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import mcpRegistryPlugin from '../plugins/mcp-registry.js'
import type { ServerConfig, StdioServerConfig } from '../src/config/types.js'
import { McpRegistry, type McpRegistryOptions } from '../src/mcp/registry.js'
import { childEnv } from '../src/mcp/stdio-transport.js'
import type {
  McpRegistryApi,
  ServerStatus,
  ToolCallOptions,
  ToolOutcome,
  ToolProgress,
} from '../src/mcp/types.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEMO = join(ROOT, 'dist/servers/demo.js')
const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js')
const NODE = process.execPath
const FAST = { max_reconnect_attempts: 3, connection_timeout: 10, initial_reconnect_delay: 0.05 }

interface LogLine {
  level: string
  obj: Record<string, unknown>
  msg: string
}

function stdio(
  name: string,
  command: string,
  args: string[],
  extra: Partial<StdioServerConfig> = {},
): StdioServerConfig {
  return { name, transport: 'stdio', command, args, env: {}, ...extra }
}

const demo = (name: string, extra: Partial<StdioServerConfig> = {}) => stdio(name, NODE, [DEMO], extra)
const shell = (name: string, script: string, extra: Partial<StdioServerConfig> = {}) =>
  stdio(name, 'sh', ['-c', script], extra)

function open(servers: ServerConfig[], options: Partial<McpRegistryOptions> = {}) {
  const lines: LogLine[] = []
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, obj: obj as Record<string, unknown>, msg })
  }
  const registry = new McpRegistry({
    servers: Object.fromEntries(servers.map((s) => [s.name, s])),
    connection: FAST,
    toolTimeout: 10,
    env: process.env,
    secrets: [],
    log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    ...options,
  })
  registry.start()
  return { registry, lines }
}

async function until<T>(what: string, probe: () => T | undefined | false, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

function statusOf(registry: McpRegistryApi, name: string): ServerStatus {
  const status = registry.status().find((s) => s.name === name)
  assert.ok(status, `server ${name} has a status`)
  return status
}

const allReady = (registry: McpRegistryApi) =>
  until('every stdio server ready', () =>
    registry.status().every((s) => s.transport !== 'stdio' || s.state === 'ready'),
  )

function call(
  registry: McpRegistryApi,
  name: string,
  args: unknown,
  options: Partial<ToolCallOptions> = {},
): Promise<ToolOutcome> {
  const text = typeof args === 'string' ? args : JSON.stringify(args)
  return registry.call(name, text, { signal: new AbortController().signal, ...options })
}

/** A port nothing listens on: one the system just gave out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Every process in the group `pgid`. */
function groupPids(pgid: number): number[] {
  return execFileSync('ps', ['-e', '-o', 'pid=,pgid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter(([, group]) => group === pgid)
    .map(([pid]) => pid as number)
}

/** Alive and not a zombie (where nobody reaps orphans, dead ones linger as zombies). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))
  } catch {
    return false
  }
}

test('a child gets the parent environment minus secret values, plus its own env', () => {
  const parent = { PATH: '/bin', API_KEY: 'sk-secret', TOKEN: 'sk-secret', UNSET: undefined, SHARED: 'x' }
  assert.deepEqual(childEnv(parent, ['sk-secret'], { SHARED: 'own', OWN: 'y' }), {
    PATH: '/bin',
    SHARED: 'own',
    OWN: 'y',
  })
})

describe('a registry of demo, server-everything and a remote server', () => {
  const SECRET = 'not-for-children-1234'
  let registry: McpRegistryApi
  let lines: LogLine[]

  before(async () => {
    const port = await closedPort()
    ;({ registry, lines } = open(
      [
        demo('demo'),
        demo('denied', { tools: { deny: ['fail', 'slow'] } }),
        stdio('everything', NODE, [EVERYTHING, 'stdio'], {
          env: { SERVER_OWN: 'own-value' },
          tools: {
            allow: [
              'echo',
              'get-sum',
              'get-env',
              'get-tiny-image',
              'get-resource-reference',
              'get-resource-links',
              'get-structured-content',
              'trigger-long-running-operation',
              'simulate-research-query',
            ],
          },
        }),
        {
          name: 'remote',
          transport: 'http',
          explicit: false,
          url: `http://127.0.0.1:${port}/mcp`,
          headers: {},
        },
      ],
      {
        env: { ...process.env, TEST_SECRET_VAR: SECRET, TEST_PLAIN_VAR: 'visible' },
        secrets: [SECRET],
      },
    ))
    await allReady(registry)
  })
  after(() => registry.close())

  test('tools are listed as SERVER__TOOL with their schemas and annotations; allow and deny apply', () => {
    const tools = registry.list()
    const names = (server: string) => tools.filter((t) => t.server === server).map((t) => t.name)
    assert.deepEqual(names('demo'), ['demo__add', 'demo__echo', 'demo__slow', 'demo__fail', 'demo__unlock'])
    assert.deepEqual(names('denied'), ['denied__add', 'denied__echo', 'denied__unlock'])
    // simulate-research-query is allowed but only runs as a task, which this client cannot do.
    assert.deepEqual(names('everything'), [
      'everything__echo',
      'everything__get-env',
      'everything__get-resource-links',
      'everything__get-resource-reference',
      'everything__get-structured-content',
      'everything__get-sum',
      'everything__get-tiny-image',
      'everything__trigger-long-running-operation',
    ])
    const add = tools.find((t) => t.name === 'demo__add')
    assert.ok(add)
    assert.equal(add.server, 'demo')
    assert.equal(add.tool, 'add')
    assert.equal(add.description, 'Add two numbers.')
    assert.equal(add.input_schema.type, 'object')
    assert.deepEqual(add.input_schema.required, ['a', 'b'])
    assert.deepEqual((add.input_schema.properties as Record<string, unknown>).a, {
      type: 'number',
      description: 'first addend',
    })
    assert.deepEqual(add.annotations, { readOnlyHint: true })
    const sum = tools.find((t) => t.name === 'everything__get-sum')
    assert.equal(sum?.annotations?.idempotentHint, true)
  })

  test('each server reports its state; an unreachable remote server is failed with the reason, not a crash', async () => {
    assert.equal(registry.settled(), true)
    const demoStatus = statusOf(registry, 'demo')
    assert.equal(demoStatus.state, 'ready')
    assert.equal(demoStatus.transport, 'stdio')
    assert.equal(demoStatus.tools, 5)
    assert.equal(demoStatus.prompts, 2)
    assert.equal(demoStatus.resources, 3)
    assert.equal(demoStatus.attempts, 0)
    assert.equal(typeof demoStatus.pid, 'number')
    assert.equal(statusOf(registry, 'denied').tools, 3)
    const remote = await until('the remote server to give up', () => {
      const status = statusOf(registry, 'remote')
      return status.error?.includes('gave up') === true && status
    })
    assert.equal(remote.transport, 'http')
    assert.equal(remote.state, 'failed')
    assert.match(remote.error ?? '', /fetch failed \(ECONNREFUSED\) \(gave up after 3 reconnect attempts\)/)
    assert.deepEqual([remote.tools, remote.prompts, remote.resources], [0, 0, 0])
    assert.ok(remote.attempts >= 1)
    const remoteLine = lines.find((l) => l.obj.server === 'remote' && l.obj.state === 'failed')
    assert.equal(remoteLine?.level, 'warn')
    assert.equal((remoteLine?.obj.error as { type: string }).type, 'MCP_CONNECT_FAILED')
    const readyLine = lines.find((l) => l.obj.server === 'demo' && l.obj.state === 'ready')
    assert.equal(readyLine?.obj.tools, 5)
  })

  test('a call returns the text result (structured content not repeated)', async () => {
    assert.deepEqual(await call(registry, 'demo__add', { a: 2, b: 3 }), { content: '5', is_error: false })
    assert.deepEqual(await call(registry, 'everything__echo', { message: 'hi' }), {
      content: 'Echo: hi',
      is_error: false,
    })
  })

  test('two calls run concurrently', async () => {
    const started = Date.now()
    const [first, second, echo] = await Promise.all([
      call(registry, 'demo__slow', { seconds: 0.4, steps: 1 }),
      call(registry, 'demo__slow', { seconds: 0.4, steps: 1 }),
      call(registry, 'demo__echo', { text: 'meanwhile' }),
    ])
    assert.equal(first.content, 'done after 0.4 s')
    assert.equal(second.content, 'done after 0.4 s')
    assert.equal(echo.content, 'meanwhile')
    assert.ok(
      Date.now() - started < 750,
      `took ${Date.now() - started} ms: the calls ran one after the other`,
    )
  })

  test('invalid arguments come back as field errors, without calling the server', async () => {
    const outcome = await call(registry, 'demo__add', { a: 'two', c: 1 })
    assert.equal(outcome.is_error, true)
    assert.equal(outcome.content, 'Invalid arguments for demo__add:\n/b: is required\n/a: must be number')
    const slow = await call(registry, 'demo__slow', { seconds: 1000 })
    assert.equal(slow.is_error, true)
    assert.match(slow.content, /^\/seconds: must be <= 600$/m)
  })

  test('arguments that are not a JSON object, and unknown tools, are tool errors', async () => {
    const broken = await call(registry, 'demo__add', '{"a": 1,')
    assert.equal(broken.is_error, true)
    assert.match(broken.content, /^The arguments are not valid JSON: /)
    assert.deepEqual(await call(registry, 'demo__add', '[1, 2]'), {
      content: 'The arguments must be a JSON object.',
      is_error: true,
    })
    assert.deepEqual(await call(registry, 'demo__nope', {}), {
      content: 'Unknown tool "demo__nope".',
      is_error: true,
    })
    const noArguments = await call(registry, 'everything__get-tiny-image', '')
    assert.equal(noArguments.is_error, false, 'no arguments at all count as {}')
  })

  test('an isError result is a tool error with its text', async () => {
    assert.deepEqual(await call(registry, 'demo__fail', { reason: 'boom' }), {
      content: 'failed: boom',
      is_error: true,
    })
  })

  test('images, resources, links and structured content are turned into text', async () => {
    const image = await call(registry, 'everything__get-tiny-image', {})
    assert.match(
      image.content,
      /^Here's the image you requested:\n\[image: image\/png, \d+ bytes\]\nThe image above/,
    )
    const blob = await call(registry, 'everything__get-resource-reference', {
      resourceType: 'Blob',
      resourceId: 2,
    })
    assert.match(
      blob.content,
      /\[resource: \S+\/blob\/2 \(text\/plain\), \d+ bytes of binary data, not shown\]/,
    )
    const text = await call(registry, 'everything__get-resource-reference', {
      resourceType: 'Text',
      resourceId: 1,
    })
    assert.match(
      text.content,
      /\[resource: \S+\/text\/1 \(text\/plain\)\]\nResource 1: This is a plaintext resource/,
    )
    const links = await call(registry, 'everything__get-resource-links', { count: 2 })
    assert.equal(links.content.match(/\[resource link: \S+/g)?.length, 2)
    const weather = await call(registry, 'everything__get-structured-content', { location: 'Chicago' })
    assert.deepEqual(JSON.parse(weather.content), {
      temperature: 36,
      conditions: 'Light rain / drizzle',
      humidity: 82,
    })
  })

  test("a child's environment has no secret and has its own variables", async () => {
    const env = JSON.parse((await call(registry, 'everything__get-env', {})).content) as Record<
      string,
      string
    >
    assert.equal(env.TEST_PLAIN_VAR, 'visible')
    assert.equal(env.SERVER_OWN, 'own-value')
    assert.equal(env.TEST_SECRET_VAR, undefined)
    assert.ok(!Object.values(env).includes(SECRET))
  })

  test('progress is forwarded', async () => {
    const progress: ToolProgress[] = []
    const outcome = await call(
      registry,
      'demo__slow',
      { seconds: 0.2, steps: 4 },
      { onProgress: (p) => progress.push(p) },
    )
    assert.equal(outcome.content, 'done after 0.2 s')
    assert.deepEqual(
      progress.map((p) => p.progress),
      [1, 2, 3, 4],
    )
    assert.deepEqual(progress[0], { progress: 1, total: 4, message: 'step 1 of 4' })
    const fromEverything: ToolProgress[] = []
    await call(
      registry,
      'everything__trigger-long-running-operation',
      { duration: 0.2, steps: 2 },
      { onProgress: (p) => fromEverything.push(p) },
    )
    assert.deepEqual(fromEverything, [
      { progress: 1, total: 2 },
      { progress: 2, total: 2 },
    ])
  })

  test("the turn's signal cancels the call and its reason is thrown", async () => {
    const controller = new AbortController()
    const reason = new Error('turn cancelled')
    const started = Date.now()
    const pending = call(registry, 'demo__slow', { seconds: 5 }, { signal: controller.signal })
    setTimeout(() => controller.abort(reason), 100)
    await assert.rejects(pending, (err) => err === reason)
    assert.ok(Date.now() - started < 1000, 'the call ended when the signal fired')
    await assert.rejects(
      call(registry, 'demo__echo', { text: 'x' }, { signal: AbortSignal.abort(reason) }),
      (err) => err === reason,
    )
    assert.equal((await call(registry, 'demo__echo', { text: 'still here' })).content, 'still here')
  })

  test('notifications/tools/list_changed refreshes the tools of that server', async () => {
    assert.ok(!registry.list().some((t) => t.name === 'demo__multiply'))
    await call(registry, 'demo__unlock', {})
    await until('demo__multiply listed', () => registry.list().some((t) => t.name === 'demo__multiply'))
    assert.equal(statusOf(registry, 'demo').tools, 6)
    assert.deepEqual(await call(registry, 'demo__multiply', { a: 6, b: 7 }), {
      content: '42',
      is_error: false,
    })
    assert.ok(
      lines.some(
        (l) =>
          l.obj.server === 'demo' &&
          l.msg === 'mcp server list refreshed' &&
          l.obj.list === 'tools' &&
          l.obj.tools === 6,
      ),
    )
    assert.ok(!registry.list().some((t) => t.name === 'denied__multiply'), 'only the server that changed')
  })
})

// A server of our own on the SDK's low-level Server: its tools/list answers two tools a page.
const PAGED_SERVER = `
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js'
const server = new Server({ name: 'paged', version: '1.0.0' }, { capabilities: { tools: { listChanged: true } } })
let count = 5
server.setRequestHandler(ListToolsRequestSchema, (request) => {
  const start = Number(request.params?.cursor ?? 0)
  const end = Math.min(start + 2, count)
  const tools = []
  for (let i = start; i < end; i++) tools.push({ name: 'tool' + i, inputSchema: { type: 'object' } })
  return end < count ? { tools, nextCursor: String(end) } : { tools }
})
server.setRequestHandler(CallToolRequestSchema, async (request) => {
  if (request.params.name === 'tool0') {
    count = 7
    await server.sendToolListChanged()
  }
  return { content: [{ type: 'text', text: 'called ' + request.params.name }] }
})
await server.connect(new StdioServerTransport())
`

test('tools/list is followed page by page to the end, at start and after list_changed', async () => {
  const { registry } = open([
    stdio('paged', NODE, ['--input-type=module', '-e', PAGED_SERVER], { cwd: ROOT }),
  ])
  try {
    await allReady(registry)
    const names = () => registry.list().map((t) => t.name)
    assert.deepEqual(names(), [
      'paged__tool0',
      'paged__tool1',
      'paged__tool2',
      'paged__tool3',
      'paged__tool4',
    ])
    assert.deepEqual(await call(registry, 'paged__tool4', {}), { content: 'called tool4', is_error: false })
    await call(registry, 'paged__tool0', {})
    await until('seven tools', () => names().length === 7)
    assert.deepEqual(names().slice(5), ['paged__tool5', 'paged__tool6'])
  } finally {
    await registry.close()
  }
})

test('a call that times out returns at once, the server is told (notifications/cancelled) and stays usable', async () => {
  // The loop copies what the server receives to stderr, which the registry logs at debug.
  const copy = `while IFS= read -r line; do printf '%s\\n' "$line"; printf '%s\\n' "$line" >&2; done`
  const { registry, lines } = open([shell('teed', `${copy} | "${NODE}" "${DEMO}"`, { tool_timeout: 0.3 })])
  try {
    await allReady(registry)
    const started = Date.now()
    const outcome = await call(registry, 'teed__slow', { seconds: 5 })
    const elapsed = Date.now() - started
    assert.deepEqual(outcome, { content: 'The tool call timed out after 0.3 s.', is_error: true })
    assert.ok(elapsed >= 250 && elapsed < 1500, `took ${elapsed} ms`)
    const received = () =>
      lines
        .filter((l) => l.obj.server === 'teed' && typeof l.obj.stderr === 'string')
        .map(
          (l) =>
            JSON.parse(l.obj.stderr as string) as {
              id?: number
              method?: string
              params?: Record<string, unknown>
            },
        )
    const slowCall = received().find((m) => m.method === 'tools/call' && m.params?.name === 'slow')
    assert.ok(slowCall, 'the call reached the server')
    const cancel = await until('notifications/cancelled at the server', () =>
      received().find((m) => m.method === 'notifications/cancelled'),
    )
    assert.equal(cancel.params?.requestId, slowCall.id)
    assert.equal((await call(registry, 'teed__echo', { text: 'after' })).content, 'after')
  } finally {
    await registry.close()
  }
})

test('a server killed during a call: the call fails promptly, the server is reconnected', async () => {
  const { registry, lines } = open([demo('demo')], { connection: { ...FAST, initial_reconnect_delay: 0.3 } })
  try {
    await allReady(registry)
    const pid = statusOf(registry, 'demo').pid as number
    const started = Date.now()
    const pending = call(registry, 'demo__slow', { seconds: 10 })
    await sleep(150)
    process.kill(pid, 'SIGKILL')
    const outcome = await pending
    assert.equal(outcome.is_error, true)
    assert.match(
      outcome.content,
      /^The server "demo" went away during the call \(the server process was killed by SIGKILL\)/,
    )
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`)

    // Down: a call fails at once instead of waiting.
    const downStarted = Date.now()
    const down = await call(registry, 'demo__echo', { text: 'x' })
    assert.equal(down.is_error, true)
    assert.match(down.content, /^The server "demo" is not available right now \(failed: /)
    assert.ok(Date.now() - downStarted < 100)
    assert.ok(
      registry.list().every((t) => t.server !== 'demo'),
      'no tools listed while it is down',
    )

    await until('demo back', () => statusOf(registry, 'demo').state === 'ready')
    assert.notEqual(statusOf(registry, 'demo').pid, pid)
    assert.equal(statusOf(registry, 'demo').attempts, 0)
    assert.equal((await call(registry, 'demo__echo', { text: 'back' })).content, 'back')
    const lost = lines.find((l) => l.level === 'warn' && l.obj.server === 'demo')
    assert.deepEqual(lost?.obj.error, {
      type: 'MCP_SERVER_LOST',
      message: 'the server process was killed by SIGKILL',
    })
    assert.equal(lost?.obj.retry_in_ms, 300)
  } finally {
    await registry.close()
  }
})

test('a server whose command does not exist: start() returns at once, retries stop after max_reconnect_attempts', async () => {
  const started = Date.now()
  const { registry, lines } = open([stdio('ghost', 'no-such-command-for-mcp-tests', [])], {
    connection: { ...FAST, max_reconnect_attempts: 2 },
  })
  try {
    assert.ok(Date.now() - started < 100, 'start() does not wait for the connection')
    assert.equal(registry.settled(), false)
    await until('first attempt', () => registry.settled())
    assert.equal(statusOf(registry, 'ghost').state, 'failed')
    assert.match(
      statusOf(registry, 'ghost').error ?? '',
      /cannot start "no-such-command-for-mcp-tests": command not found/,
    )
    // One first attempt and two reconnects (after 50 and 100 ms).
    await until('three attempts', () => statusOf(registry, 'ghost').attempts === 3)
    await sleep(500)
    const status = statusOf(registry, 'ghost')
    assert.equal(status.attempts, 3, 'no attempt after the last reconnect')
    assert.equal(status.state, 'failed')
    assert.match(status.error ?? '', /command not found \(gave up after 2 reconnect attempts\)$/)
    const failures = lines.filter((l) => l.obj.server === 'ghost' && l.obj.state === 'failed')
    assert.equal(failures.length, 3)
    for (const l of failures) assert.equal((l.obj.error as { type: string }).type, 'MCP_CONNECT_FAILED')
    assert.equal(failures.at(-1)?.obj.gave_up, true)
    assert.deepEqual(await call(registry, 'ghost__anything', {}), {
      content: 'Unknown tool "ghost__anything".',
      is_error: true,
    })
  } finally {
    await registry.close()
  }
})

test('a server that cannot start says why: its exit status and stderr, or a missing working directory', async () => {
  const { registry } = open(
    [
      shell('broken', 'echo "starting" >&2; echo "boom: API key missing" >&2; exit 3'),
      demo('nowhere', { cwd: '/no/such/directory' }),
    ],
    { connection: { ...FAST, max_reconnect_attempts: 0 } },
  )
  try {
    await until('first attempts', () => registry.settled())
    assert.equal(
      statusOf(registry, 'broken').error,
      'the server process exited with code 3: starting | boom: API key missing',
    )
    assert.equal(
      statusOf(registry, 'nowhere').error,
      `cannot start "${NODE}": working directory not found: /no/such/directory`,
    )
  } finally {
    await registry.close()
  }
})

test('a server that never answers fails after its start budget and its process is ended', async () => {
  const { registry } = open([stdio('mute', 'sleep', ['1000'])], {
    connection: { ...FAST, connection_timeout: 0.2, max_reconnect_attempts: 0 },
  })
  try {
    const pid = await until('spawned', () => statusOf(registry, 'mute').pid)
    await until('first attempt', () => registry.settled())
    // Its process runs: it is `starting` past connection_timeout, up to 10 × connection_timeout.
    assert.equal(
      statusOf(registry, 'mute').error,
      'did not become ready within 2 s (10 × connection_timeout): its process ran but never answered',
    )
    await until('the process ended', () => !alive(pid))
  } finally {
    await registry.close()
  }
})

test('a server that dies on its own takes its grandchildren with it', async () => {
  const { registry } = open([shell('wrapped', `sleep 1000 & exec "${NODE}" "${DEMO}"`)], {
    connection: { ...FAST, max_reconnect_attempts: 0 },
  })
  try {
    await allReady(registry)
    const pid = statusOf(registry, 'wrapped').pid as number
    const group = groupPids(pid)
    assert.equal(group.length, 2, 'the server and the sleep it left behind')
    process.kill(pid, 'SIGKILL')
    await until('the whole group ended', () => group.every((p) => !alive(p)), 3000)
  } finally {
    await registry.close()
  }
})

test('close() ends every process group, in parallel, within the shutdown budget', async () => {
  // b and c ignore SIGTERM and outlive their server: only SIGKILL ends them.
  const stubborn = `trap "" TERM; "${NODE}" "${DEMO}"; sleep 1000`
  const { registry } = open([
    shell('a', `sleep 1000 & exec "${NODE}" "${DEMO}"`),
    shell('b', stubborn),
    shell('c', stubborn),
  ])
  await allReady(registry)
  const pids = registry.status().flatMap((s) => groupPids(s.pid as number))
  assert.equal(pids.length, 6)
  const started = Date.now()
  await registry.close()
  const elapsed = Date.now() - started
  assert.ok(elapsed < 3000, `took ${elapsed} ms`)
  assert.deepEqual(
    pids.filter((p) => alive(p)),
    [],
  )
  assert.ok(registry.status().every((s) => s.state === 'closed' && s.pid === undefined))
  const after = await call(registry, 'a__echo', { text: 'x' })
  assert.equal(after.is_error, true)
})

/** Counts the reads of the /proc directory (the scans for a process group's live members). */
function countProcScans(): { scans: () => number; restore: () => void } {
  const fsPromises = createRequire(import.meta.url)('node:fs/promises') as {
    readdir: (...args: unknown[]) => Promise<unknown>
  }
  const readdir = fsPromises.readdir
  let scans = 0
  fsPromises.readdir = (...args: unknown[]) => {
    if (args[0] === '/proc') scans += 1
    return readdir(...args)
  }
  // The ES module bindings of node:fs/promises (what the transport imports) follow the patch.
  syncBuiltinESMExports()
  return {
    scans: () => scans,
    restore: () => {
      fsPromises.readdir = readdir
      syncBuiltinESMExports()
    },
  }
}

test('closing servers whose groups linger reads /proc a few times in all, not every 25 ms per server', async () => {
  // Each server exits when its stdin closes, leaving a member of its group that ignores SIGTERM:
  // the group is watched through the grace period, then killed.
  const lingering = `(trap "" TERM; exec sleep 1000) & exec "${NODE}" "${DEMO}"`
  const { registry } = open([shell('a', lingering), shell('b', lingering), shell('c', lingering)])
  await allReady(registry)
  const pids = registry.status().flatMap((s) => groupPids(s.pid as number))
  assert.equal(pids.length, 6)
  const proc = countProcScans()
  try {
    const started = Date.now()
    await registry.close()
    const elapsed = Date.now() - started
    assert.ok(elapsed >= 1000 && elapsed < 3000, `took ${elapsed} ms: the SIGTERM grace, then SIGKILL`)
    assert.deepEqual(
      pids.filter((p) => alive(p)),
      [],
    )
    // Before, each server's group was scanned every 25 ms through the grace: over 100 scans.
    assert.ok(proc.scans() <= 20, `/proc was read ${proc.scans()} times`)
  } finally {
    proc.restore()
  }
})

test('the plugin decorates `mcp` and the app is ready without waiting for the servers', async () => {
  const app = Fastify({ logger: false })
  await app.register(mcpRegistryPlugin, {
    servers: { mute: stdio('mute', 'sleep', ['1000']), demo: demo('demo') },
    connection: FAST,
    toolTimeout: 10,
    env: process.env,
    secrets: [],
  })
  const started = Date.now()
  await app.ready()
  assert.ok(Date.now() - started < 1000)
  assert.equal(statusOf(app.mcp, 'mute').state, 'connecting')
  await until('demo ready', () => statusOf(app.mcp, 'demo').state === 'ready')
  assert.equal((await call(app.mcp, 'demo__echo', { text: 'via plugin' })).content, 'via plugin')
  const mutePid = statusOf(app.mcp, 'mute').pid as number
  await app.close()
  assert.equal(alive(mutePid), false)
  assert.ok(app.mcp.status().every((s) => s.state === 'closed'))
})
