// The server half of the protocol as schemas (src/chat/protocol.ts) and the test client's check of
// every frame it receives (helpers/frames.ts): it rejects frames that drift from the schemas, with
// the schema errors; it accepts every kind of frame the real platform sends.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { SERVER_FRAME_EXAMPLES } from '../src/chat/protocol-doc.js'
import { frameProblems } from './helpers/frames.js'
import { openAiStream, openAiToolCalls, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { Client, demoServer, mcpSettled, startPlatform, terminal, type Platform } from './helpers/platform.js'

const chatComplete = {
  request_id: 'r1',
  status: 'complete',
  metadata: {
    conversation_id: 'c-1',
    model: 'm',
    tokens: 42,
    usage: { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 },
    finish_reason: 'stop',
    tool_hops: 0,
    duration_ms: 812,
  },
}

test('wrong frames are rejected, each with the schema error that says why', () => {
  const rejected: [string, unknown, RegExp, string?][] = [
    ['an unknown status', { request_id: 'r1', status: 'done' }, /\/status: "done" is not one of/],
    [
      'a chunk of an unknown type',
      { request_id: 'r1', status: 'chunk', chunk: { type: 'thought', data: 'hm' } },
      /\/chunk\/type: "thought" is not one of text, reasoning, tool_call, tool_result, progress/,
    ],
    [
      'a tool_result without is_error',
      {
        request_id: 'r1',
        status: 'chunk',
        chunk: { type: 'tool_result', data: { id: 'c', name: 'n', content: '' } },
      },
      /\/chunk\/data\/is_error: Expected required property/,
    ],
    [
      'a complete without request_id',
      { status: 'complete', result: { pong: true } },
      /\/request_id: Expected required property/,
    ],
    [
      'an error without code',
      { request_id: null, status: 'error', error: { type: 'INVALID_FRAME', message: 'Invalid frame: x' } },
      /\/error\/code: Expected required property/,
    ],
    [
      'an error whose type is not a code of the table',
      { request_id: 'r1', status: 'error', error: { code: 400, type: 'BAD_THING', message: 'x' } },
      /\/error\/type: Expected string to match/,
    ],
    [
      'a processing frame with a field the protocol does not define',
      { request_id: 'r1', status: 'processing', metadata: { conversation_id: 'c-1' }, model: 'm' },
      /\/model: Unexpected property/,
    ],
    [
      "a chat's complete with finish_reason tool_calls (the LLM's, never the turn's)",
      { ...chatComplete, metadata: { ...chatComplete.metadata, finish_reason: 'tool_calls' } },
      /\/metadata\/finish_reason/,
      'chat',
    ],
    [
      "a list_tools answered with another action's result",
      { request_id: 't1', status: 'complete', result: { pong: true } },
      /\/result\/tools: Expected required property/,
      'list_tools',
    ],
    [
      'a chat answered with a result instead of its metadata',
      { request_id: 'r1', status: 'complete', result: { pong: true } },
      /\/metadata: Expected required property/,
      'chat',
    ],
    [
      'a request_id the client could not have sent',
      { request_id: 'has space', status: 'cancelled', metadata: {} },
      /\/request_id: Expected string to match/,
    ],
  ]
  for (const [what, frame, why, action] of rejected) {
    const problems = frameProblems(frame, action)
    assert.ok(problems.length > 0, `${what}: accepted`)
    assert.ok(
      problems.some((p) => why.test(p)),
      `${what}: ${JSON.stringify(problems)}`,
    )
  }
})

test('the examples of docs/protocol.md fit, and frames of each documented variant', () => {
  const variants: [unknown, string][] = [
    [{ ...chatComplete, metadata: { ...chatComplete.metadata, replayed: true } }, 'chat'],
    [
      { ...chatComplete, metadata: { ...chatComplete.metadata, tokens: undefined, usage: undefined } },
      'chat',
    ],
    [{ request_id: 'g1', status: 'cancelled', metadata: {} }, 'get_prompt'],
    [
      {
        request_id: null,
        status: 'error',
        error: {
          code: 400,
          type: 'VALIDATION_FAILED',
          message: 'Parameter validation failed',
          data: {
            validation_errors: [{ field: 'payload.text', message: 'Expected string', type: 'type_error' }],
          },
        },
      },
      'chat',
    ],
    [
      {
        request_id: 'r2',
        status: 'chunk',
        chunk: { type: 'tool_call', data: { id: 'c', name: 'x__y', server: null, arguments: '{oops' } },
      },
      'chat',
    ],
  ]
  assert.ok(SERVER_FRAME_EXAMPLES.length >= 9)
  for (const [frame, action] of [...SERVER_FRAME_EXAMPLES, ...variants]) {
    // JSON as sent: what is undefined is absent.
    const sent = JSON.parse(JSON.stringify(frame)) as unknown
    assert.deepEqual(frameProblems(sent, action), [], JSON.stringify(frame))
  }
})

/**
 * A real Fastify app whose /ws/chat answers any frame with `reply`: a server that drifted. Its
 * clients are terminated, not closed: over injectWS the plain app's side of a closing handshake
 * waits for ws's 30 s close timeout.
 */
async function driftedServer(reply: (requestId: string) => unknown[]) {
  const app = Fastify()
  await app.register(websocket)
  app.get('/ws/chat', { websocket: true }, (socket) => {
    socket.on('message', (data) => {
      const { request_id } = JSON.parse((data as Buffer).toString('utf8')) as { request_id: string }
      for (const frame of reply(request_id)) socket.send(JSON.stringify(frame))
    })
  })
  await app.ready()
  return app
}

test('the test client fails the test on a frame that does not fit, naming what is wrong', async (t) => {
  const app = await driftedServer((id) => [
    { request_id: id, status: 'chunk', chunk: { type: 'text', data: 'fine' } },
    { request_id: id, status: 'complete', metadata: { conversation_id: 'c-1' } },
  ])
  t.after(() => app.close())
  const client = await Client.inject(app)
  await assert.rejects(client.act('chat', { text: 'hi' }), (err: Error) => {
    assert.match(err.message, /server frames that do not fit the protocol schemas/)
    assert.match(err.message, /\/metadata\/model: Expected required property/)
    assert.doesNotMatch(err.message, /"data":"fine"/, 'the frame that fits is not reported')
    return true
  })
  assert.throws(() => client.close(), /\/metadata\/tool_hops: Expected required property/)
  client.ws.terminate()
})

test('the test client checks a complete against the action it answers', async (t) => {
  const app = await driftedServer((id) => [{ request_id: id, status: 'complete', result: { pong: true } }])
  t.after(() => app.close())
  const client = await Client.inject(app)
  assert.equal((await client.ask('ping')).status, 'complete', 'a ping answered pong fits')
  await assert.rejects(client.ask('list_prompts'), /\/result\/prompts: Expected required property/)
  client.ws.terminate()
})

let llm: LlmServer
let platform: Platform
before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({ baseUrl: llm.baseUrl, servers: { demo: demoServer() } })
  await mcpSettled(platform.app)
})
after(async () => {
  await platform.close()
  await llm.close()
})

