// Retries and timeouts of the LLM HTTP exchange, through the openai wire against a real local
// server that misbehaves on purpose: what is retried, after how long, how often, and what is
// never retried (anything after the first byte of an answer).
import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ProviderConfig } from '../src/config/types.js'
import { errors, type PlatformError } from '../src/errors.js'
import { retryAfterMs, type Backoff } from '../src/llm/http.js'
import { OpenAiProvider } from '../src/llm/openai.js'
import type { LlmEvent, LlmRequest } from '../src/llm/types.js'
import { openAiStream, startLlmServer, type LlmServer } from './helpers/llm-server.js'

interface LogLine {
  obj: Record<string, unknown>
  msg: string
}

let server: LlmServer
let servers: LlmServer[] = []
let providers: OpenAiProvider[] = []
let logs: LogLine[] = []

beforeEach(async () => {
  server = await startLlmServer()
  servers = [server]
  logs = []
})

afterEach(async () => {
  // The servers first: closing a pool waits for requests still in flight.
  await Promise.all(servers.map((s) => s.close()))
  await Promise.all(providers.map((p) => p.close()))
  providers = []
})

/** Backoff of a few milliseconds, so any wait longer than that comes from the provider's ask. */
const QUICK: Partial<Backoff> = { baseMs: 2, capMs: 5 }

function provider(
  opts: {
    maxRetries?: number
    timeout?: number
    baseUrl?: string
    backoff?: Partial<Backoff>
    onRetry?: (line: LogLine) => void
  } = {},
): OpenAiProvider {
  const config: ProviderConfig = {
    name: 'stand-in',
    type: 'openai',
    base_url: opts.baseUrl ?? server.baseUrl,
    model: 'configured-model',
    temperature: 0.2,
    max_tokens: 512,
    top_p: 0.9,
  }
  const log = {
    debug: () => undefined,
    info: () => undefined,
    error: () => undefined,
    warn(obj: Record<string, unknown>, msg: string): void {
      logs.push({ obj, msg })
      opts.onRetry?.({ obj, msg })
    },
  }
  const p = new OpenAiProvider(
    config,
    { timeout: opts.timeout ?? 5, max_retries: opts.maxRetries ?? 2, max_response_bytes: 8_388_608 },
    { log, backoff: opts.backoff ?? QUICK },
  )
  providers.push(p)
  return p
}

const ASK: LlmRequest = { messages: [{ role: 'user', content: 'Hi' }], stream: true }

async function run(
  p: OpenAiProvider,
  signal = new AbortController().signal,
): Promise<{ events: LlmEvent[]; error?: PlatformError }> {
  const events: LlmEvent[] = []
  try {
    for await (const e of p.chat(ASK, signal)) events.push(e)
  } catch (error) {
    return { events, error: error as PlatformError }
  }
  return { events }
}

function text(events: LlmEvent[]): string {
  return events.map((e) => (e.type === 'text' ? e.text : '')).join('')
}

const DEFAULT_TEXT = 'Hello from the stand-in.'

test('a 429 with retry-after: 1 is retried after a second and succeeds', async () => {
  server.reply({ status: 429, headers: { 'retry-after': '1' }, json: { error: { message: 'slow down' } } })
  const { events, error } = await run(provider())
  assert.equal(error, undefined)
  assert.equal(text(events), DEFAULT_TEXT)
  assert.equal(server.requests.length, 2)
  const gap = server.requests[1]!.receivedAt - server.requests[0]!.receivedAt
  assert.ok(gap >= 900, `the retry came ${gap} ms after the first request`)
  assert.deepEqual(logs, [
    {
      obj: { upstream_status: 429, attempt: 1, max_retries: 2, delay_ms: 1000 },
      msg: 'LLM request failed; retrying',
    },
  ])
})

test('retry-after-ms is honoured, and preferred to retry-after', async () => {
  server.reply({ status: 503, headers: { 'retry-after-ms': '800', 'retry-after': '30' }, body: 'busy' })
  const { events, error } = await run(provider())
  assert.equal(error, undefined)
  assert.equal(text(events), DEFAULT_TEXT)
  assert.equal(server.requests.length, 2)
  const gap = server.requests[1]!.receivedAt - server.requests[0]!.receivedAt
  assert.ok(gap >= 700 && gap < 5000, `the retry came ${gap} ms after the first request`)
  assert.equal(logs[0]?.obj.delay_ms, 800)
})

