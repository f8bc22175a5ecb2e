// The anthropic wire against a real local HTTP server: the documented stream fixtures (whole and
// cut anywhere), the request it sends (system, alternating messages, tool blocks, headers), the
// non-streaming reply, and the ways the exchange can fail.
import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ProviderConfig } from '../src/config/types.js'
import { errors, type PlatformError } from '../src/errors.js'
import { AnthropicProvider } from '../src/llm/anthropic.js'
import type { LlmEvent, LlmRequest } from '../src/llm/types.js'
import {
  anthropicJson,
  anthropicStream,
  anthropicToolUse,
  fixture,
  startLlmServer,
  type LlmServer,
} from './helpers/llm-server.js'
import { ask, collect, run } from './helpers/llm-events.js'

let server: LlmServer
let providers: AnthropicProvider[] = []

beforeEach(async () => {
  server = await startLlmServer()
})

afterEach(async () => {
  // The server first: closing a pool waits for requests still in flight.
  await server.close()
  await Promise.all(providers.map((p) => p.close()))
  providers = []
})

function provider(
  opts: { key?: string; timeout?: number; baseUrl?: string; top_p?: number } = {},
): AnthropicProvider {
  const config: ProviderConfig = {
    name: 'claude',
    type: 'anthropic',
    base_url: opts.baseUrl ?? server.baseUrl,
    api_key: opts.key,
    model: 'configured-model',
    temperature: 0.2,
    max_tokens: 512,
    top_p: opts.top_p ?? 0.9,
  }
  const p = new AnthropicProvider(config, {
    timeout: opts.timeout ?? 5,
    max_retries: 0,
    max_response_bytes: 8_388_608,
  })
  providers.push(p)
  return p
}

function chat(p: AnthropicProvider, request: LlmRequest = ask()): AsyncIterable<LlmEvent> {
  return p.chat(request, new AbortController().signal)
}

const EXPECTED: Record<string, { events: LlmEvent[]; error?: Record<string, unknown> }> = {
  'anthropic-tool-use.sse': {
    events: [
      { type: 'text', text: 'Let me add those.' },
      { type: 'tool_call', call: { id: 'toolu_01', name: 'demo__add', arguments: '{"a": 2, "b": 40}' } },
      {
        type: 'done',
        finish_reason: 'tool_calls',
        model: 'claude-sonnet-4-5',
        usage: { prompt_tokens: 412, completion_tokens: 57, total_tokens: 469 },
      },
    ],
  },
  'anthropic-overloaded-midstream.sse': {
    events: [{ type: 'text', text: 'Partial ans' }],
    error: { upstream_message: 'Overloaded', upstream_type: 'overloaded_error' },
  },
}

async function assertFixture(name: string, events: AsyncIterable<LlmEvent>): Promise<void> {
  const expected = EXPECTED[name]!
  const result = await run(events)
  assert.deepEqual(result.events, expected.events)
  if (!expected.error) {
    assert.equal(result.error, undefined)
    return
  }
  assert.ok(
    result.error instanceof errors.LLM_STREAM_BROKEN,
    `expected errors.LLM_STREAM_BROKEN, got ${String(result.error)}`,
  )
  assert.equal(result.error.code, 'LLM_STREAM_BROKEN')
  assert.equal(result.error.statusCode, 502)
  assert.deepEqual(result.error.data, expected.error)
  assert.match(result.error.message, /Overloaded/)
}

for (const name of Object.keys(EXPECTED)) {
  for (const size of [undefined, 1, 2, 3, 5, 7, 13]) {
    void test(`${name} ${size ? `in ${size}-byte pieces` : 'whole'}`, async () => {
      // The pause between pieces makes each one reach the parser on its own.
      server.reply({ body: fixture(name), ...(size ? { chunkSize: size, delayMs: 1 } : {}) })
      await assertFixture(name, chat(provider()))
    })
  }
}

test('anthropic-tool-use.sse cut inside each input_json_delta fragment and inside an event name', async () => {
  const body = Buffer.from(fixture('anthropic-tool-use.sse'))
  const cuts = [
    body.indexOf('{\\"a\\": 2') + 3,
    body.indexOf('\\"b\\": 40}') + 6,
    body.indexOf('event: message_delta') + 9,
    body.indexOf('"type":"message_stop"') + 10,
  ]
  const p = provider()
  for (const cut of cuts) {
    assert.ok(cut > 10)
    server.reply({ body, chunkSize: cut, delayMs: 5 })
    await assertFixture('anthropic-tool-use.sse', chat(p))
  }
})

