// The openai wire against a real local HTTP server: the documented stream fixtures (whole and cut
// anywhere), the request it sends, and every way the exchange can fail.
import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ProviderConfig } from '../src/config/types.js'
import { errors, type PlatformError } from '../src/errors.js'
import { OpenAiProvider } from '../src/llm/openai.js'
import type { LlmEvent, LlmRequest } from '../src/llm/types.js'
import { fixture, openAiJson, openAiStream, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { ask, collect, run } from './helpers/llm-events.js'

let server: LlmServer
let providers: OpenAiProvider[] = []

beforeEach(async () => {
  server = await startLlmServer()
})

afterEach(async () => {
  // The server first: closing a pool waits for requests still in flight.
  await server.close()
  await Promise.all(providers.map((p) => p.close()))
  providers = []
})

function provider(opts: { key?: string; timeout?: number; baseUrl?: string } = {}): OpenAiProvider {
  const config: ProviderConfig = {
    name: 'stand-in',
    type: 'openai',
    base_url: opts.baseUrl ?? server.baseUrl,
    api_key: opts.key,
    model: 'configured-model',
    temperature: 0.2,
    max_tokens: 512,
    top_p: 0.9,
  }
  const p = new OpenAiProvider(config, {
    timeout: opts.timeout ?? 5,
    max_retries: 0,
    max_response_bytes: 8_388_608,
  })
  providers.push(p)
  return p
}

function chat(p: OpenAiProvider, request: LlmRequest = ask()): AsyncIterable<LlmEvent> {
  return p.chat(request, new AbortController().signal)
}

const TEXT_EVENTS: LlmEvent[] = [
  { type: 'text', text: 'Hello' },
  { type: 'text', text: ', wor' },
  { type: 'text', text: 'ld! ü€😀' },
  {
    type: 'done',
    finish_reason: 'stop',
    model: 'gpt-4o-mini',
    usage: { prompt_tokens: 21, completion_tokens: 7, total_tokens: 28 },
  },
]

const EXPECTED: Record<string, { events: LlmEvent[]; error?: Record<string, unknown> }> = {
  'openai-text.sse': { events: TEXT_EVENTS },
  'openai-tool-calls.sse': {
    events: [
      { type: 'tool_call', call: { id: 'call_a1', name: 'demo__add', arguments: '{"a": 2, "b": 40}' } },
      {
        type: 'tool_call',
        call: { id: 'call_b2', name: 'demo__echo', arguments: String.raw`{"text":"split \"quoted\""}` },
      },
      {
        type: 'done',
        finish_reason: 'tool_calls',
        model: 'gpt-4o-mini',
        usage: { prompt_tokens: 88, completion_tokens: 31, total_tokens: 119 },
      },
    ],
  },
  'groq-text-x_groq-usage.sse': {
    events: [
      { type: 'text', text: 'Forty-two.' },
      {
        type: 'done',
        finish_reason: 'stop',
        model: 'llama-3.3-70b-versatile',
        usage: { prompt_tokens: 15, completion_tokens: 4, total_tokens: 19 },
      },
    ],
  },
  'openai-error-midstream.sse': {
    events: [{ type: 'text', text: 'Partial' }],
    error: {
      upstream_message: 'The server had an error while processing your request.',
      upstream_type: 'server_error',
    },
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
  assert.match(result.error.message, /The server had an error while processing your request\./)
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

test('openai-text.sse cut inside each multi-byte character and inside a frame', async () => {
  const body = Buffer.from(fixture('openai-text.sse'))
  const cuts: number[] = []
  for (const char of ['ü', '€', '😀']) {
    const at = body.indexOf(char)
    assert.ok(at > 0)
    for (let k = 1; k < Buffer.byteLength(char); k++) cuts.push(at + k)
  }
  cuts.push(body.indexOf('"content":"Hello"') + 8, body.indexOf('data: [DONE]') + 3)
  const p = provider()
  for (const cut of cuts) {
    server.reply({ body, chunkSize: cut, delayMs: 5 })
    await assertFixture('openai-text.sse', chat(p))
  }
})

test('text events arrive while the rest of the stream is still on its way', async () => {
  const body = openAiStream(['early', ' late'])
  const rest = body.indexOf('data:', body.indexOf('early'))
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

test('a stream that ends after its finish but without [DONE] is complete', async () => {
  const body = fixture('openai-text.sse')
  server.reply({ body: body.slice(0, body.indexOf('data: [DONE]')) })
  assert.deepEqual(await collect(chat(provider())), TEXT_EVENTS)
})

test('a stream that ends without [DONE] or a finish is broken', async () => {
  const body = fixture('openai-text.sse')
  server.reply({ body: body.slice(0, body.indexOf('data:', body.indexOf(', wor'))) })
  const { events, error } = await run(chat(provider()))
  assert.deepEqual(events, [
    { type: 'text', text: 'Hello' },
    { type: 'text', text: ', wor' },
  ])
  assert.ok(error instanceof errors.LLM_STREAM_BROKEN)
})

test('a data line that is not JSON is a bad response', async () => {
  server.reply({ body: 'data: {"choices": [\n\n' })
  const { error } = await run(chat(provider()))
  assert.ok(error instanceof errors.LLM_BAD_RESPONSE)
  assert.equal(error.code, 'LLM_BAD_RESPONSE')
  assert.equal(error.statusCode, 502)
})

test('a non-streaming reply gives its whole text, then done with usage', async () => {
  const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }
  server.reply({ json: openAiJson('Hi there', { usage, model: 'reported-model' }) })
  assert.deepEqual(await collect(chat(provider(), ask(false))), [
    { type: 'text', text: 'Hi there' },
    { type: 'done', finish_reason: 'stop', model: 'reported-model', usage },
  ])
})

test('a non-streaming reply with tool calls reports tool_calls even when it says stop (Ollama)', async () => {
  server.reply({
    json: {
      model: 'llama3.1',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'call_1', type: 'function', function: { name: 'demo__add', arguments: '{"a":1}' } },
            ],
          },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 },
    },
  })
  assert.deepEqual(await collect(chat(provider(), ask(false))), [
    { type: 'tool_call', call: { id: 'call_1', name: 'demo__add', arguments: '{"a":1}' } },
    {
      type: 'done',
      finish_reason: 'tool_calls',
      model: 'llama3.1',
      usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 },
    },
  ])
})

