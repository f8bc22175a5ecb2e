// `mcp-platform tools` as a separate process: on the shipped files it prints the demo server's
// tools and exits 0; a server that cannot start is reported with its real reason, at once (its
// first attempt, not after every reconnect), and the exit is 69; a configuration error is 78;
// Ctrl-C while a server starts ends that server too. And the report's wording of tool notes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { toolsReport } from '../src/mcp/report.js'
import { baseConfig, DEMO_SERVER_PATH, writeConfigFiles } from './helpers/platform.js'
import { SERVER } from './helpers/process.js'

const SCHEMA_SERVER_PATH = fileURLToPath(new URL('./fixtures/schema-server.js', import.meta.url))

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LATE_SERVER = fileURLToPath(new URL('./fixtures/late-server.js', import.meta.url))

interface Run {
  stdout: string
  stderr: string
  pid: number
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  kill(signal: NodeJS.Signals): void
}

function run(args: string[], env: Record<string, string> = {}, cwd?: string): Run {
  const child = spawn(process.execPath, [SERVER, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    cwd,
  })
  const result: Run = {
    stdout: '',
    stderr: '',
    pid: child.pid!,
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    kill: (signal) => child.kill(signal),
  }
  child.stdout.setEncoding('utf8').on('data', (d: string) => (result.stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (result.stderr += d))
  // A command that hangs is ended, so it cannot keep the run alive.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  void result.exited.then(() => clearTimeout(timer))
  return result
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** mcp.connection as the shipped config.yaml sets it: five reconnects, 30 s to connect. */
async function shippedConnection(): Promise<Record<string, number>> {
  const shipped = parse(await readFile(join(ROOT, 'config.yaml'), 'utf8')) as {
    mcp: { connection: Record<string, number> }
  }
  return shipped.mcp.connection
}

test('tools on the shipped config.yaml and servers_config.json: the demo server and its tools, exit 0', async () => {
  // No GROQ_API_KEY: the command never calls the LLM, so it does not ask for its key (start would).
  const r = run(['tools'], {}, ROOT)
  assert.deepEqual(await r.exited, { code: 0, signal: null }, r.stderr)
  const lines = r.stdout.split('\n')
  assert.equal(lines[0], 'demo (stdio): ready, 5 tools, 2 prompts, 3 resources')
  for (const tool of ['add', 'echo', 'slow', 'fail', 'unlock']) {
    assert.ok(lines.includes(`  demo__${tool}`), `demo__${tool} listed:\n${r.stdout}`)
  }
  // Its description and input schema, as the LLM is given them.
  const add = lines.indexOf('  demo__add')
  assert.equal(lines[add + 1], '    Add two numbers.')
  assert.match(r.stdout, /"a": \{"type": "number", "description": "first addend"\}/)
  assert.match(r.stdout, /"required": \["a", "b"\]/)
  assert.equal(lines.at(-2), '1 server: 1 ready')
  assert.equal(r.stderr, '', 'no log lines unless LOG_LEVEL asks')
})

test('tools: a server that cannot start is reported with its real reason after its first attempt, exit 69', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-tools-'))
  try {
    const config = baseConfig('http://127.0.0.1:9/v1')
    // Reconnects would take 1 + 2 + 4 + 8 + 16 s: the command does not wait for them.
    config.mcp.connection = await shippedConnection()
    const { configPath, serversPath } = await writeConfigFiles(dir, config, {
      mcpServers: {
        // Ready only after the others have failed: the report still says why they failed (a retry
        // would have hidden it).
        demo: { command: 'sh', args: ['-c', `sleep 2.5; exec "${process.execPath}" "${DEMO_SERVER_PATH}"`] },
        // A name as Cline writes it: shown with its namespace.
        'github.com/acme/missing': { command: 'no-such-mcp-server-command', args: [] },
        // A union tool adapted for the provider, invalid tools left out.
        schemas: { command: process.execPath, args: [SCHEMA_SERVER_PATH] },
        // What `npx -y` says for a package that does not exist.
        npx: {
          command: 'sh',
          args: ['-c', 'sleep 1.5; echo "npm error 404 Not Found - @scope/no-such-server" >&2; exit 1'],
        },
      },
    })
    const started = Date.now()
    const r = run(['tools', '--config', configPath, '--servers', serversPath])
    assert.deepEqual(await r.exited, { code: 69, signal: null }, r.stderr)
    const took = Date.now() - started
    assert.ok(took < 10_000, `exited after ${took} ms`)
    const lines = r.stdout.split('\n')
    assert.ok(lines.includes('demo (stdio): ready, 5 tools, 2 prompts, 3 resources'), r.stdout)
    assert.ok(
      lines.includes(
        'github_com_acme_missing ("github.com/acme/missing", stdio): failed — cannot start "no-such-mcp-server-command": command not found',
      ),
      r.stdout,
    )
    assert.ok(
      lines.includes(
        'npx (stdio): failed — the server process exited with code 1: npm error 404 Not Found - @scope/no-such-server',
      ),
      r.stdout,
    )
    assert.ok(lines.includes('schemas (stdio): ready, 3 tools, 0 prompts, 0 resources'), r.stdout)
    assert.ok(lines.includes('  schemas__find'), r.stdout)
    assert.ok(
      lines.some((l) => l.startsWith('  adapted: find: top-level anyOf (2 alternatives) merged')),
      r.stdout,
    )
    assert.ok(
      lines.includes('  left out: not_object: its input schema is not an object schema (type "array")'),
      r.stdout,
    )
    assert.equal(lines.at(-2), '4 servers: 2 ready, 2 failed')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('tools: a configuration error exits 78 and connects nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-tools-'))
  try {
    const spawns = join(dir, 'spawns.log')
    const { configPath, serversPath } = await writeConfigFiles(dir, baseConfig('http://127.0.0.1:9/v1'), {
      mcpServers: {
        late: { command: process.execPath, args: [LATE_SERVER], env: { LATE_SERVER_SPAWN_LOG: spawns } },
        typo: { command: 'node', argz: ['x.js'] },
      },
    })
    const r = run(['tools', '--config', configPath, '--servers', serversPath])
    assert.deepEqual(await r.exited, { code: 78, signal: null })
    assert.match(r.stderr, /^mcp-platform: invalid configuration\nmcpServers\.typo\.argz: /)
    assert.equal(r.stdout, '')
    assert.equal(await readFile(spawns, 'utf8').catch(() => 'never spawned'), 'never spawned')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('tools: Ctrl-C while a server is starting ends that server too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-tools-'))
  try {
    const spawns = join(dir, 'spawns.log')
    const config = baseConfig('http://127.0.0.1:9/v1')
    const { configPath, serversPath } = await writeConfigFiles(dir, config, {
      mcpServers: {
        late: {
          command: process.execPath,
          args: [LATE_SERVER],
          env: { LATE_SERVER_SPAWN_LOG: spawns, LATE_SERVER_DELAY_MS: '600000' },
        },
      },
    })
    const r = run(['tools', '--config', configPath, '--servers', serversPath])
    let pid: number | undefined
    for (let i = 0; i < 200 && pid === undefined; i++) {
      const text = await readFile(spawns, 'utf8').catch(() => '')
      if (text.endsWith('\n')) pid = Number(text.trim())
      else await sleep(25)
    }
    assert.ok(pid !== undefined && alive(pid), 'the server runs')
    r.kill('SIGINT')
    assert.deepEqual(await r.exited, { code: 1, signal: null })
    assert.equal(alive(pid), false, 'the server was ended with the command')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the report says which tools were adapted or left out, and why', () => {
  const text = toolsReport(
    [
      {
        name: 'files',
        transport: 'stdio',
        state: 'ready',
        tools: 1,
        prompts: 0,
        resources: 0,
        attempts: 0,
        tool_notes: [
          { tool: 'search', action: 'adapted', reason: 'top-level anyOf merged into one object' },
          { tool: 'broken', action: 'left_out', reason: 'its input schema is not valid JSON Schema' },
        ],
      },
      {
        name: 'slow',
        transport: 'stdio',
        state: 'starting',
        tools: 0,
        prompts: 0,
        resources: 0,
        attempts: 0,
      },
    ],
    [
      {
        name: 'files__search',
        server: 'files',
        tool: 'search',
        description: 'Search files.\nBy name or by content.',
        input_schema: { type: 'object', properties: { q: { type: 'string' } } },
      },
    ],
  )
  assert.equal(
    text,
    [
      'files (stdio): ready, 1 tool, 0 prompts, 0 resources',
      '  files__search',
      '    Search files.',
      '    By name or by content.',
      '    input: {"type": "object", "properties": {"q": {"type": "string"}}}',
      '  adapted: search: top-level anyOf merged into one object',
      '  left out: broken: its input schema is not valid JSON Schema',
      '',
      'slow (stdio): starting — not ready yet',
      '',
      '2 servers: 1 ready, 1 starting',
      '',
    ].join('\n'),
  )
})