test('multi-byte text split anywhere arrives whole', async () => {
  const body = anthropicStream(['Grüße ', '€ 😀'])
  for (const size of [1, 2, 3]) {
    server.reply({ body, chunkSize: size, delayMs: 1 })
    const events = await collect(chat(provider()))
    assert.deepEqual(
      events.filter((e) => e.type === 'text'),
      [
        { type: 'text', text: 'Grüße ' },
        { type: 'text', text: '€ 😀' },
      ],
    )
  }
})

test('text events arrive while the rest of the stream is still on its way', async () => {
  const body = anthropicStream(['early', ' late'])
  const rest = body.indexOf('event:', body.indexOf('early'))
  server.reply({ body, chunkSize: Buffer.byteLength(body.slice(0, rest)), delayMs: 300 })
  let firstText = 0
  const texts: string[] = []
  for await (const e of chat(provider())) {
    if (e.type === 'text') {
      firstText ||= Date.now()
      texts.push(e.text)
    }
    if (e.type === 'done') assert.ok(Date.now() - firstText >= 250, 'the first text came with the end')
  }
  assert.deepEqual(texts, ['early', ' late'])
})

test('a last message_stop without its blank line, or without any newline, still ends the message', async () => {
  const body = anthropicStream(['done'])
  const p = provider()
  for (const cut of [body.slice(0, -1), body.trimEnd()]) {
    server.reply({ body: cut })
    const events = await collect(chat(p))
    assert.deepEqual(events[0], { type: 'text', text: 'done' })
    assert.equal(events.at(-1)?.type, 'done')
  }
})

test('a stream that ends without message_stop is broken, and its half tool call is never yielded', async () => {
  const body = fixture('anthropic-tool-use.sse')
  server.reply({ body: body.slice(0, body.indexOf('event: content_block_stop', body.indexOf('"b\\"'))) })
  const { events, error } = await run(chat(provider()))
  assert.deepEqual(events, [{ type: 'text', text: 'Let me add those.' }])
  assert.ok(
    error instanceof errors.LLM_STREAM_BROKEN,
    `expected errors.LLM_STREAM_BROKEN, got ${String(error)}`,
  )
  assert.equal(error.statusCode, 502)
})

test('a stream that ends after message_delta but before message_stop is broken too', async () => {
  const body = fixture('anthropic-tool-use.sse')
  server.reply({ body: body.slice(0, body.indexOf('event: message_stop')) })
  const { events, error } = await run(chat(provider()))
  assert.equal(
    events.some((e) => e.type === 'tool_call'),
    false,
  )
  assert.ok(error instanceof errors.LLM_STREAM_BROKEN)
})

test('a data line that is not JSON is a bad response', async () => {
  server.reply({ body: 'event: message_start\ndata: {"type": "message_start",\n\n' })
  const { error } = await run(chat(provider()))
  assert.ok(
    error instanceof errors.LLM_BAD_RESPONSE,
    `expected errors.LLM_BAD_RESPONSE, got ${String(error)}`,
  )
  assert.equal(error.code, 'LLM_BAD_RESPONSE')
  assert.equal(error.statusCode, 502)
})

test('a tool_use block without a name is a bad response', async () => {
  const body = anthropicToolUse([{ id: 'toolu_x', name: '', input: { a: 1 } }])
  server.reply({ body })
  const { error } = await run(chat(provider()))
  assert.ok(
    error instanceof errors.LLM_BAD_RESPONSE,
    `expected errors.LLM_BAD_RESPONSE, got ${String(error)}`,
  )
})

test('usage: cached prompt tokens count as prompt tokens; the latest output count wins', async () => {
  const frame = (data: Record<string, unknown>): string =>
    `event: ${String(data.type)}\ndata: ${JSON.stringify(data)}\n\n`
  server.reply({
    body: [
      frame({
        type: 'message_start',
        message: {
          model: 'claude-cached',
          content: [],
          usage: {
            input_tokens: 5,
            cache_creation_input_tokens: 100,
            cache_read_input_tokens: 1000,
            output_tokens: 1,
          },
        },
      }),
      frame({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
      frame({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'ok' } }),
      frame({ type: 'content_block_stop', index: 0 }),
      frame({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 3 } }),
      frame({ type: 'message_delta', delta: {}, usage: { output_tokens: 9 } }),
      frame({ type: 'message_stop' }),
    ].join(''),
  })
  assert.deepEqual(await collect(chat(provider())), [
    { type: 'text', text: 'ok' },
    {
      type: 'done',
      finish_reason: 'stop',
      model: 'claude-cached',
      usage: { prompt_tokens: 1105, completion_tokens: 9, total_tokens: 1114 },
    },
  ])
})