test('the stand-in answers by default, streaming or not', async () => {
  const p = provider()
  for (const stream of [true, false]) {
    const events = await collect(chat(p, { ...ask(stream), model: 'asked-model' }))
    const text = events.map((e) => (e.type === 'text' ? e.text : '')).join('')
    assert.equal(text, 'Hello from the stand-in.')
    assert.deepEqual(events.at(-1), {
      type: 'done',
      finish_reason: 'stop',
      model: 'asked-model',
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    })
  }
})

test('the streaming request carries the model override, messages, tools, usage option and key', async () => {
  const schema = {
    type: 'object',
    properties: { a: { type: 'number' }, b: { type: 'number' } },
    required: ['a', 'b'],
  }
  const p = provider({ key: 'sk-test-123', baseUrl: server.baseUrl.replace('/v1', '/openai/v1') })
  await collect(
    chat(p, {
      model: 'override-model',
      stream: true,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Add 2 and 40' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ id: 'call_a1', name: 'demo__add', arguments: '{"a":2,"b":40}' }],
        },
        { role: 'tool', tool_call_id: 'call_a1', content: '42' },
        { role: 'assistant', content: 'It is 42.' },
        { role: 'user', content: 'Thanks' },
      ],
      tools: [{ name: 'demo__add', description: 'Adds two numbers', input_schema: schema }],
    }),
  )
  const [req] = server.requests
  assert.equal(req!.method, 'POST')
  assert.equal(req!.url, '/openai/v1/chat/completions')
  assert.equal(req!.headers.authorization, 'Bearer sk-test-123')
  assert.deepEqual(req!.body, {
    model: 'override-model',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Add 2 and 40' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_a1', type: 'function', function: { name: 'demo__add', arguments: '{"a":2,"b":40}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a1', content: '42' },
      { role: 'assistant', content: 'It is 42.' },
      { role: 'user', content: 'Thanks' },
    ],
    temperature: 0.2,
    top_p: 0.9,
    max_tokens: 512,
    tools: [
      {
        type: 'function',
        function: { name: 'demo__add', description: 'Adds two numbers', parameters: schema },
      },
    ],
    stream: true,
    stream_options: { include_usage: true },
  })
})

test('the non-streaming request has the configured model, no tools, no usage option and no key', async () => {
  await collect(chat(provider(), { ...ask(false), tools: [] }))
  const [req] = server.requests
  assert.equal(req!.url, '/v1/chat/completions')
  assert.equal(req!.headers.authorization, undefined)
  assert.deepEqual(req!.body, {
    model: 'configured-model',
    messages: [{ role: 'user', content: 'Hi' }],
    temperature: 0.2,
    top_p: 0.9,
    max_tokens: 512,
    stream: false,
  })
})

