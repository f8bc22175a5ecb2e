// What a provider's failed or strange answer becomes: an error body is quoted cut and without
// anything that looks like a credential (stripCredentials, and through the platform: the frame
// and every log line), and an HTML page answered with 200 is a bad response, not a broken stream.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { stripCredentials } from '../src/llm/credentials.js'
import { startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { Client, startPlatform, terminal, type Platform } from './helpers/platform.js'

test('stripCredentials takes out what looks like a credential and keeps the words', () => {
  const cases: [string, string][] = [
    ['Authorization: Bearer abc.DEF-123_xyz~', 'Authorization: Bearer [redacted]'],
    ['header basic dXNlcjpwYXNz', 'header basic [redacted]'],
    ['Incorrect API key provided: sk-proj-AbCdEf0123456789xyz.', 'Incorrect API key provided: [redacted].'],
    ['key sk-ant-api03-AbCdEf0123456789 rejected', 'key [redacted] rejected'],
    ['groq gsk_0123456789abcdefABCDEF here', 'groq [redacted] here'],
    ['GET /v1/x?api_key=s3cr3t&model=m', 'GET /v1/x?api_key=[redacted]&model=m'],
    ['token=abc, access_token=def; ok', 'token=[redacted], access_token=[redacted]; ok'],
    ['{"api_key": "anything at all", "model": "gpt-4o"}', '{"api_key": "[redacted]", "model": "gpt-4o"}'],
    ['{"x-api-key":"a\\"b"}', '{"x-api-key":"[redacted]"}'],
    ['jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl end', 'jwt [redacted] end'],
    ['sig 0123456789abcdef0123456789abcdef0123 end', 'sig [redacted] end'],
    ['blob QWxhZGRpbjpvcGVuIHNlc2FtZQ9876543210ABCDEF== end', 'blob [redacted] end'],
  ]
  for (const [input, expected] of cases) assert.equal(stripCredentials(input), expected, input)
  // What a provider's message says stays readable.
  const kept = [
    'max_tokens: 100000 > 8192, which is the maximum allowed for gpt-4o-mini-2024-07-18',
    'Rate limit reached for model `llama-3.3-70b-versatile` in organization org_01hxyz on tokens',
    'Invalid key: please check your configuration',
    'This model’s maximum context length is 128000 tokens; risk-free task-based prompts',
    'internationalization_and_localization_are_long_words_without_digits',
    'this key allows basic models only',
    'Missing bearer token',
    'The API deployment /openai/deployments/gpt4o20240806prod/chat/completions does not exist',
  ]
  for (const text of kept) assert.equal(stripCredentials(text), text)
})

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({ baseUrl: llm.baseUrl })
})
after(async () => {
  await platform.close()
  await llm.close()
})

const MADE_UP_KEY = 'sk-proj-Zx9Made0Up1Key2For3Tests4Only5abcdef'

test('a 401 quoting a key the platform never knew gets a 502 frame and log lines without it', async () => {
  const before = platform.logs.lines().length
  llm.reply({
    status: 401,
    json: {
      error: {
        message: `Incorrect API key provided: ${MADE_UP_KEY}. Sent as Authorization: Bearer ${MADE_UP_KEY}`,
        type: 'invalid_request_error',
      },
    },
  })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('r401', { text: 'hello' })
  client.close()
  const { error } = terminal(frames)
  assert.equal(error!.code, 502)
  assert.equal(error!.type, 'LLM_UPSTREAM_ERROR')
  assert.equal(error!.data!.upstream_status, 401)
  assert.match(String(error!.data!.upstream_message), /^Incorrect API key provided: \[redacted\]\./)
  const lines = platform.logs.lines().slice(before)
  assert.ok(
    lines.some((l) => l.error?.type === 'LLM_UPSTREAM_ERROR'),
    'the failure is logged',
  )
  const seen = JSON.stringify(frames) + JSON.stringify(lines)
  for (const piece of [MADE_UP_KEY, 'Zx9Made0Up1Key2', 'Bearer sk-']) assert.ok(!seen.includes(piece), piece)
})

test('a long error body is cut', async () => {
  llm.reply({ status: 400, json: { error: { message: `bad request ${'x '.repeat(5000)}` } } })
  const client = await Client.inject(platform.app)
  const { error } = terminal(await client.chatAndWait('r400', { text: 'hello' }))
  client.close()
  assert.equal(error!.type, 'LLM_UPSTREAM_ERROR')
  assert.ok(String(error!.data!.upstream_message).length <= 1000)
})

const PAGE =
  '<!DOCTYPE html>\n<html><head><title>Sign in to the Wi-Fi</title></head><body>Welcome</body></html>\n'

test('an HTML page answered 200 to a streaming request is a bad response, not a broken stream', async () => {
  llm.reply({ headers: { 'content-type': 'text/html; charset=utf-8' }, body: PAGE })
  const client = await Client.inject(platform.app)
  const { error } = terminal(await client.chatAndWait('html-stream', { text: 'hello' }))
  client.close()
  assert.equal(error!.code, 502)
  assert.equal(error!.type, 'LLM_BAD_RESPONSE')
  assert.match(error!.message, /web page/)
})

test('an HTML page sent as text/plain is told by its first bytes', async () => {
  llm.reply({ headers: { 'content-type': 'text/plain' }, body: PAGE, chunkSize: 5 })
  const client = await Client.inject(platform.app)
  const { error } = terminal(await client.chatAndWait('html-plain', { text: 'hello' }))
  client.close()
  assert.equal(error!.code, 502)
  assert.equal(error!.type, 'LLM_BAD_RESPONSE')
})

test('an HTML page answered 200 to a non-streaming request is a bad response', async () => {
  const llm2 = await startLlmServer()
  const platform2 = await startPlatform({
    baseUrl: llm2.baseUrl,
    patch: (c) => {
      c.chat.service.streaming.enabled = false
    },
  })
  try {
    llm2.reply({ headers: { 'content-type': 'text/html' }, body: PAGE })
    const client = await Client.inject(platform2.app)
    const { error } = terminal(await client.chatAndWait('html-json', { text: 'hello' }))
    client.close()
    assert.equal(error!.code, 502)
    assert.equal(error!.type, 'LLM_BAD_RESPONSE')
    assert.equal(llm2.requests[0]!.body.stream, false)
  } finally {
    await platform2.close()
    await llm2.close()
  }
})
