// Fewer frames, same protocol (issue 13): text (and reasoning) deltas of a request that arrive
// together go out as one chunk, or those of `websocket.text_coalesce_ms` when it is set; the
// chunks still concatenate exactly to the answer, every other frame of the request keeps its place,
// the stored answer and its replay are unchanged, and the frames of one tick leave the socket in
// one write. Through the real platform, the demo MCP server over stdio and the stand-in provider.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import type WebSocket from 'ws'
import { HELD_TEXT_CHARS } from '../src/chat/connection.js'
import { openAiStream, startLlmServer } from './helpers/llm-server.js'
import {
  Client,
  demoServer,
  listenOnPort,
  mcpSettled,
  onCleanup,
  startPlatform,
  terminal,
  textOf,
  type ConfigObject,
  type Frame,
} from './helpers/platform.js'

async function setUp(t: test.TestContext, patch?: (config: ConfigObject) => void) {
  const llm = await startLlmServer()
  onCleanup(t, () => llm.close())
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers: { demo: demoServer() },
    ...(patch ? { patch } : {}),
  })
  onCleanup(t, () => platform.close())
  await mcpSettled(platform.app)
  return { llm, platform }
}

const chunksOf = (frames: Frame[], type: string): string[] =>
  frames.filter((f) => f.status === 'chunk' && f.chunk!.type === type).map((f) => f.chunk!.data as string)

/** The frames' kinds in order (`chunk:TYPE` for a chunk), runs of the same kind shown once. */
function kinds(frames: Frame[]): string[] {
  const all = frames.map((f) => (f.status === 'chunk' ? `chunk:${f.chunk!.type}` : f.status))
  return all.filter((kind, i) => kind !== all[i - 1])
}

