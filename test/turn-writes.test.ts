// When a turn's events reach the store, and what a crash leaves (docs/store.md, "When a turn is
// stored"): the user message is written before the LLM is called, and the tool calls and results
// with how the turn ended, in one write. What the client was told stands in the store: `processing`
// vouches for the user message, `complete` for every event of the turn; a process killed between
// the two leaves the user message alone, and the request runs again when resent. A finished
// turn's replay says again, byte for byte, what its first run said.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryStore } from '../src/store/memory.js'
import type { BeginTurnResult, ChatEvent, NewEvent } from '../src/store/types.js'
import { openAiStream, openAiToolCalls, startLlmServer } from './helpers/llm-server.js'
import { startPlatformProcess } from './helpers/process.js'
import {
  baseConfig,
  Client,
  demoServer,
  mcpSettled,
  startPlatform,
  terminal,
  textOf,
  type ConfigObject,
  type Frame,
} from './helpers/platform.js'

/** A memory store that notes each write it is asked for: which call, and the events' types. */
class CountingStore extends MemoryStore {
  readonly writes: { call: 'beginTurn' | 'append'; events: NewEvent[] }[] = []
  override beginTurn(message: NewEvent, create: boolean): Promise<BeginTurnResult> {
    this.writes.push({ call: 'beginTurn', events: [message] })
    return super.beginTurn(message, create)
  }
  override append(events: NewEvent[]): Promise<ChatEvent[]> {
    this.writes.push({ call: 'append', events })
    return super.append(events)
  }
  shape(): [string, string[]][] {
    return this.writes.map((w) => [w.call, w.events.map((e) => e.type)])
  }
}

const chunks = (frames: Frame[], type: string) =>
  frames.filter((f) => f.status === 'chunk' && f.chunk!.type === type).map((f) => f.chunk!.data)

const jsonl = (c: ConfigObject) => {
  c.store = { type: 'jsonl', path: 'events.jsonl', fsync: true }
}

/** The events in the log file, as written. */
async function logged(dir: string): Promise<ChatEvent[]> {
  const text = await readFile(join(dir, 'events.jsonl'), 'utf8')
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ChatEvent)
}

