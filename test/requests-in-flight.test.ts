// The chat service owns every request in flight: one table by principal and request_id, ended and
// awaited at shutdown wherever its socket is. Each test here pins a fault found in review.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import lockfile from 'proper-lockfile'
import { isInstanceAlive } from '../src/chat/instance.js'
import { errors } from '../src/errors.js'
import { MemoryStore } from '../src/store/memory.js'
import type { ChatEvent, NewEvent } from '../src/store/types.js'
import { openAiStream, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { Client, listenOnPort, assertError, startPlatform, terminal } from './helpers/platform.js'

let llm: LlmServer

before(async () => {
  llm = await startLlmServer()
})
after(async () => {
  await llm.close()
})

const unfinished = (events: NewEvent[]) =>
  events.some((e) => e.type === 'assistant_message' && e.status !== 'complete')

/** A memory store that refuses writes once closed, as the durable ones do, and is slow to store an unfinished turn. */
class SlowUnfinishedStore extends MemoryStore {
  closed = false
  readonly stored: ChatEvent[] = []
  override async append(events: NewEvent[]): Promise<ChatEvent[]> {
    if (unfinished(events)) await new Promise((resolve) => setTimeout(resolve, 300))
    if (this.closed) throw new errors.STORE_CLOSED('the store is closed')
    const written = await super.append(events)
    this.stored.push(...written)
    return written
  }
  override close(): Promise<void> {
    this.closed = true
    return super.close()
  }
}

test('a turn whose socket closed is still stored as interrupted when the app closes at once', async () => {
  const store = new SlowUnfinishedStore()
  const platform = await startPlatform({ baseUrl: llm.baseUrl, store })
  llm.reply({
    body: openAiStream(['Half ', 'an answer']).split('\n\n').slice(0, 2).join('\n\n') + '\n\n',
    hang: true,
  })
  // A real port: the socket closing must reach the server as it would from a real client.
  const client = await Client.connect((await listenOnPort(platform)).url)
  client.chat('gone', { text: 'hello' })
  await client.until((f) => f.some((x) => x.request_id === 'gone' && x.status === 'chunk'))
  const closedBefore = llm.closedEarly()
  client.close()
  // The turn's LLM request is aborted: the turn is unwinding, its socket already gone.
  await llm.waitForClosedEarly(closedBefore + 1)
  await platform.close()
  const last = store.stored.at(-1)
  assert.equal(last?.type, 'assistant_message')
  assert.deepEqual([last?.status, last?.content], ['interrupted', 'Half '])
})

/** A memory store that cannot store an unfinished turn. */
class NoUnfinishedStore extends MemoryStore {
  override append(events: NewEvent[]): Promise<ChatEvent[]> {
    if (unfinished(events)) return Promise.reject(new errors.STORE_WRITE_FAILED('disk full'))
    return super.append(events)
  }
}

test('a failed turn whose unfinished answer cannot be stored reports the failure, and runs when sent again', async () => {
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    store: new NoUnfinishedStore({ isLive: isInstanceAlive }),
  })
  try {
    llm.reply({ status: 500, json: { error: { message: 'boom' } } })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('r500', { text: 'hello' })
    assertError(terminal(frames), 502, 'LLM_UPSTREAM_ERROR')
    const logged = platform.logs.lines().find((l) => l.msg === 'unfinished turn not stored')
    assert.equal(logged?.error?.type, 'STORE_WRITE_FAILED')
    // Its attempt stays open in the store, but this process knows it runs no more: sent again, it runs.
    llm.reply({ body: openAiStream(['Better ', 'now.']) })
    const again = terminal(await client.chatAndWait('r500', { text: 'hello' }))
    client.close()
    assert.equal(again.status, 'complete', JSON.stringify(again))
    assert.equal(again.metadata!.replayed, undefined)
  } finally {
    await platform.close()
  }
})