test('every kind of frame the real platform sends fits', async () => {
  const client = await Client.inject(platform.app)
  llm.reply({
    body: openAiToolCalls(
      [
        { id: 'call_add', name: 'demo__add', arguments: { a: 2, b: 40 } },
        { id: 'call_slow', name: 'demo__slow', arguments: { seconds: 0.2, steps: 2 } },
        { id: 'call_fail', name: 'demo__fail', arguments: {} },
        { id: 'call_nope', name: 'nowhere__tool', arguments: 'not json' },
      ],
      { text: 'Let me check. ' },
    ),
  })
  llm.reply({ body: openAiStream(['The sum ', 'is 42.']) })
  const turn = await client.act('chat', { text: 'Add 2 and 40' }, 'turn')
  const conversation = terminal(turn).metadata!.conversation_id as string
  const replay = await client.act('chat', { text: 'Add 2 and 40' }, 'turn')
  assert.equal(terminal(replay).metadata!.replayed, true)

  llm.reply({ body: openAiStream(['one ', 'two ', 'three']), chunkSize: 200, delayMs: 2000 })
  client.chat('slow', { text: 'count', conversation_id: conversation })
  await client.until((f) => f.some((x) => x.request_id === 'slow' && x.status === 'processing'))
  await client.ask('cancel', { target_request_id: 'slow' })
  assert.equal(terminal(await client.request('slow')).status, 'cancelled')

  for (const [action, payload] of [
    ['ping', {}],
    ['list_tools', {}],
    ['list_prompts', {}],
    ['get_prompt', { server: 'demo', name: 'greeting', arguments: { name: 'Ada' } }],
    ['list_resources', {}],
    ['read_resource', { uri: 'demo://readme' }],
    ['read_resource', { uri: 'demo://pixel.png' }],
    ['list_conversations', {}],
    ['get_history', { conversation_id: conversation }],
  ] as const) {
    assert.equal((await client.ask(action, payload)).status, 'complete', action)
  }
  client.send('not json')
  await client.request(null)
  assert.equal((await client.ask('chat', { text: '' })).status, 'error')
  assert.equal((await client.ask('get_history', { conversation_id: 'c-none' })).status, 'error')

  const kinds = new Set(
    client.frames.map((f) => (f.status === 'chunk' ? `chunk ${f.chunk!.type}` : f.status)),
  )
  assert.deepEqual([...kinds].sort(), [
    'cancelled',
    'chunk progress',
    'chunk text',
    'chunk tool_call',
    'chunk tool_result',
    'complete',
    'error',
    'processing',
  ])
  assert.deepEqual(client.invalid, [])
  client.close()
})
