// The real command line: `mcp-platform check-config` and `start`, as separate processes, with
// signals and exit codes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { openAiStream, startLlmServer } from './helpers/llm-server.js'
import { baseConfig, Client, writeConfigFiles } from './helpers/platform.js'

const SERVER = fileURLToPath(new URL('../src/server.js', import.meta.url))

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

test('an unknown command or flag: usage and exit 64', async () => {
  const r = run(['launch'])
  assert.equal((await r.exited).code, 64)
  assert.match(r.stderr, /unknown command 'launch'[\s\S]*Usage: mcp-platform/)
})

async function startServer(llmUrl: string, dir: string): Promise<{ r: Run; url: string }> {
  const config = baseConfig(llmUrl)
  config.websocket.port = 0
  const { configPath, serversPath } = await writeConfigFiles(dir, config)
  // MCP_*_PATH instead of flags: the environment route works too.
  const r = run(['start'], { MCP_CONFIG_PATH: configPath, MCP_SERVERS_CONFIG_PATH: serversPath })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listen line: ${r.stdout}${r.stderr}`)), 10_000)
    r.child.stdout!.on('data', () => {
      const m = /"msg":"Server listening at http:\/\/127\.0\.0\.1:(\d+)"/.exec(r.stdout)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
  })
  return { r, url: `ws://127.0.0.1:${port}/ws/chat` }
}

test('start serves chat; SIGTERM mid-stream: 1001 for the client, the turn stored as interrupted, exit 0', async () => {
  const llm = await startLlmServer()
  const dir = await tempDir()
  try {
    const { r, url } = await startServer(llm.baseUrl, dir)
    const client = await Client.connect(url)
    llm.reply({ body: openAiStream(['Hello', ', wor', 'ld']) })
    const frames = await client.chatAndWait('ok', { text: 'hi' })
    assert.deepEqual(
      frames.map((f) => f.status),
      ['processing', 'chunk', 'chunk', 'chunk', 'complete'],
    )

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
    const lines = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
    const logged = lines.find((l) => l.request_id === 'long' && l.msg === 'turn')
    assert.equal(logged.outcome, 'cancelled')
    assert.equal(logged.stopped_by, 'shutdown')
    assert.ok(lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'))
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a second signal during shutdown exits at once', async () => {
  const llm = await startLlmServer()
  const dir = await tempDir()
  try {
    const { r, url } = await startServer(llm.baseUrl, dir)
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
    assert.match(r.stdout, /second SIGINT, exiting/)
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
