// Conversations on the jsonl store survive restarts, and request_ids hold across processes that
// share the file: replayed when finished, 409 while running in a live process, run again when
// the process that ran it died.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { openAiStream, startLlmServer } from './helpers/llm-server.js'
import { startPlatformProcess } from './helpers/process.js'
import { baseConfig, Client, startPlatform, terminal, textOf, type ConfigObject } from './helpers/platform.js'

const STORE_WORKER = fileURLToPath(new URL('./helpers/store-worker.js', import.meta.url))

const jsonl = (c: ConfigObject) => {
  c.store = { type: 'jsonl', path: 'events.jsonl', fsync: true }
}
const jsonlConfig = (baseUrl: string) => {
  const config = baseConfig(baseUrl)
  jsonl(config)
  return config
}

test('a chat, a restart, then get_history has it and the same request_id is replayed', async () => {
  const llm = await startLlmServer()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-durable-'))
  try {
    let platform = await startPlatform({ baseUrl: llm.baseUrl, dir, patch: jsonl })
    let client = await Client.inject(platform.app)
    llm.reply({ body: openAiStream(['Kept ', 'on disk.']) })
    const first = await client.chatAndWait('keep-1', { text: 'Remember this' })
    const conversationId = first[0]!.metadata!.conversation_id
    client.close()
    await platform.close()

    platform = await startPlatform({ baseUrl: llm.baseUrl, dir, patch: jsonl })
    client = await Client.inject(platform.app)
    client.send({ action: 'get_history', request_id: 'h', payload: { conversation_id: conversationId } })
    const history = terminal(await client.request('h')).result!.events as any[]
    assert.deepEqual(
      history.map((e) => [e.type, e.content]),
      [
        ['user_message', 'Remember this'],
        ['assistant_message', 'Kept on disk.'],
      ],
    )
    const calls = llm.requests.length
    const again = await client.chatAndWait('keep-1', { text: 'Remember this' })
    assert.equal(llm.requests.length, calls, 'the LLM was not called again')
    assert.equal(textOf(again), 'Kept on disk.')
    assert.equal(terminal(again).metadata!.replayed, true)
    assert.equal(terminal(again).metadata!.conversation_id, conversationId)
    client.close()
    await platform.close()
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a request_id running in another process is 409; once finished there, it is replayed here', async () => {
  const llm = await startLlmServer()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-shared-'))
  try {
    const other = await startPlatformProcess(dir, jsonlConfig(llm.baseUrl))
    const here = await startPlatform({ baseUrl: llm.baseUrl, dir, patch: jsonl })
    try {
      llm.reply({ body: openAiStream(['slow ', 'answer ', 'there']), chunkSize: 30, delayMs: 150 })
      const there = await Client.connect(other.url)
      there.chat('shared-1', { text: 'run over there' })
      await there.until((f) => f.some((x) => x.request_id === 'shared-1' && x.status === 'chunk'))

      const client = await Client.inject(here.app)
      const busy = await client.chatAndWait('shared-1', { text: 'run over there' })
      assert.deepEqual(
        busy.map((f) => [f.status, f.error?.code, f.error?.type]),
        [['error', 409, 'REQUEST_IN_PROGRESS']],
      )
      const finished = await there.request('shared-1')
      assert.equal(terminal(finished).status, 'complete')
      const replay = await client.chatAndWait('shared-1', { text: 'run over there' })
      assert.equal(terminal(replay).metadata!.replayed, true)
      assert.equal(textOf(replay), 'slow answer there')
      client.close()
      there.close()
    } finally {
      await here.close()
      other.child.kill('SIGTERM')
      await other.exited
    }
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a turn whose process was killed runs again with the same request_id, in its conversation', async () => {
  const llm = await startLlmServer()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-crash-'))
  try {
    const doomed = await startPlatformProcess(dir, jsonlConfig(llm.baseUrl))
    llm.reply({ body: openAiStream(['never ', 'finished ', 'this']), chunkSize: 30, delayMs: 300 })
    const there = await Client.connect(doomed.url)
    there.chat('crash-1', { text: 'this will be cut off' })
    await there.until((f) => f.some((x) => x.request_id === 'crash-1' && x.status === 'chunk'))
    const conversationId = there.frames[0]!.metadata!.conversation_id
    doomed.child.kill('SIGKILL')
    await doomed.exited

    const here = await startPlatform({ baseUrl: llm.baseUrl, dir, patch: jsonl })
    try {
      llm.reply({ body: openAiStream(['Done ', 'this time.']) })
      const client = await Client.inject(here.app)
      // Sent without its conversation_id, as a client resending after a dropped connection may.
      const retried = await client.chatAndWait('crash-1', { text: 'this will be cut off' })
      assert.equal(terminal(retried).status, 'complete')
      assert.equal(terminal(retried).metadata!.conversation_id, conversationId)
      assert.equal(textOf(retried), 'Done this time.')
      const sent = llm.requests.at(-1)!.body.messages as { role: string; content: string }[]
      assert.equal(sent.filter((m) => m.content === 'this will be cut off').length, 1)
      client.close()
    } finally {
      await here.close()
    }
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a replay says how the turn ended: length stays length after a restart', async () => {
  const llm = await startLlmServer()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-durable-'))
  try {
    let platform = await startPlatform({ baseUrl: llm.baseUrl, dir, patch: jsonl })
    let client = await Client.inject(platform.app)
    llm.reply({ body: openAiStream(['Cut ', 'short'], { finish: 'length' }) })
    const first = terminal(await client.chatAndWait('long-1', { text: 'Tell me everything' }))
    assert.equal(first.metadata!.finish_reason, 'length')
    client.close()
    await platform.close()

    platform = await startPlatform({ baseUrl: llm.baseUrl, dir, patch: jsonl })
    client = await Client.inject(platform.app)
    const replayed = terminal(await client.chatAndWait('long-1', { text: 'Tell me everything' }))
    assert.equal(replayed.metadata!.replayed, true)
    assert.equal(replayed.metadata!.finish_reason, 'length')
    assert.equal(llm.requests.length, 1, 'the replay did not ask the LLM')
    client.close()
    await platform.close()
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})

/** A store process on `path` that stops under the log's lock, right before a write; resolves once it holds it. */
async function diesHoldingTheLock(path: string): Promise<ChildProcess> {
  const task = {
    task: 'until-killed',
    path,
    staleMs: 5000,
    lockTimeoutMs: 6000,
    worker: 'crashed',
    holdAfter: 1,
  }
  const child = spawn(process.execPath, [STORE_WORKER, JSON.stringify(task)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if ((JSON.parse(line) as { op?: string }).op === 'holding') resolve()
    })
    child.once('exit', (code) => reject(new Error(`store worker exited (${code}) before holding the lock`)))
  })
  return child
}

/** Starts the platform in `dir` and says how long until /health answers. */
async function startedIn(dir: string, config: ConfigObject) {
  const started = performance.now()
  const platform = await startPlatformProcess(dir, config)
  const health = await fetch(`${platform.http}/health`)
  assert.equal(health.status, 200)
  return { platform, ms: performance.now() - started }
}

test('a restart after a kill -9 under the store lock answers /health as fast as a clean start', async (t) => {
  const llm = await startLlmServer()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-crash-'))
  try {
    // The time a start takes here, with nothing in the way.
    const clean = await startedIn(dir, jsonlConfig(llm.baseUrl))
    clean.platform.child.kill('SIGTERM')
    await clean.platform.exited

    // Another process sharing the file dies holding its lock (stale only after 5 s).
    const crashed = await diesHoldingTheLock(join(dir, 'events.jsonl'))
    crashed.kill('SIGKILL')
    await once(crashed, 'exit')

    const after = await startedIn(dir, jsonlConfig(llm.baseUrl))
    t.diagnostic(`clean start ${Math.round(clean.ms)} ms; after the crash ${Math.round(after.ms)} ms`)
    try {
      assert.ok(
        after.ms < clean.ms + 1500,
        `the lock of the dead process was not waited out (${Math.round(after.ms)} ms)`,
      )
      const client = await Client.connect(after.platform.url)
      llm.reply({ body: openAiStream(['Still ', 'here.']) })
      assert.equal(textOf(await client.chatAndWait('after-crash', { text: 'hello' })), 'Still here.')
      client.close()
    } finally {
      after.platform.child.kill('SIGTERM')
      await after.platform.exited
    }
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})
