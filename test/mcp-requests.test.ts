// get_prompt and read_resource are running requests like a chat: one per request_id at a time,
// stopped by `cancel`, by the socket closing and by shutdown. Through the whole platform, against
// a fixture MCP server over real stdio whose resource and prompt take their time.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { openAiStream, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import {
  Client,
  listenOnPort,
  mcpSettled,
  startPlatform,
  terminal,
  type Frame,
  type Platform,
  assertError,
  resultOf,
} from './helpers/platform.js'
import { MemoryStore } from '../src/store/memory.js'
import type { ChatEvent, NewEvent } from '../src/store/types.js'

const SLOW_SERVER_PATH = fileURLToPath(new URL('./fixtures/slow-server.js', import.meta.url))
const servers = { slow: { command: process.execPath, args: [SLOW_SERVER_PATH] } }

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  // Requests time out only after 30 s here: what ends one sooner was its cancel.
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers,
    patch: (config) => void (config.mcp.connection.connection_timeout = 30),
  })
  await mcpSettled(platform.app)
  assert.deepEqual(
    platform.app.mcp.status().map((s) => `${s.name}:${s.state}`),
    ['slow:ready'],
  )
})
after(async () => {
  await platform?.close()
  await llm?.close()
})

const readSecond = { uri: 'slow://second' }
const readForever = { uri: 'slow://forever' }
const promptForever = { server: 'slow', name: 'forever' }

function framesOf(client: Client, requestId: string): Frame[] {
  return client.frames.filter((f) => f.request_id === requestId)
}

/** What the fixture server has seen so far: requests that wait for their cancel, and cancels. */
async function serverStats(client: Client): Promise<{ started: number; cancelled: number }> {
  const { contents } = resultOf(await client.ask('read_resource', { uri: 'slow://stats' }))
  return JSON.parse(contents[0].text as string) as { started: number; cancelled: number }
}

/** Polls the fixture's counters until `predicate` holds. */
async function untilStats(
  client: Client,
  predicate: (stats: { started: number; cancelled: number }) => boolean,
): Promise<{ started: number; cancelled: number }> {
  const deadline = Date.now() + 5000
  for (;;) {
    const stats = await serverStats(client)
    if (predicate(stats)) return stats
    if (Date.now() > deadline) throw new Error(`the MCP server's counters stayed at ${JSON.stringify(stats)}`)
    await sleep(20)
  }
}

test('a read_resource runs until answered: its request_id again is 409, and it completes once', async () => {
  const client = await Client.inject(platform.app)
  const started = performance.now()
  client.send({ action: 'read_resource', request_id: 'dup', payload: readSecond })
  client.send({ action: 'read_resource', request_id: 'dup', payload: readSecond })
  await client.until(() => framesOf(client, 'dup').some((f) => f.status === 'complete'))
  const took = performance.now() - started
  // Had the second one run, it would have completed about when the first did.
  await sleep(300)
  client.close()

  const frames = framesOf(client, 'dup')
  assert.equal(frames.length, 2, JSON.stringify(frames))
  assertError(frames[0]!, 409, 'REQUEST_IN_PROGRESS')
  assert.deepEqual(frames[1], {
    request_id: 'dup',
    status: 'complete',
    result: { contents: [{ uri: 'slow://second', mimeType: 'text/plain', text: 'That took a second.' }] },
  })
  assert.ok(took >= 900, `the resource takes a second, answered after ${Math.round(took)} ms`)
})

test('cancel stops a read_resource and a get_prompt; the MCP server is told', async () => {
  const client = await Client.inject(platform.app)
  const before = await serverStats(client)
  client.send({ action: 'read_resource', request_id: 'r-wait', payload: readForever })
  client.send({ action: 'get_prompt', request_id: 'p-wait', payload: promptForever })
  // Both have reached the server: a cancel now is one the server must hear of.
  await untilStats(client, (s) => s.started >= before.started + 2)

  client.send({ action: 'cancel', request_id: 'k1', payload: { target_request_id: 'r-wait' } })
  client.send({ action: 'cancel', request_id: 'k2', payload: { target_request_id: 'p-wait' } })
  const cancels = [await client.request('k1'), await client.request('k2')]
  const stopped = [await client.request('r-wait'), await client.request('p-wait')]
  const after = await untilStats(client, (s) => s.cancelled >= before.cancelled + 2)
  // Once ended, they are no longer running.
  client.send({ action: 'cancel', request_id: 'k3', payload: { target_request_id: 'r-wait' } })
  const late = terminal(await client.request('k3'))
  client.close()

  for (const [i, id] of ['k1', 'k2'].entries()) {
    assert.deepEqual(cancels[i], [{ request_id: id, status: 'complete', result: { cancelled: true } }])
  }
  for (const [i, id] of ['r-wait', 'p-wait'].entries()) {
    assert.deepEqual(stopped[i], [{ request_id: id, status: 'cancelled', metadata: {} }])
  }
  assert.equal(after.cancelled - before.cancelled, 2, 'the server saw notifications/cancelled for both')
  assertError(late, 404, 'REQUEST_NOT_FOUND')
})