test('a tool turn of two rounds is two writes: the user message, then its calls, results and answer', async () => {
  const llm = await startLlmServer()
  const store = new CountingStore()
  const platform = await startPlatform({ baseUrl: llm.baseUrl, store, servers: { demo: demoServer() } })
  try {
    await mcpSettled(platform.app)
    llm.reply({
      body: openAiToolCalls(
        [
          { id: 'call_slow', name: 'demo__slow', arguments: { seconds: 0.2 } },
          { id: 'call_add', name: 'demo__add', arguments: { a: 2, b: 40 } },
        ],
        { text: 'Let me see. ' },
      ),
    })
    llm.reply({ body: openAiToolCalls([{ id: 'call_echo', name: 'demo__echo', arguments: { text: 'hi' } }]) })
    llm.reply({ body: openAiStream(['All ', 'done.']) })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('two-rounds', { text: 'Go' })
    client.close()
    assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
    assert.equal(terminal(frames).metadata!.tool_hops, 2)

    assert.deepEqual(store.shape(), [
      ['beginTurn', ['user_message']],
      [
        'append',
        ['tool_call', 'tool_result', 'tool_result', 'tool_call', 'tool_result', 'assistant_message'],
      ],
    ])
    // The results are stored in the order the client was told of them (the quick one first).
    const stored = store.writes[1]!.events.filter((e) => e.type === 'tool_result').map((e) => e.tool_call_id)
    assert.deepEqual(stored, ['call_add', 'call_slow', 'call_echo'])
    assert.deepEqual(
      chunks(frames, 'tool_result').map((r) => r.id),
      stored,
    )
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('a turn cancelled while a tool runs is stored in one write: the call, the results so far, what was said', async () => {
  const llm = await startLlmServer()
  const store = new CountingStore()
  const platform = await startPlatform({ baseUrl: llm.baseUrl, store, servers: { demo: demoServer() } })
  try {
    await mcpSettled(platform.app)
    llm.reply({
      body: openAiToolCalls(
        [
          { id: 'call_add', name: 'demo__add', arguments: { a: 1, b: 1 } },
          { id: 'call_slow', name: 'demo__slow', arguments: { seconds: 5 } },
        ],
        { text: 'Working on it. ' },
      ),
    })
    const client = await Client.inject(platform.app)
    client.chat('stopped', { text: 'Go' })
    await client.until((f) => f.some((x) => x.request_id === 'stopped' && x.chunk?.type === 'tool_result'))
    client.send({ action: 'cancel', request_id: 'k', payload: { target_request_id: 'stopped' } })
    const frames = await client.request('stopped')
    client.close()
    assert.equal(terminal(frames).status, 'cancelled', JSON.stringify(frames))

    assert.deepEqual(store.shape(), [
      ['beginTurn', ['user_message']],
      ['append', ['tool_call', 'tool_result', 'assistant_message']],
    ])
    const [call, result, said] = store.writes[1]!.events
    assert.equal(call!.content, 'Working on it. ')
    assert.equal(result!.tool_call_id, 'call_add')
    assert.equal(said!.status, 'interrupted')
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('a platform killed with SIGKILL mid-turn loses nothing it acknowledged; the turn runs again when resent', async () => {
  const llm = await startLlmServer()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-turn-kill-'))
  try {
    const config = baseConfig(llm.baseUrl)
    jsonl(config)
    const doomed = await startPlatformProcess(dir, config, { demo: demoServer() })
    const there = await Client.connect(doomed.url)
    // Until the demo server is up, the turn would have no tools.
    for (;;) {
      const tools = (await there.ask('list_tools')).result!.tools as unknown[]
      if (tools.length > 0) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }

    // A tool turn that finishes: `complete` vouches for every event of it.
    llm.reply({
      body: openAiToolCalls([{ id: 'call_add', name: 'demo__add', arguments: { a: 2, b: 3 } }], {
        text: 'Adding. ',
      }),
    })
    llm.reply({ body: openAiStream(['It is ', '5.']) })
    const done = await there.chatAndWait('finished-1', { text: 'Add 2 and 3' })
    assert.equal(terminal(done).status, 'complete', JSON.stringify(done))
    const conversation_id = terminal(done).metadata!.conversation_id as string

    // The next turn of the conversation is told of a tool result, then its process is killed.
    llm.reply({
      body: openAiToolCalls(
        [
          { id: 'call_quick', name: 'demo__add', arguments: { a: 1, b: 1 } },
          { id: 'call_long', name: 'demo__slow', arguments: { seconds: 30 } },
        ],
        { text: 'One moment. ' },
      ),
    })
    there.chat('killed-1', { text: 'Add 1 and 1, and wait', conversation_id })
    await there.until((f) => f.some((x) => x.request_id === 'killed-1' && x.chunk?.type === 'tool_result'))
    const told = there.frames.filter((f) => f.request_id === 'killed-1')
    assert.equal(told[0]!.status, 'processing')
    doomed.child.kill('SIGKILL')
    assert.equal((await doomed.exited).signal, 'SIGKILL')

    const events = await logged(dir)
    const finished = events.filter((e) => e.request_id === 'finished-1')
    assert.deepEqual(
      finished.map((e) => [e.type, e.content]),
      [
        ['user_message', 'Add 2 and 3'],
        ['tool_call', 'Adding. '],
        ['tool_result', '5'],
        ['assistant_message', 'It is 5.'],
      ],
      'every event `complete` vouched for is on disk',
    )
    assert.deepEqual(
      events.filter((e) => e.request_id === 'killed-1').map((e) => [e.type, e.content]),
      [['user_message', 'Add 1 and 1, and wait']],
      '`processing` vouched for the user message; the rest was never acknowledged',
    )
    there.close()

    // Resent to a new process, the killed turn runs again in its conversation, and is stored whole.
    const here = await startPlatform({
      baseUrl: llm.baseUrl,
      dir,
      patch: jsonl,
      servers: { demo: demoServer() },
    })
    try {
      await mcpSettled(here.app)
      llm.reply({
        body: openAiToolCalls([{ id: 'call_again', name: 'demo__add', arguments: { a: 1, b: 1 } }]),
      })
      llm.reply({ body: openAiStream(['Two.']) })
      const client = await Client.inject(here.app)
      const again = await client.chatAndWait('killed-1', { text: 'Add 1 and 1, and wait' })
      assert.equal(terminal(again).status, 'complete', JSON.stringify(again))
      assert.equal(terminal(again).metadata!.conversation_id, conversation_id)
      const history = (await client.ask('get_history', { conversation_id })).result!.events as ChatEvent[]
      assert.deepEqual(
        history.filter((e) => e.request_id === 'killed-1').map((e) => e.type),
        ['user_message', 'user_message', 'tool_call', 'tool_result', 'assistant_message'],
        'the first attempt left its user message; the second is whole',
      )
      client.close()
    } finally {
      await here.close()
    }
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})

/** The frames of a chat as the client saw them, minus what must differ in a replay. */
function said(frames: Frame[]): { text: string; bytes: Buffer; metadata: Record<string, unknown> } {
  const text = textOf(frames)
  const { duration_ms: _duration, replayed: _replayed, ...metadata } = terminal(frames).metadata!
  return { text, bytes: Buffer.from(text, 'utf8'), metadata }
}

test('a finished tool turn replayed says byte for byte what its first run said, also after a restart', async () => {
  const llm = await startLlmServer()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-replay-'))
  try {
    let platform = await startPlatform({
      baseUrl: llm.baseUrl,
      dir,
      patch: jsonl,
      servers: { demo: demoServer() },
    })
    await mcpSettled(platform.app)
    // Text before the calls, two rounds, text split inside a word and inside a character's UTF-16
    // pair, characters of every UTF-8 length.
    llm.reply({
      body: openAiToolCalls(
        [
          { id: 'c1', name: 'demo__add', arguments: { a: 20, b: 22 } },
          { id: 'c2', name: 'demo__echo', arguments: { text: 'ünïcödé' } },
        ],
        { text: 'Ich schaue nach… ' },
      ),
    })
    llm.reply({ body: openAiToolCalls([{ id: 'c3', name: 'demo__add', arguments: { a: 1, b: 2 } }]) })
    llm.reply({ body: openAiStream(['Die Sum', 'me ist 42 ', '\ud83d', '\ude00 — 三', '.\n']) })
    let client = await Client.inject(platform.app)
    const first = await client.chatAndWait('replay-1', { text: 'Rechne' })
    assert.equal(terminal(first).status, 'complete', JSON.stringify(first))
    assert.equal(terminal(first).metadata!.tool_hops, 2)
    const original = said(first)
    assert.equal(original.text, 'Ich schaue nach… Die Summe ist 42 😀 — 三.\n')

    // Resent in the same process, then after a restart, read back from the file.
    const calls = llm.requests.length
    const again = await client.chatAndWait('replay-1', { text: 'Rechne' })
    client.close()
    await platform.close()
    platform = await startPlatform({ baseUrl: llm.baseUrl, dir, patch: jsonl })
    client = await Client.inject(platform.app)
    const afterRestart = await client.chatAndWait('replay-1', { text: 'Rechne' })
    client.close()
    await platform.close()

    for (const replay of [again, afterRestart]) {
      assert.equal(terminal(replay).metadata!.replayed, true)
      assert.deepEqual(chunks(replay, 'text').length, 1, 'one text chunk')
      const { bytes, metadata } = said(replay)
      assert.ok(bytes.equals(original.bytes), `replayed ${JSON.stringify(said(replay).text)}`)
      assert.deepEqual(metadata, original.metadata)
    }
    assert.equal(llm.requests.length, calls, 'the replays did not ask the LLM')
  } finally {
    await llm.close()
    await rm(dir, { recursive: true, force: true })
  }
})