test('thinking is reasoning; blocks that are not ours (server tools) and unknown events are skipped', async () => {
  const frame = (data: Record<string, unknown>): string =>
    `event: ${String(data.type)}\ndata: ${JSON.stringify(data)}\n\n`
  server.reply({
    body: [
      frame({
        type: 'message_start',
        message: { model: 'claude-x', content: [], usage: { input_tokens: 7 } },
      }),
      frame({ type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }),
      frame({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'hmm' } }),
      frame({ type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig' } }),
      frame({ type: 'content_block_stop', index: 0 }),
      frame({
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: {} },
      }),
      frame({
        type: 'content_block_delta',
        index: 1,
        delta: { type: 'input_json_delta', partial_json: '{"q":1}' },
      }),
      frame({ type: 'content_block_stop', index: 1 }),
      frame({ type: 'something_new', detail: 1 }),
      frame({ type: 'content_block_start', index: 2, content_block: { type: 'text', text: '' } }),
      frame({ type: 'content_block_delta', index: 2, delta: { type: 'text_delta', text: 'Answer.' } }),
      frame({ type: 'content_block_stop', index: 2 }),
      frame({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 4 } }),
      frame({ type: 'message_stop' }),
    ].join(''),
  })
  assert.deepEqual(await collect(chat(provider())), [
    { type: 'reasoning', text: 'hmm' },
    { type: 'text', text: 'Answer.' },
    { type: 'reasoning_part', part: { type: 'thinking', thinking: 'hmm', signature: 'sig' } },
    {
      type: 'done',
      finish_reason: 'stop',
      model: 'claude-x',
      usage: { prompt_tokens: 7, completion_tokens: 4, total_tokens: 11 },
    },
  ])
})

test('stop reasons map to finish reasons', async () => {
  const cases: [string, string][] = [
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['refusal', 'content_filter'],
    ['tool_use', 'tool_calls'],
  ]
  const p = provider()
  for (const [stop_reason, finish] of cases) {
    server.reply({ body: anthropicStream(['x'], { stop_reason }) })
    const events = await collect(chat(p))
    const done = events.at(-1)!
    assert.ok(done.type === 'done')
    assert.equal(done.finish_reason, finish, stop_reason)
  }
})

test('a tool call with no input deltas has {} as its arguments; several calls keep their order', async () => {
  server.reply({
    body: anthropicToolUse(
      [
        { id: 'toolu_a', name: 'demo__echo', input: '' },
        { id: 'toolu_b', name: 'demo__add', input: { a: 1, b: 2 } },
      ],
      { text: 'Two tools.' },
    ),
  })
  const events = await collect(chat(provider()))
  assert.deepEqual(events.slice(0, 3), [
    { type: 'text', text: 'Two tools.' },
    { type: 'tool_call', call: { id: 'toolu_a', name: 'demo__echo', arguments: '{}' } },
    { type: 'tool_call', call: { id: 'toolu_b', name: 'demo__add', arguments: '{"a":1,"b":2}' } },
  ])
  assert.equal(events[3]?.type === 'done' && events[3].finish_reason, 'tool_calls')
})

test('a non-streaming reply gives its text blocks as one text, its tool calls, then done with usage', async () => {
  server.reply({
    json: {
      ...anthropicJson('', { model: 'claude-reported', usage: { input_tokens: 30, output_tokens: 12 } }),
      content: [
        { type: 'text', text: 'Adding. ' },
        { type: 'tool_use', id: 'toolu_9', name: 'demo__add', input: { a: 2, b: 40 } },
        { type: 'text', text: 'Done soon.' },
        { type: 'tool_use', id: 'toolu_10', name: 'demo__echo', input: {} },
      ],
      stop_reason: 'tool_use',
    },
  })
  assert.deepEqual(await collect(chat(provider(), ask(false))), [
    { type: 'text', text: 'Adding. Done soon.' },
    { type: 'tool_call', call: { id: 'toolu_9', name: 'demo__add', arguments: '{"a":2,"b":40}' } },
    { type: 'tool_call', call: { id: 'toolu_10', name: 'demo__echo', arguments: '{}' } },
    {
      type: 'done',
      finish_reason: 'tool_calls',
      model: 'claude-reported',
      usage: { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 },
    },
  ])
})