test('a 429 JSON error is an upstream error with its status and message', async () => {
  const message = 'Rate limit reached for gpt-4o-mini'
  server.reply({ status: 429, json: { error: { message, type: 'requests', code: 'rate_limit_exceeded' } } })
  const { events, error } = await run(chat(provider()))
  assert.deepEqual(events, [])
  assert.ok(error instanceof errors.LLM_UPSTREAM_ERROR)
  assert.equal(error.code, 'LLM_UPSTREAM_ERROR')
  assert.equal(error.statusCode, 502)
  assert.deepEqual(error.data, { upstream_status: 429, upstream_message: message })
  assert.match(error.message, /Rate limit reached for gpt-4o-mini/)
})

test('a 500 with a text body is an upstream error quoting the text', async () => {
  server.reply({ status: 500, headers: { 'content-type': 'text/plain' }, body: 'upstream exploded\n' })
  const { error } = await run(chat(provider()))
  assert.ok(error instanceof errors.LLM_UPSTREAM_ERROR)
  assert.deepEqual(error.data, { upstream_status: 500, upstream_message: 'upstream exploded' })
  assert.match(error.message, /upstream exploded/)
})

test('the api key never appears in an error, even when the provider quotes it', async () => {
  server.reply({ status: 401, json: { error: { message: 'Incorrect API key provided: sk-secret-123.' } } })
  const { error } = await run(chat(provider({ key: 'sk-secret-123' })))
  assert.ok(error instanceof errors.LLM_UPSTREAM_ERROR)
  assert.doesNotMatch(JSON.stringify({ message: error.message, data: error.data }), /sk-secret-123/)
  assert.match(error.message, /Incorrect API key provided/)
})

// undici's header and body timers tick about every half second, so a 0.3 s timeout fires within
// about 1 s; the bounds below leave room for that.
test('a provider that stops sending mid-stream times out', async () => {
  const body = openAiStream(['one', ' two'])
  server.reply({ body: body.slice(0, body.indexOf('data:', body.indexOf('one'))), hang: true })
  const started = Date.now()
  const { events, error } = await run(chat(provider({ timeout: 0.3 })))
  assert.deepEqual(events, [{ type: 'text', text: 'one' }])
  assert.ok(error instanceof errors.LLM_TIMEOUT, `expected errors.LLM_TIMEOUT, got ${String(error)}`)
  assert.equal(error.code, 'LLM_TIMEOUT')
  assert.equal(error.statusCode, 504)
  assert.ok(Date.now() - started < 2000)
})

test('a provider that sends no headers times out', async () => {
  server.reply({ body: openAiStream(['late']), delayMs: 2500 })
  const started = Date.now()
  const { error } = await run(chat(provider({ timeout: 0.3 })))
  assert.ok(error instanceof errors.LLM_TIMEOUT, `expected errors.LLM_TIMEOUT, got ${String(error)}`)
  assert.ok(Date.now() - started < 2000)
})

test('aborting mid-stream throws an AbortError at once and closes the connection', async () => {
  const body = openAiStream(['one', ' two'])
  server.reply({ body: body.slice(0, body.indexOf('data:', body.indexOf('one'))), hang: true })
  const controller = new AbortController()
  const events = provider().chat(ask(), controller.signal)[Symbol.asyncIterator]()
  assert.deepEqual((await events.next()).value, { type: 'text', text: 'one' })
  const next = events.next()
  const started = Date.now()
  controller.abort()
  await assert.rejects(next, { name: 'AbortError' })
  assert.ok(Date.now() - started < 500)
  await server.waitForClosedEarly(1)
})

test('aborting while waiting for headers throws an AbortError and closes the connection', async () => {
  server.reply({ body: openAiStream(['late']), delayMs: 1000 })
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 50)
  const { error } = await run(provider().chat(ask(), controller.signal))
  assert.equal(error?.name, 'AbortError')
  await server.waitForClosedEarly(1)
})

test('a connection lost mid-stream is a broken stream', async () => {
  const body = openAiStream(['one', ' two'])
  server.reply({ body: body.slice(0, body.indexOf('data:', body.indexOf('one'))), hang: true })
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

test('a refused connection is an upstream error naming the cause', async () => {
  const closed = await startLlmServer()
  await closed.close()
  const { error } = await run(chat(provider({ baseUrl: closed.baseUrl })))
  assert.ok(
    error instanceof errors.LLM_UPSTREAM_ERROR,
    `expected errors.LLM_UPSTREAM_ERROR, got ${String(error)}`,
  )
  assert.deepEqual(error.data, { cause: 'ECONNREFUSED' })
})