test('closing the socket cancels its running MCP requests on the server', async () => {
  const watcher = await Client.inject(platform.app)
  const before = await serverStats(watcher)
  // A real port: the socket closing must reach the server as it would from a real client.
  const client = await Client.connect((await listenOnPort(platform)).url)
  client.send({ action: 'read_resource', request_id: 'gone', payload: readForever })
  client.send({ action: 'get_prompt', request_id: 'gone-too', payload: promptForever })
  await untilStats(watcher, (s) => s.started >= before.started + 2)
  client.close()
  const after = await untilStats(watcher, (s) => s.cancelled >= before.cancelled + 2)
  watcher.close()
  assert.equal(after.cancelled - before.cancelled, 2)
})

/** A memory store that takes its time to record an interrupted answer: shutdown must wait for it. */
class SlowToInterruptStore extends MemoryStore {
  override async append(events: NewEvent[]): Promise<ChatEvent[]> {
    if (events.some((e) => e.status === 'interrupted')) await sleep(800)
    return super.append(events)
  }
}

test('shutdown: running MCP requests end with 503, new ones are refused with 503', async (t) => {
  const t0 = performance.now()
  const mark = (what: string) => t.diagnostic(`${what} at ${Math.round(performance.now() - t0)} ms`)
  const own = await startPlatform({ baseUrl: llm.baseUrl, servers, store: new SlowToInterruptStore() })
  let closed: Promise<void> | undefined
  const close = () => (closed ??= own.close())
  t.after(close)
  await mcpSettled(own.app)
  const client = await Client.inject(own.app)
  // A chat that is running when the shutdown starts, and takes a while to end: it holds the
  // connection open while the shutdown has begun.
  const asked = llm.requests.length
  llm.reply({ body: openAiStream(['one ', 'two ', 'three']), delayMs: 3000 })
  client.chat('long', { text: 'count' })
  await client.until(() => llm.requests.length > asked)
  client.send({ action: 'read_resource', request_id: 'running', payload: readForever })
  client.send({ action: 'get_prompt', request_id: 'running-prompt', payload: promptForever })
  await untilStats(client, (s) => s.started >= 2)

  mark('running')
  const closing = close()
  const running = terminal(await client.request('running'))
  const runningPrompt = terminal(await client.request('running-prompt'))
  client.send({ action: 'read_resource', request_id: 'new', payload: readSecond })
  client.send({ action: 'get_prompt', request_id: 'new-prompt', payload: promptForever })
  client.chat('new-chat', { text: 'hello' })
  const refused = [
    terminal(await client.request('new')),
    terminal(await client.request('new-prompt')),
    terminal(await client.request('new-chat')),
  ]
  mark('refused')
  const chat = terminal(await client.request('long'))
  mark('chat ended')
  const code = await client.closed
  mark('socket closed')
  await closing
  mark('app closed')

  assertError(running, 503, 'SHUTTING_DOWN')
  assertError(runningPrompt, 503, 'SHUTTING_DOWN')
  for (const frame of refused) assertError(frame, 503, 'SHUTTING_DOWN')
  assertError(chat, 503, 'SHUTTING_DOWN')
  assert.equal(code, 1001)
  const statuses = ['running', 'running-prompt', 'new', 'new-prompt', 'new-chat'].map((id) =>
    framesOf(client, id).map((f) => f.status),
  )
  assert.deepEqual(statuses, [['error'], ['error'], ['error'], ['error'], ['error']], 'one frame each')
})
