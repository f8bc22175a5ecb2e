// Stdio servers that take long to start, as `npx -y` does the first time while it installs its
// package (test/fixtures/late-server.ts waits, then serves). With the shipped connection_timeout a
// server that needs 40 s comes up, spawned once, and /ready says `starting` meanwhile; one whose
// process runs but never answers is still ended and reported, after its start budget; one that dies
// while starting is reported with its own exit and stderr. The first test takes about 40 s.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import type { StdioServerConfig } from '../src/config/types.js'
import { McpRegistry } from '../src/mcp/registry.js'
import { START_BUDGET_FACTOR } from '../src/mcp/server-connection.js'
import type { ServerStatus } from '../src/mcp/types.js'
import { startPlatform } from './helpers/platform.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LATE_SERVER = fileURLToPath(new URL('./fixtures/late-server.js', import.meta.url))
/** The fixture's wait before it serves: longer than the shipped connection_timeout. */
const LATE_MS = 40_000

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function spawnedPids(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.split('\n').filter(Boolean).map(Number)
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'mcp-platform-cold-'))
}

test(
  'a stdio server that needs 40 s comes up with the shipped connection_timeout, spawned once; /ready says starting',
  { timeout: 90_000 },
  async () => {
    const shipped = parse(await readFile(join(ROOT, 'config.yaml'), 'utf8')) as {
      mcp: { connection: { connection_timeout: number } }
    }
    assert.ok(
      shipped.mcp.connection.connection_timeout * 1000 < LATE_MS,
      'the server is slower than the timeout',
    )
    const dir = await tempDir()
    const spawns = join(dir, 'spawns.log')
    // Before the platform starts, so no time measured from here is shorter than the server's.
    const started = Date.now()
    const platform = await startPlatform({
      baseUrl: 'http://127.0.0.1:9/v1',
      patch: (config) => void (config.mcp.connection = shipped.mcp.connection),
      servers: {
        late: {
          command: process.execPath,
          args: [LATE_SERVER],
          env: { LATE_SERVER_SPAWN_LOG: spawns, LATE_SERVER_DELAY_MS: String(LATE_MS) },
        },
      },
    })
    try {
      // What an orchestrator sees, every quarter second, until the server is ready.
      const seen: { state: string; code: number; pid?: number; at: number }[] = []
      for (;;) {
        const ready = await platform.app.inject('/ready')
        const server = (ready.json().checks.mcp.servers as ServerStatus[])[0]!
        seen.push({ state: server.state, code: ready.statusCode, pid: server.pid, at: Date.now() - started })
        if (server.state !== 'connecting' && server.state !== 'starting') break
        assert.ok(Date.now() - started < 80_000, 'ready in time')
        await sleep(250)
      }
      const last = seen.at(-1)!
      assert.equal(last.state, 'ready', JSON.stringify(seen.filter((s) => s.state !== 'connecting')))
      assert.equal(last.code, 200)
      const starting = seen.filter((s) => s.state === 'starting')
      assert.ok(starting.length > 0, '/ready said starting')
      assert.ok(
        starting.every((s) => s.code === 503),
        'not ready while a server starts',
      )
      const firstStarting = starting[0]!.at
      const timeout = shipped.mcp.connection.connection_timeout * 1000
      assert.ok(firstStarting >= timeout, `starting only after connection_timeout: at ${firstStarting} ms`)
      assert.ok(last.at >= LATE_MS, `ready once the server serves: at ${last.at} ms`)

      // Spawned once: the process /ready showed while it was starting is the one that serves.
      const pids = await spawnedPids(spawns)
      assert.equal(pids.length, 1, `spawned ${pids.length} times`)
      assert.ok(starting.every((s) => s.pid === pids[0]))
      assert.equal(last.pid, pids[0])

      const states = platform.logs
        .lines()
        .filter((l) => l.msg === 'mcp server state changed' && l.server === 'late')
        .map((l) => l.state as string)
      assert.deepEqual(states, ['connecting', 'starting', 'ready'])
      const outcome = await platform.app.mcp.call('late__hello', '{}', {
        signal: new AbortController().signal,
      })
      assert.deepEqual(outcome, { content: 'hello, at last', is_error: false })
    } finally {
      await platform.close()
      await rm(dir, { recursive: true, force: true })
    }
  },
)

function openRegistry(server: StdioServerConfig, connectionTimeout: number, reconnects: number) {
  const states: { state: string; error?: string }[] = []
  const record = (obj: object, msg: string) => {
    const line = obj as { state?: string; error?: { message: string } }
    if (msg === 'mcp server state changed') states.push({ state: line.state!, error: line.error?.message })
  }
  const registry = new McpRegistry({
    servers: { [server.name]: server },
    connection: {
      max_reconnect_attempts: reconnects,
      connection_timeout: connectionTimeout,
      initial_reconnect_delay: 0.05,
    },
    toolTimeout: 5,
    env: process.env,
    secrets: [],
    log: { debug: () => undefined, info: record, warn: record, error: record },
  })
  registry.start()
  return { registry, states }
}

async function until(what: string, probe: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

test('a process that runs but never answers is ended and reported after its start budget', async () => {
  const dir = await tempDir()
  const spawns = join(dir, 'spawns.log')
  const timeout = 0.2
  const { registry, states } = openRegistry(
    {
      name: 'hung',
      transport: 'stdio',
      command: process.execPath,
      args: [LATE_SERVER],
      env: { LATE_SERVER_SPAWN_LOG: spawns, LATE_SERVER_DELAY_MS: '600000' },
    },
    timeout,
    1,
  )
  try {
    const started = Date.now()
    await until('the first attempt ended', () => registry.settled(), 10_000)
    const took = Date.now() - started
    const budget = timeout * START_BUDGET_FACTOR
    assert.ok(
      took >= budget * 1000 - 50 && took < budget * 1000 + 2000,
      `first attempt ended after ${took} ms`,
    )
    assert.deepEqual(states.slice(0, 3), [
      { state: 'connecting', error: undefined },
      { state: 'starting', error: undefined },
      {
        state: 'failed',
        error: `did not become ready within ${budget} s (${START_BUDGET_FACTOR} × connection_timeout): its process ran but never answered`,
      },
    ])
    // The one reconnect allowed is made, and ends the same way: each process is ended.
    await until('gave up', () => registry.status()[0]!.error?.includes('gave up') === true, 10_000)
    const pids = await spawnedPids(spawns)
    assert.equal(pids.length, 2)
    await until('both processes ended', () => pids.every((pid) => !alive(pid)), 5000)
    assert.deepEqual(
      states.map((s) => s.state),
      ['connecting', 'starting', 'failed', 'connecting', 'starting', 'failed'],
    )
  } finally {
    await registry.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a process that dies while starting is reported with its own exit and stderr, not a timeout', async () => {
  const { registry, states } = openRegistry(
    {
      name: 'broken',
      transport: 'stdio',
      command: 'sh',
      args: ['-c', 'sleep 0.6; echo "npm error 404 Not Found - @scope/server" >&2; exit 1'],
      env: {},
    },
    0.2,
    0,
  )
  try {
    await until('the first attempt ended', () => registry.settled(), 5000)
    assert.deepEqual(states, [
      { state: 'connecting', error: undefined },
      { state: 'starting', error: undefined },
      {
        state: 'failed',
        error: 'the server process exited with code 1: npm error 404 Not Found - @scope/server',
      },
    ])
    assert.equal(registry.status()[0]!.pid, undefined)
  } finally {
    await registry.close()
  }
})
