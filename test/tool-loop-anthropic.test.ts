// The tool loop through the whole platform on the anthropic wire: /ws/chat, a local server speaking
// the messages API that asks for a tool with a tool_use block, and our demo MCP server over stdio.
import { after, before, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  anthropicDefaultReply,
  anthropicJson,
  anthropicStream,
  anthropicToolUse,
  fixture,
  startLlmServer,
  type LlmServer,
} from './helpers/llm-server.js'
import {
  Client,
  demoServer,
  mcpSettled,
  startPlatform,
  terminal,
  textOf,
  type Frame,
  type Platform,
} from './helpers/platform.js'

const API_KEY = 'sk-ant-tool-loop-test'

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  llm.setDefault(anthropicDefaultReply)
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (config) => {
      config.llm.providers = {
        claude: {
          type: 'anthropic',
          base_url: llm.baseUrl,
          api_key: API_KEY,
          model: 'claude-x',
          temperature: 0.5,
          max_tokens: 500,
          top_p: 1,
        },
      }
      config.llm.active = 'claude'
    },
    servers: { demo: demoServer() },
  })
  await mcpSettled(platform.app)
})
after(async () => {
  await platform.close()
  await llm.close()
})
beforeEach(() => {
  llm.requests.length = 0
})

const chunks = (frames: Frame[], type: string) =>
  frames.filter((f) => f.status === 'chunk' && f.chunk!.type === type).map((f) => f.chunk!.data)

test('tool_use asks for demo__add, the result goes back as a tool_result block, the answer completes', async () => {
  llm.reply({
    body: anthropicToolUse([{ id: 'toolu_01', name: 'demo__add', input: { a: 2, b: 40 } }], {
      text: 'Let me add those. ',
      usage: { input_tokens: 100, output_tokens: 20 },
    }),
  })
  llm.reply({
    body: anthropicStream(['The sum ', 'is 42.'], { usage: { input_tokens: 150, output_tokens: 8 } }),
  })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('claude-tools', { text: 'Add 2 and 40' })
  client.close()

  const done = terminal(frames)
  assert.equal(done.status, 'complete', JSON.stringify(frames))
  assert.equal(done.metadata!.tool_hops, 1)
  assert.equal(done.metadata!.finish_reason, 'stop')
  assert.equal(done.metadata!.model, 'claude-stand-in', 'the model the provider reported')
  assert.equal(done.metadata!.tokens, 278, 'usage of both calls: 120 + 158')
  assert.equal(textOf(frames), 'Let me add those. The sum is 42.')
  assert.deepEqual(chunks(frames, 'tool_call'), [
    { id: 'toolu_01', name: 'demo__add', server: 'demo', arguments: { a: 2, b: 40 } },
  ])
  assert.deepEqual(chunks(frames, 'tool_result'), [
    { id: 'toolu_01', name: 'demo__add', is_error: false, content: '42' },
  ])
  // Runs of one chunk type shown once: text deltas that come together are one chunk.
  const order = frames
    .filter((f) => f.status === 'chunk')
    .map((f) => f.chunk!.type)
    .filter((type, i, all) => type !== all[i - 1])
  assert.deepEqual(order.slice(order.indexOf('tool_call')), ['tool_call', 'tool_result', 'text'])

  assert.equal(llm.requests.length, 2)
  const [first, second] = llm.requests
  for (const req of [first!, second!]) {
    assert.equal(req.url, '/v1/messages')
    assert.equal(req.headers['x-api-key'], API_KEY)
    assert.equal(req.headers['anthropic-version'], '2023-06-01')
    assert.equal(req.body.model, 'claude-x')
    assert.equal(req.body.system, 'You are a test assistant.')
    assert.equal(req.body.stream, true)
  }
  const add = first!.body.tools.find((t: any) => t.name === 'demo__add')
  assert.equal(add.input_schema.type, 'object')
  assert.deepEqual(add.input_schema.required, ['a', 'b'])
  assert.equal(add.input_schema.$schema, undefined)
  assert.deepEqual(first!.body.messages, [
    { role: 'user', content: [{ type: 'text', text: 'Add 2 and 40' }] },
  ])
  assert.deepEqual(second!.body.messages, [
    { role: 'user', content: [{ type: 'text', text: 'Add 2 and 40' }] },
    {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Let me add those. ' },
        { type: 'tool_use', id: 'toolu_01', name: 'demo__add', input: { a: 2, b: 40 } },
      ],
    },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '42' }] },
  ])

  // The next turn's history carries the stored call and result as blocks again, roles alternating.
  llm.reply({ body: anthropicStream(['You are welcome.']) })
  const next = await Client.inject(platform.app)
  const conversationId = frames[0]!.metadata!.conversation_id as string
  const later = await next.chatAndWait('claude-after', { text: 'Thanks', conversation_id: conversationId })
  next.close()
  assert.equal(terminal(later).status, 'complete')
  const history = llm.requests.at(-1)!.body.messages
  assert.deepEqual(
    history.map((m: any) => [m.role, m.content.map((b: any) => b.type)]),
    [
      ['user', ['text']],
      ['assistant', ['text', 'tool_use']],
      ['user', ['tool_result']],
      ['assistant', ['text']],
      ['user', ['text']],
    ],
  )
  assert.deepEqual(history[3].content, [{ type: 'text', text: 'The sum is 42.' }])
})