test('a request_id is one request per principal: 409 from a second socket, cancel by its owner only', async () => {
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (c) => {
      c.auth = {
        api_keys: [
          { name: 'alice', key: 'alice-key-123' },
          { name: 'bob', key: 'bob-key-1234' },
        ],
      }
    },
  })
  try {
    const asked = llm.requests.length
    llm.reply({ body: openAiStream(['one ', 'two']), chunkSize: 50, delayMs: 2000 })
    const alice = await Client.inject(platform.app, { authorization: 'Bearer alice-key-123' })
    const alice2 = await Client.inject(platform.app, { authorization: 'Bearer alice-key-123' })
    const bob = await Client.inject(platform.app, { authorization: 'Bearer bob-key-1234' })
    alice.chat('shared', { text: 'count' })
    await alice.until((f) => f.some((x) => x.request_id === 'shared' && x.status === 'processing'))
    // Its answer is on its way (the reply above is taken, not left for the next test).
    while (llm.requests.length === asked) await new Promise((resolve) => setTimeout(resolve, 5))
    assertError(await alice2.ask('chat', { text: 'again' }, 'shared'), 409, 'REQUEST_IN_PROGRESS')
    assertError(await bob.ask('cancel', { target_request_id: 'shared' }), 404, 'REQUEST_NOT_FOUND')
    assert.deepEqual((await alice2.ask('cancel', { target_request_id: 'shared' })).result, {
      cancelled: true,
    })
    assert.equal(terminal(await alice.request('shared')).status, 'cancelled')
    for (const c of [alice, alice2, bob]) c.close()
  } finally {
    await platform.close()
  }
})

test('a socket error is logged once, as a warning', async () => {
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  try {
    const client = await Client.inject(platform.app)
    client.chat('huge', { text: 'x'.repeat(5000) })
    assert.equal(await client.closed, 1009)
    const lines = platform.logs.lines().filter((l) => /payload/i.test(JSON.stringify(l)))
    assert.equal(lines.length, 1, JSON.stringify(lines))
    assert.deepEqual([lines[0]!.level, lines[0]!.error.type], ['warn', 'WEBSOCKET_ERROR'])
  } finally {
    await platform.close()
  }
})

test('shutdown while another process holds the store lock stays within its budget; the client is told', async (t) => {
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (c) => {
      c.store = { type: 'jsonl', path: 'events.jsonl', fsync: true }
    },
  })
  llm.reply({
    body: openAiStream(['Half ', 'an answer']).split('\n\n').slice(0, 2).join('\n\n') + '\n\n',
    hang: true,
  })
  const client = await Client.inject(platform.app)
  client.chat('locked', { text: 'hello' })
  await client.until((f) => f.some((x) => x.request_id === 'locked' && x.status === 'chunk'))
  // Another writer takes the log's lock and keeps it fresh, past the whole shutdown.
  const release = await lockfile.lock(join(platform.dir, 'events.jsonl'), {
    stale: 5000,
    update: 1000,
    realpath: false,
  })
  t.after(() => release().catch(() => undefined))
  const started = performance.now()
  await platform.close()
  const ms = performance.now() - started
  t.diagnostic(`closed in ${Math.round(ms)} ms`)
  // The store gives up on the lock 1.5 s into the shutdown; sockets get 1 s to close: in all,
  // well inside close-with-grace's 5 s.
  assert.ok(ms < 4500, `closed in ${Math.round(ms)} ms, past the 5 s shutdown budget's share`)
  assertError(terminal(client.frames.filter((f) => f.request_id === 'locked')), 503, 'SHUTTING_DOWN')
  const logged = platform.logs.lines().find((l) => l.msg === 'unfinished turn not stored')
  assert.equal(logged?.error?.type, 'STORE_CLOSED')
})

test('once shutting down, reads of the store are refused with 503 like every other request', async () => {
  const store = new SlowUnfinishedStore()
  const platform = await startPlatform({ baseUrl: llm.baseUrl, store })
  const client = await Client.inject(platform.app)
  const first = terminal(await client.chatAndWait('seed', { text: 'hello' }))
  const conversation_id = first.metadata!.conversation_id as string
  llm.reply({
    body: openAiStream(['Half ', 'an answer']).split('\n\n').slice(0, 2).join('\n\n') + '\n\n',
    hang: true,
  })
  client.chat('running', { text: 'and now?', conversation_id })
  await client.until((f) => f.some((x) => x.request_id === 'running' && x.status === 'chunk'))
  // The shutdown waits for the running turn to store what it said (slowly, in this store).
  const closing = platform.close()
  await new Promise((resolve) => setTimeout(resolve, 20))
  client.send({ action: 'get_history', request_id: 'late-h', payload: { conversation_id } })
  client.send({ action: 'list_conversations', request_id: 'late-l', payload: {} })
  assertError(terminal(await client.request('late-h')), 503, 'SHUTTING_DOWN')
  assertError(terminal(await client.request('late-l')), 503, 'SHUTTING_DOWN')
  await closing
  assert.equal(store.stored.at(-1)?.status, 'interrupted')
})