test('408, 409, 429 and 5xx are retried; the answer after them is used', async () => {
  for (const status of [408, 409, 429, 500, 502, 503, 504, 529]) server.reply({ status, body: 'again' })
  const { events, error } = await run(provider({ maxRetries: 8 }))
  assert.equal(error, undefined)
  assert.equal(text(events), DEFAULT_TEXT)
  assert.equal(server.requests.length, 9)
  assert.deepEqual(
    logs.map((l) => [l.obj.upstream_status, l.obj.attempt]),
    [408, 409, 429, 500, 502, 503, 504, 529].map((s, i) => [s, i + 1]),
  )
})

test('a 500 more times than max_retries is an upstream error with the status and attempts', async () => {
  server.setDefault({ status: 500, json: { error: { message: 'The server had an error' } } })
  const { events, error } = await run(provider({ maxRetries: 2 }))
  assert.deepEqual(events, [])
  assert.ok(
    error instanceof errors.LLM_UPSTREAM_ERROR,
    `expected errors.LLM_UPSTREAM_ERROR, got ${String(error)}`,
  )
  assert.equal(error.statusCode, 502)
  assert.deepEqual(error.data, {
    upstream_status: 500,
    upstream_message: 'The server had an error',
    attempts: 3,
  })
  // Nothing arrives late either: the provider gave up, it is not retrying in the background.
  await sleep(50)
  assert.equal(server.requests.length, 3)
  assert.equal(logs.length, 2)
})

test('a 400 is not retried', async () => {
  server.reply({ status: 400, json: { error: { message: 'bad request' } } })
  const { error } = await run(provider({ maxRetries: 3 }))
  assert.ok(error instanceof errors.LLM_UPSTREAM_ERROR)
  assert.deepEqual(error.data, { upstream_status: 400, upstream_message: 'bad request' })
  assert.equal(server.requests.length, 1)
  assert.deepEqual(logs, [])
})

test('a retry-after longer than a minute is not waited for: the 429 is passed on at once', async () => {
  server.reply({ status: 429, headers: { 'retry-after': '120' }, json: { error: { message: 'quota' } } })
  const started = Date.now()
  const { error } = await run(provider({ maxRetries: 3 }))
  assert.ok(error instanceof errors.LLM_UPSTREAM_ERROR)
  assert.deepEqual(error.data, { upstream_status: 429, upstream_message: 'quota', retry_after: 120 })
  assert.equal(server.requests.length, 1)
  assert.ok(Date.now() - started < 1000)
})

test('retry-after is read as seconds or as an HTTP date', () => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  assert.equal(retryAfterMs({ 'retry-after': '3' }, now), 3000)
  assert.equal(retryAfterMs({ 'retry-after': '0.5' }, now), 500)
  assert.equal(retryAfterMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:07 GMT' }, now), 7000)
  assert.equal(retryAfterMs({ 'retry-after': 'Wed, 31 Dec 2025 23:00:00 GMT' }, now), 0)
  assert.equal(retryAfterMs({ 'retry-after-ms': '250', 'retry-after': '3' }, now), 250)
  assert.equal(retryAfterMs({ 'retry-after-ms': 'soon', 'retry-after': '3' }, now), 3000)
  assert.equal(retryAfterMs({ 'retry-after': 'whenever' }, now), undefined)
  assert.equal(retryAfterMs({}, now), undefined)
})

test('a connection closed before the status line is retried', async () => {
  server.reply({ destroy: 'before-status' })
  const { events, error } = await run(provider())
  assert.equal(error, undefined)
  assert.equal(text(events), DEFAULT_TEXT)
  assert.equal(server.requests.length, 2)
  assert.equal(logs[0]?.obj.cause, 'UND_ERR_SOCKET')
})

test('a refused connection is retried until the provider is back', async () => {
  const port = Number(new URL(server.baseUrl).port)
  await server.close()
  let restarting: Promise<void> | undefined
  // Each wait is up to 300 ms: time enough, but for a jitter near zero, to bring the server back.
  const p = provider({
    maxRetries: 5,
    backoff: { baseMs: 300, capMs: 300 },
    onRetry: () => {
      restarting ??= startLlmServer({ port }).then((s) => {
        servers.push(s)
        server = s
      })
    },
  })
  const { events, error } = await run(p)
  await restarting
  assert.equal(error, undefined)
  assert.equal(text(events), DEFAULT_TEXT)
  assert.equal(logs[0]?.obj.cause, 'ECONNREFUSED')
  assert.equal(server.requests.length, 1)
})