test('with streaming off the loop runs the same; two results go back in one user message', async () => {
  llm.reply({
    json: anthropicJson('', {
      calls: [
        { id: 'toolu_07', name: 'demo__add', input: { a: 40, b: 2 } },
        { id: 'toolu_08', name: 'demo__echo', input: { text: 'hi' } },
      ],
    }),
  })
  llm.reply({ json: anthropicJson('Forty-two, and hi.') })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('claude-whole', { text: 'Add 40 and 2, echo hi', streaming: false })
  client.close()

  const done = terminal(frames)
  assert.equal(done.status, 'complete', JSON.stringify(frames))
  assert.equal(done.metadata!.tool_hops, 1)
  assert.equal(textOf(frames), 'Forty-two, and hi.')
  // The two calls run concurrently: their results come in whichever order they finish.
  const results = chunks(frames, 'tool_result').sort((a: any, b: any) => (a.id < b.id ? -1 : 1))
  assert.deepEqual(results, [
    { id: 'toolu_07', name: 'demo__add', is_error: false, content: '42' },
    { id: 'toolu_08', name: 'demo__echo', is_error: false, content: 'hi' },
  ])
  const [first, second] = llm.requests.map((r) => r.body)
  assert.equal(first.stream, false)
  // Anthropic wants every result of one reply in the single user message that follows it.
  assert.deepEqual(second.messages.slice(1), [
    {
      role: 'assistant',
      content: [
        { type: 'tool_use', id: 'toolu_07', name: 'demo__add', input: { a: 40, b: 2 } },
        { type: 'tool_use', id: 'toolu_08', name: 'demo__echo', input: { text: 'hi' } },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_07', content: '42' },
        { type: 'tool_result', tool_use_id: 'toolu_08', content: 'hi' },
      ],
    },
  ])
})

test('an error event mid-stream reaches the client as a 502 with the upstream type', async () => {
  llm.reply({ body: fixture('anthropic-overloaded-midstream.sse') })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('claude-overloaded', { text: 'Hello' })
  client.close()

  const end = terminal(frames)
  assert.equal(end.status, 'error', JSON.stringify(frames))
  assert.equal(end.error!.code, 502)
  assert.equal(end.error!.type, 'LLM_STREAM_BROKEN')
  assert.equal(end.error!.data?.upstream_type, 'overloaded_error')
  assert.equal(textOf(frames), 'Partial ans')
})
