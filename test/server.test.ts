// The real command line: `mcp-platform check-config` and `start`, as separate processes, with
// signals and exit codes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { openAiStream, startLlmServer } from './helpers/llm-server.js'
import { baseConfig, Client, DEMO_SERVER_PATH, textOf, writeConfigFiles } from './helpers/platform.js'
import { liveMembers, SERVER, startPlatformProcess } from './helpers/process.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function untilReady(url: string): Promise<any> {
  for (let i = 0; i < 200; i++) {
    const res = await fetch(url)
    if (res.ok) return res.json()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('never ready')
}

interface Run {
  child: ChildProcess
  stdout: string
  stderr: string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function run(args: string[], env: Record<string, string> = {}, cwd?: string): Run {
  const child = spawn(process.execPath, [SERVER, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    cwd,
  })
  const result: Run = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
  }
  child.stdout.setEncoding('utf8').on('data', (d: string) => (result.stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (result.stderr += d))
  return result
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'mcp-platform-cli-'))
}

test('check-config prints OK for a valid configuration', async () => {
  const dir = await tempDir()
  try {
    const { configPath, serversPath } = await writeConfigFiles(dir, baseConfig('http://127.0.0.1:9/v1'))
    const r = run(['check-config', '--config', configPath, '--servers', serversPath])
    assert.deepEqual(await r.exited, { code: 0, signal: null })
    assert.equal(r.stdout, 'OK\n')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('three mistakes: exit 78, all three named, no stack trace', async () => {
  const dir = await tempDir()
  try {
    const config = baseConfig('http://127.0.0.1:9/v1')
    config.llm.providers.local.temperature = 3 // out of range
    delete config.chat.service.max_tool_hops // missing
    config.websocket.prot = 8000 // unknown key
    const { configPath, serversPath } = await writeConfigFiles(dir, config)
    for (const args of [['check-config'], ['start']]) {
      const r = run([...args, '--config', configPath, '--servers', serversPath])
      assert.deepEqual(await r.exited, { code: 78, signal: null }, args[0])
      assert.match(r.stderr, /llm\.providers\.local\.temperature: .*2.*got 3/)
      assert.match(r.stderr, /chat\.service\.max_tool_hops: .*required/)
      assert.match(r.stderr, /websocket\.prot: .*unknown/)
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('an invalid LOG_LEVEL: exit 78 with its one problem line, no stack trace', async () => {
  const dir = await tempDir()
  try {
    const { configPath, serversPath } = await writeConfigFiles(dir, baseConfig('http://127.0.0.1:9/v1'))
    // `start` builds the logger before the configuration is checked: the level must not reach pino unchecked.
    for (const command of ['check-config', 'start']) {
      const r = run([command, '--config', configPath, '--servers', serversPath], { LOG_LEVEL: 'verbose' })
      assert.deepEqual(await r.exited, { code: 78, signal: null }, `${command}: ${r.stderr}`)
      assert.equal(
        r.stderr,
        'mcp-platform: invalid configuration\n' +
          "env.LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got 'verbose'\n",
        command,
      )
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('an unknown command or flag: usage and exit 64', async () => {
  const r = run(['launch'])
  assert.equal((await r.exited).code, 64)
  assert.match(r.stderr, /unknown command 'launch'[\s\S]*Usage: mcp-platform/)
})

test('start serves chat; SIGTERM mid-stream: 1001 for the client, the turn stored as interrupted, exit 0', async () => {
  const llm = await startLlmServer()
  const dir = await tempDir()
  try {
    // An MCP server started through a shell, so it has a grandchild: neither may outlive us.
    const shell = {
      command: 'sh',
      args: ['-c', `sleep 300 & exec "${process.execPath}" "${DEMO_SERVER_PATH}"`],
    }
    const r = await startPlatformProcess(dir, baseConfig(llm.baseUrl), { demo: shell })
    const { url } = r
    const ready = await untilReady(`${r.http}/ready`)
    const pid = ready.checks.mcp.servers[0].pid as number
    assert.ok(alive(pid))
    const client = await Client.connect(url)
    llm.reply({ body: openAiStream(['Hello', ', wor', 'ld']) })
    const frames = await client.chatAndWait('ok', { text: 'hi' })
    // The three deltas came together: one text chunk, most likely (runs of a status shown once).
    assert.deepEqual(
      frames.map((f) => f.status).filter((status, i, all) => status !== all[i - 1]),
      ['processing', 'chunk', 'complete'],
    )
    assert.equal(textOf(frames), 'Hello, world')

    llm.reply({
      body: openAiStream(['one ', 'two ', 'three ', 'four ', 'five']),
      chunkSize: 40,
      delayMs: 200,
    })
    client.chat('long', { text: 'count slowly' })
    await client.until((f) => f.some((x) => x.request_id === 'long' && x.status === 'chunk'))
    r.child.kill('SIGTERM')
    assert.equal(await client.closed, 1001)
    assert.deepEqual(await r.exited, { code: 0, signal: null })

    const turn = client.frames.filter((f) => f.request_id === 'long')
    assert.equal(turn.at(-1)!.status, 'error')
    assert.equal(turn.at(-1)!.error!.code, 503)
    const lines = r
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
    const logged = lines.find((l) => l.request_id === 'long' && l.msg === 'turn')
    assert.equal(logged.outcome, 'cancelled')
    assert.equal(logged.stopped_by, 'shutdown')
    assert.ok(lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'))
    // The MCP server's whole process group is gone: the server and the shell's `sleep`.
    assert.deepEqual(await liveMembers(pid), [], 'nothing of its process group still runs')
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a second signal during shutdown exits at once', async () => {
  const llm = await startLlmServer()
  const dir = await tempDir()
  try {
    const r = await startPlatformProcess(dir, baseConfig(llm.baseUrl))
    const { url } = r
    // A client that stops reading never answers the closing handshake, so the graceful close
    // waits for it; the second signal must not.
    const ws = new WebSocket(url)
    await new Promise((resolve) => ws.once('open', resolve))
    ;(ws as unknown as { _socket: { pause(): void } })._socket.pause()
    r.child.kill('SIGTERM')
    await new Promise((resolve) => setTimeout(resolve, 150))
    r.child.kill('SIGINT')
    const exit = await r.exited
    assert.equal(exit.code, 1)
    assert.match(r.stdout(), /second SIGINT, exiting/)
    ws.terminate()
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('the shipped config.yaml validates once its provider secret is set', async () => {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const missing = run(['check-config'], {}, root)
  assert.equal((await missing.exited).code, 78)
  assert.match(missing.stderr, /llm\.providers\.groq\.api_key: .*GROQ_API_KEY/)
  const ok = run(['check-config'], { GROQ_API_KEY: 'gsk_test_value' }, root)
  assert.equal((await ok.exited).code, 0, ok.stderr)
})

test('check-config: empty, null, scalar, binary, endless and huge files exit 78 quickly, one line each', async () => {
  const dir = await tempDir()
  try {
    const { configPath, serversPath } = await writeConfigFiles(dir, baseConfig('http://127.0.0.1:9/v1'))
    const huge = join(dir, 'huge.yaml')
    await writeFile(huge, 'k: 1\n'.repeat(2_000_000))
    const binary = join(dir, 'binary')
    await writeFile(binary, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x00, 0xff, 0xfe, 0x0a]))
    const texts: Record<string, string> = { empty: '', null: 'null\n', number: '42\n', string: '"text"\n' }
    const files: Record<string, string> = { binary, huge, endless: '/dev/zero' }
    for (const [name, text] of Object.entries(texts)) {
      files[name] = join(dir, `${name}.txt`)
      await writeFile(files[name], text)
    }
    for (const [name, file] of Object.entries(files)) {
      for (const flags of [
        ['--config', file, '--servers', serversPath],
        ['--config', configPath, '--servers', file],
      ]) {
        const started = performance.now()
        const r = run(['check-config', ...flags])
        const timer = setTimeout(() => r.child.kill('SIGKILL'), 10_000)
        const exit = await r.exited
        clearTimeout(timer)
        const elapsed = performance.now() - started
        const what = `${name} as ${flags[0] === '--config' && flags[1] === file ? 'config' : 'servers'}`
        assert.deepEqual(exit, { code: 78, signal: null }, `${what}: ${r.stderr}`)
        const lines = r.stderr.trimEnd().split('\n')
        assert.equal(lines[0], 'mcp-platform: invalid configuration', what)
        assert.equal(lines.length, 2, `${what}: one problem line: ${r.stderr}`)
        assert.match(lines[1]!, /^[\w.]+: (is empty|must be an object|is not UTF-8|is larger than)/, what)
        assert.ok(elapsed < 5000, `${what}: exited in ${Math.round(elapsed)} ms`)
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('check-config: a server named __proto__ exits 78 naming it', async () => {
  const dir = await tempDir()
  try {
    const { configPath, serversPath } = await writeConfigFiles(dir, baseConfig('http://127.0.0.1:9/v1'))
    await writeFile(serversPath, '{"mcpServers": {"__proto__": {"command": "node", "args": ["x.js"]}}}')
    const r = run(['check-config', '--config', configPath, '--servers', serversPath])
    assert.deepEqual(await r.exited, { code: 78, signal: null }, r.stderr)
    assert.equal(
      r.stderr,
      'mcp-platform: invalid configuration\n' +
        "mcpServers.__proto__: server name '__proto__' is reserved (a property every JavaScript object has); choose another\n",
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