test('a streaming request answered with a whole JSON message (a proxy) is read as one', async () => {
  server.reply({ json: anthropicJson('Whole.', { model: 'claude-proxy' }) })
  assert.deepEqual(await collect(chat(provider())), [
    { type: 'text', text: 'Whole.' },
    {
      type: 'done',
      finish_reason: 'stop',
      model: 'claude-proxy',
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    },
  ])
})

test('a non-streaming reply without content is a bad response', async () => {
  server.reply({ json: { type: 'message', model: 'claude-x' } })
  const { error } = await run(chat(provider(), ask(false)))
  assert.ok(
    error instanceof errors.LLM_BAD_RESPONSE,
    `expected errors.LLM_BAD_RESPONSE, got ${String(error)}`,
  )
})

test('an error object with status 200 is an upstream error', async () => {
  server.reply({ json: { type: 'error', error: { type: 'api_error', message: 'Internal server error' } } })
  const { events, error } = await run(chat(provider(), ask(false)))
  assert.deepEqual(events, [])
  assert.ok(
    error instanceof errors.LLM_UPSTREAM_ERROR,
    `expected errors.LLM_UPSTREAM_ERROR, got ${String(error)}`,
  )
  assert.deepEqual(error.data, { upstream_status: 200, upstream_message: 'Internal server error' })
})

test('the streaming request: endpoint, headers, system, alternating messages with tool blocks, tools', async () => {
  const schema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    properties: { a: { type: 'number' }, b: { type: 'number' } },
    required: ['a', 'b'],
  }
  const p = provider({ key: 'sk-ant-test-123', baseUrl: server.baseUrl.replace('/v1', '/proxy/v1') })
  server.reply({ body: anthropicStream(['ok']) })
  await collect(
    chat(p, {
      model: 'override-model',
      stream: true,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'system', content: 'Earlier talk, summarised.' },
        { role: 'user', content: 'Add 2 and 40, and echo hi' },
        {
          role: 'assistant',
          content: 'Let me check.',
          tool_calls: [
            { id: 'toolu_a1', name: 'demo__add', arguments: '{"a":2,"b":40}' },
            { id: 'toolu_b2', name: 'demo__echo', arguments: '{"text": ' },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_a1', content: '42' },
        { role: 'tool', tool_call_id: 'toolu_b2', content: 'Invalid JSON in the arguments' },
        { role: 'assistant', content: 'It is 42.' },
        { role: 'assistant', content: '' },
        { role: 'user', content: 'Thanks' },
        { role: 'user', content: 'And no tools now' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ id: 'toolu_c3', name: 'demo__echo', arguments: '{}' }],
        },
        { role: 'tool', tool_call_id: 'toolu_c3', content: '' },
      ],
      tools: [
        { name: 'demo__add', description: 'Adds two numbers', input_schema: schema },
        { name: 'demo__ping', description: '', input_schema: {} },
      ],
    }),
  )
  const [req] = server.requests
  assert.equal(req!.method, 'POST')
  assert.equal(req!.url, '/proxy/v1/messages')
  assert.equal(req!.headers['x-api-key'], 'sk-ant-test-123')
  assert.equal(req!.headers['anthropic-version'], '2023-06-01')
  assert.equal(req!.headers['content-type'], 'application/json')
  assert.equal(req!.headers.authorization, undefined)
  assert.deepEqual(req!.body, {
    model: 'override-model',
    max_tokens: 512,
    system: 'Be brief.\n\nEarlier talk, summarised.',
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Add 2 and 40, and echo hi' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Let me check.' },
          { type: 'tool_use', id: 'toolu_a1', name: 'demo__add', input: { a: 2, b: 40 } },
          { type: 'tool_use', id: 'toolu_b2', name: 'demo__echo', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_a1', content: '42' },
          { type: 'tool_result', tool_use_id: 'toolu_b2', content: 'Invalid JSON in the arguments' },
        ],
      },
      { role: 'assistant', content: [{ type: 'text', text: 'It is 42.' }] },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Thanks' },
          { type: 'text', text: 'And no tools now' },
        ],
      },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_c3', name: 'demo__echo', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_c3' }] },
    ],
    // Claude models since Opus 4.1 refuse temperature and top_p together; a name that does not
    // say which Claude it is gets what every one takes (src/llm/models.ts).
    temperature: 0.2,
    tools: [
      {
        name: 'demo__add',
        description: 'Adds two numbers',
        input_schema: {
          type: 'object',
          properties: { a: { type: 'number' }, b: { type: 'number' } },
          required: ['a', 'b'],
        },
      },
      { name: 'demo__ping', input_schema: { type: 'object', properties: {} } },
    ],
    stream: true,
  })
})