test('a connection refused every time is an upstream error with the cause and attempts', async () => {
  const port = Number(new URL(server.baseUrl).port)
  await server.close()
  const { error } = await run(provider({ baseUrl: `http://127.0.0.1:${port}/v1`, maxRetries: 2 }))
  assert.ok(
    error instanceof errors.LLM_UPSTREAM_ERROR,
    `expected errors.LLM_UPSTREAM_ERROR, got ${String(error)}`,
  )
  assert.deepEqual(error.data, { cause: 'ECONNREFUSED', attempts: 3 })
  assert.equal(logs.length, 2)
})

test('a stream that breaks after two chunks is a broken stream, never retried', async () => {
  const body = openAiStream(['one', ' two', ' three'])
  const cut = body.indexOf('data:', body.indexOf(' two'))
  // The role delta and 'one' in the first piece, ' two' in the second, then the connection is cut.
  const first = body.indexOf('data:', body.indexOf('"one"'))
  server.reply({ body: body.slice(0, cut), chunkSize: first, delayMs: 20, destroy: 'after-body' })
  const { events, error } = await run(provider({ maxRetries: 3 }))
  assert.deepEqual(events, [
    { type: 'text', text: 'one' },
    { type: 'text', text: ' two' },
  ])
  assert.ok(
    error instanceof errors.LLM_STREAM_BROKEN,
    `expected errors.LLM_STREAM_BROKEN, got ${String(error)}`,
  )
  assert.equal(error.statusCode, 502)
  assert.equal(typeof error.data?.cause, 'string')
  await sleep(100)
  assert.equal(server.requests.length, 1)
  assert.deepEqual(logs, [])
})

// undici checks its timers about every half second: a 0.3 s timeout fires within about 1 s.
test('a provider that stops sending mid-stream times out with 504, never retried', async () => {
  const body = openAiStream(['one', ' two'])
  server.reply({ body: body.slice(0, body.indexOf('data:', body.indexOf('one'))), hang: true })
  const started = Date.now()
  const { events, error } = await run(provider({ timeout: 0.3, maxRetries: 3 }))
  const elapsed = Date.now() - started
  assert.deepEqual(events, [{ type: 'text', text: 'one' }])
  assert.ok(error instanceof errors.LLM_TIMEOUT, `expected errors.LLM_TIMEOUT, got ${String(error)}`)
  assert.equal(error.statusCode, 504)
  assert.ok(elapsed >= 250 && elapsed < 2000, `timed out after ${elapsed} ms`)
  assert.equal(server.requests.length, 1)
})

test('a status line that never comes is retried; the last silence is a 504', async () => {
  server.reply({ body: openAiStream(['late']), delayMs: 3000 })
  server.reply({ body: openAiStream(['late']), delayMs: 3000 })
  const { error } = await run(provider({ timeout: 0.3, maxRetries: 1 }))
  assert.ok(error instanceof errors.LLM_TIMEOUT, `expected errors.LLM_TIMEOUT, got ${String(error)}`)
  assert.deepEqual(error.data, { attempts: 2 })
  assert.equal(server.requests.length, 2)
  assert.equal(logs[0]?.obj.cause, 'UND_ERR_HEADERS_TIMEOUT')
})

test('aborting during the wait before a retry ends at once with the reason; nothing more is sent', async () => {
  server.reply({ status: 429, headers: { 'retry-after': '5' }, body: 'later' })
  const controller = new AbortController()
  const reason = new Error('the client went away')
  let abortedAt = 0
  const p = provider({
    onRetry: () =>
      void sleep(50).then(() => {
        abortedAt = Date.now()
        controller.abort(reason)
      }),
  })
  const { error } = await run(p, controller.signal)
  assert.equal(error, reason)
  assert.ok(abortedAt > 0 && Date.now() - abortedAt < 200, 'the wait outlived the abort')
  await sleep(100)
  assert.equal(server.requests.length, 1)
})