/** One openai stream chunk of a delta. */
function sse(delta: object, finish: string | null = null): string {
  const chunk = {
    id: 'chatcmpl-c',
    object: 'chat.completion.chunk',
    created: 1763900000,
    model: 'test-model',
  }
  return `data: ${JSON.stringify({ ...chunk, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
}

const USAGE = `data: ${JSON.stringify({ id: 'chatcmpl-c', object: 'chat.completion.chunk', created: 1763900000, model: 'test-model', choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })}\n\n`

// Many small deltas: ASCII words, characters of two, three and four UTF-8 bytes, and an emoji's
// surrogate pair cut between two deltas (each half escaped in its own JSON string).
const DELTAS = [
  ...'The answer comes in many small pieces, one word at a time, as a fast model writes it: '.split(/(?= )/),
  'Gr',
  'ü',
  'ße',
  ' — ',
  'na',
  'ïve',
  ' 日本',
  '語 ',
  '\ud83d',
  '\ude00',
  ' and ',
  '👍🏽',
  ...' the end of it all.'.split(/(?= )/),
]
const ANSWER = DELTAS.join('')

test('deltas that arrive together are one text chunk; it concatenates exactly; the stored answer and its replay are unchanged', async (t) => {
  const { llm, platform } = await setUp(t)
  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))
  assert.ok(ANSWER.includes('😀') && DELTAS.length > 30)

  // The whole stream in one write of the provider.
  llm.reply({ body: openAiStream(DELTAS) })
  const frames = await client.chatAndWait('many', { text: 'Tell me' })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  assert.equal(textOf(frames), ANSWER)
  const chunks = chunksOf(frames, 'text')
  t.diagnostic(`${DELTAS.length} deltas went out as ${chunks.length} text chunk(s)`)
  assert.ok(chunks.length <= 2, `${chunks.length} chunks for deltas that came together`)
  assert.deepEqual(kinds(frames), ['processing', 'chunk:text', 'complete'])

  // What was stored is the answer, whole.
  const conversationId = terminal(frames).metadata!.conversation_id as string
  const history = await client.ask('get_history', { conversation_id: conversationId })
  const stored = (history.result!.events as { type: string; content: string }[]).at(-1)!
  assert.deepEqual([stored.type, stored.content], ['assistant_message', ANSWER])

  // The same request_id again: the stored answer, replayed.
  const replay = await client.chatAndWait('many', { text: 'Tell me' })
  assert.equal(terminal(replay).metadata!.replayed, true)
  assert.equal(textOf(replay), ANSWER)

  // Pieces of 5 bytes, a tick apart (characters and SSE frames cut): several chunks, the same text.
  llm.reply({ body: openAiStream(DELTAS), chunkSize: 5, delayMs: 1 })
  const cut = await client.chatAndWait('cut', { text: 'Tell me again' })
  assert.equal(textOf(cut), ANSWER)
  assert.ok(chunksOf(cut, 'text').length > 1, 'a stream that comes in pieces still streams')
})

test('a tool call between text deltas keeps its place; reasoning and text never share a chunk', async (t) => {
  const { llm, platform } = await setUp(t)
  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))

  const reasoning = ['The user ', 'wants ', '2 + 40.']
  const before = ['Let ', 'me ', 'check', '. ']
  const after = ['The ', 'sum ', 'is ', '42.']
  llm.reply({
    body: [
      sse({ role: 'assistant', content: '' }),
      ...reasoning.map((r) => sse({ reasoning_content: r })),
      ...before.map((content) => sse({ content })),
      sse({
        tool_calls: [
          { index: 0, id: 'call_1', type: 'function', function: { name: 'demo__add', arguments: '{"a":2,' } },
        ],
      }),
      sse({ tool_calls: [{ index: 0, function: { arguments: '"b":40}' } }] }),
      sse({}, 'tool_calls'),
      USAGE,
      'data: [DONE]\n\n',
    ].join(''),
  })
  llm.reply({ body: openAiStream(after) })
  const frames = await client.chatAndWait('tool', { text: 'Add 2 and 40' })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  assert.deepEqual(kinds(frames), [
    'processing',
    'chunk:reasoning',
    'chunk:text',
    'chunk:tool_call',
    'chunk:tool_result',
    'chunk:text',
    'complete',
  ])
  assert.equal(chunksOf(frames, 'reasoning').join(''), reasoning.join(''))
  assert.equal(textOf(frames), [...before, ...after].join(''))
  assert.ok(chunksOf(frames, 'text').length < before.length + after.length, 'fewer text chunks than deltas')
  // The text before the call is all sent before the call.
  const call = frames.findIndex((f) => f.chunk?.type === 'tool_call')
  assert.equal(textOf(frames.slice(0, call)), before.join(''))
})

test('websocket.text_coalesce_ms: deltas within the window are one chunk; a delta after it starts a new one; a long text goes out in bounded chunks', async (t) => {
  const WINDOW_MS = 300
  const { llm, platform } = await setUp(t, (config) => {
    config.websocket.text_coalesce_ms = WINDOW_MS
  })
  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))

  // One delta about every 40 ms, for longer than the window: each in a tick of its own.
  const deltas = Array.from({ length: 16 }, (_, i) => `word${i} `)
  const body = openAiStream(deltas)
  const pieceBytes = Math.ceil(Buffer.byteLength(body) / 20)
  llm.reply({ body, chunkSize: pieceBytes, delayMs: 40 })
  const started = performance.now()
  const frames = await client.chatAndWait('window', { text: 'Count' })
  const took = performance.now() - started
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  assert.equal(textOf(frames), deltas.join(''))
  const chunks = chunksOf(frames, 'text')
  t.diagnostic(`${deltas.length} deltas over ${Math.round(took)} ms went out as ${chunks.length} text chunks`)
  assert.ok(took > WINDOW_MS, 'the stream outlasted the window')
  // Deltas of many ticks were held together; the ones after the window went out apart.
  assert.ok(chunks.length >= 2, 'a delta after the window starts a new chunk')
  assert.ok(chunks.length <= deltas.length / 2, `${chunks.length} chunks: the window held deltas together`)
  assert.deepEqual(kinds(frames), ['processing', 'chunk:text', 'complete'])

  // A long answer in one piece: held text goes out once HELD_TEXT_CHARS of it wait, window or not.
  const long = Array.from({ length: 400 }, (_, i) => `${String(i).padStart(3, '0')} ${'x'.repeat(95)} `)
  llm.reply({ body: openAiStream(long) })
  const big = await client.chatAndWait('long', { text: 'Say a lot' })
  assert.equal(textOf(big), long.join(''))
  const sizes = chunksOf(big, 'text').map((chunk) => chunk.length)
  assert.equal(sizes.length, Math.ceil(long.join('').length / (HELD_TEXT_CHARS + 100)), sizes.join(' '))
  for (const size of sizes.slice(0, -1)) assert.ok(size >= HELD_TEXT_CHARS && size < HELD_TEXT_CHARS + 100)
})

test('the frames of one tick leave the socket in one write', async (t) => {
  const { llm, platform } = await setUp(t)
  const { url } = await listenOnPort(platform)
  const client = await Client.connect(url)
  onCleanup(t, () => Promise.resolve(client.close()))
  // The server's end of this connection, and each write it makes (one system call each).
  const [server] = [...platform.app.websocketServer.clients] as (WebSocket & { _socket: Socket })[]
  const socket = server!._socket as Socket & Record<'_write' | '_writev', (...args: unknown[]) => void>
  let writes = 0
  for (const method of ['_write', '_writev'] as const) {
    const original = socket[method].bind(socket)
    socket[method] = (...args: unknown[]) => {
      writes++
      original(...args)
    }
  }
  // Reasoning, then text, in one piece of the provider: two chunks of one tick.
  llm.reply({
    body: [
      sse({ role: 'assistant', content: '' }),
      sse({ reasoning_content: 'Easy.' }),
      ...['Hello ', 'there', '.'].map((content) => sse({ content })),
      sse({}, 'stop'),
      USAGE,
      'data: [DONE]\n\n',
    ].join(''),
  })
  const frames = await client.chatAndWait('writes', { text: 'Hi' })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  assert.deepEqual(
    frames.map((f) => f.chunk?.type ?? f.status),
    ['processing', 'reasoning', 'text', 'complete'],
  )
  t.diagnostic(`${frames.length} frames in ${writes} writes`)
  assert.ok(writes < frames.length, `${writes} writes for ${frames.length} frames`)
})