test('the non-streaming request: configured model, no system, no tools, no key, no top_p at 1', async () => {
  server.reply({ json: anthropicJson('Hi there') })
  await collect(chat(provider({ top_p: 1 }), { ...ask(false), tools: [] }))
  const [req] = server.requests
  assert.equal(req!.url, '/v1/messages')
  assert.equal(req!.headers['x-api-key'], undefined)
  assert.equal(req!.headers['anthropic-version'], '2023-06-01')
  assert.deepEqual(req!.body, {
    model: 'configured-model',
    max_tokens: 512,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
    temperature: 0.2,
    stream: false,
  })
})

test('an error status is an upstream error with its status and Anthropic message', async () => {
  server.reply({
    status: 529,
    json: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
  })
  const { events, error } = await run(chat(provider()))
  assert.deepEqual(events, [])
  assert.ok(
    error instanceof errors.LLM_UPSTREAM_ERROR,
    `expected errors.LLM_UPSTREAM_ERROR, got ${String(error)}`,
  )
  assert.equal(error.code, 'LLM_UPSTREAM_ERROR')
  assert.equal(error.statusCode, 502)
  assert.deepEqual(error.data, { upstream_status: 529, upstream_message: 'Overloaded' })
  assert.match(error.message, /529 Overloaded/)
})

test('the api key never appears in an error, even when the provider quotes it', async () => {
  server.reply({
    status: 401,
    json: {
      type: 'error',
      error: { type: 'authentication_error', message: 'invalid x-api-key: sk-ant-secret' },
    },
  })
  const { error } = await run(chat(provider({ key: 'sk-ant-secret' })))
  assert.ok(error instanceof errors.LLM_UPSTREAM_ERROR)
  assert.doesNotMatch(JSON.stringify({ message: error.message, data: error.data }), /sk-ant-secret/)
  assert.match(error.message, /invalid x-api-key/)
})

test('an error event quoting the key is redacted too', async () => {
  const body = fixture('anthropic-overloaded-midstream.sse').replace(
    '"Overloaded"',
    '"Overloaded for sk-ant-secret"',
  )
  server.reply({ body })
  const { error } = await run(chat(provider({ key: 'sk-ant-secret' })))
  assert.ok(error instanceof errors.LLM_STREAM_BROKEN)
  assert.deepEqual(error.data, {
    upstream_message: 'Overloaded for [redacted]',
    upstream_type: 'overloaded_error',
  })
})

// undici's body timer ticks about every half second, so a 0.3 s timeout fires within about 1 s.
test('a provider that stops sending mid-stream times out', async () => {
  const body = anthropicStream(['one', ' two'])
  server.reply({ body: body.slice(0, body.indexOf('event:', body.indexOf('one'))), hang: true })
  const started = Date.now()
  const { events, error } = await run(chat(provider({ timeout: 0.3 })))
  assert.deepEqual(events, [{ type: 'text', text: 'one' }])
  assert.ok(error instanceof errors.LLM_TIMEOUT, `expected errors.LLM_TIMEOUT, got ${String(error)}`)
  assert.equal(error.statusCode, 504)
  assert.ok(Date.now() - started < 2000)
})

test('aborting mid-stream throws the signal reason at once and closes the connection', async () => {
  const body = anthropicStream(['one', ' two'])
  server.reply({ body: body.slice(0, body.indexOf('event:', body.indexOf('one'))), hang: true })
  const controller = new AbortController()
  const events = provider().chat(ask(), controller.signal)[Symbol.asyncIterator]()
  assert.deepEqual((await events.next()).value, { type: 'text', text: 'one' })
  const next = events.next()
  const started = Date.now()
  const reason = new Error('turn cancelled')
  controller.abort(reason)
  await assert.rejects(next, (err) => err === reason)
  assert.ok(Date.now() - started < 500)
  await server.waitForClosedEarly(1)
})

test('a connection lost mid-stream is a broken stream', async () => {
  const body = anthropicStream(['one', ' two'])
  server.reply({ body: body.slice(0, body.indexOf('event:', body.indexOf('one'))), hang: true })
  const events = chat(provider())[Symbol.asyncIterator]()
  assert.deepEqual((await events.next()).value, { type: 'text', text: 'one' })
  await server.close()
  await assert.rejects(events.next(), (err: PlatformError) => {
    assert.ok(
      err instanceof errors.LLM_STREAM_BROKEN,
      `expected errors.LLM_STREAM_BROKEN, got ${String(err)}`,
    )
    assert.equal(typeof err.data?.cause, 'string')
    return true
  })
})
