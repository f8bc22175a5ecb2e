// Providers that misbehave on purpose, seen from a client of /ws/chat: retried when that is safe,
// otherwise a clear error; partial answers stored as interrupted; never a hanging turn or a crash.
import { after, before, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { openAiStream, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { Client, startPlatform, terminal, textOf, type Platform } from './helpers/platform.js'

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (c) => {
      c.llm.request = { ...c.llm.request, timeout: 1, max_retries: 2 }
    },
  })
})
after(async () => {
  await platform.close()
  await llm.close()
})
beforeEach(() => {
  llm.requests.length = 0
})

/** The first `n` SSE events of a stream: what a provider sent before it broke off. */
function firstEvents(body: string, n: number): string {
  return body
    .split('\n\n')
    .slice(0, n)
    .map((e) => `${e}\n\n`)
    .join('')
}

async function lastEvent(conversationId: string) {
  const events = await platform.app.chatStore.history('anonymous', conversationId)
  return events!.at(-1)!
}

test('429 with retry-after is retried after that delay and succeeds', async () => {
  llm.reply({ status: 429, headers: { 'retry-after': '1' }, json: { error: { message: 'slow down' } } })
  llm.reply({ body: openAiStream(['Fine ', 'now.']) })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('r429', { text: 'hello' })
  client.close()
  assert.equal(terminal(frames).status, 'complete')
  assert.equal(textOf(frames), 'Fine now.')
  assert.equal(llm.requests.length, 2)
  assert.ok(llm.requests[1]!.receivedAt - llm.requests[0]!.receivedAt >= 900, 'it waited as asked')
})

test('500 more times than max_retries ends in 502 with the upstream status', async () => {
  for (let i = 0; i < 3; i++) llm.reply({ status: 500, json: { error: { message: 'boom' } } })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('r500', { text: 'hello' })
  client.close()
  const { error } = terminal(frames)
  assert.equal(error!.code, 502)
  assert.equal(error!.type, 'LLM_UPSTREAM_ERROR')
  assert.equal(error!.data!.upstream_status, 500)
  assert.equal(error!.data!.attempts, 3)
  assert.equal(llm.requests.length, 3)
})

test('a reset after two chunks ends in 502; the partial text is stored as interrupted; no retry', async () => {
  llm.reply({ body: firstEvents(openAiStream(['Hello', ', wor', 'ld']), 3), destroy: 'after-body' })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('reset', { text: 'hello' })
  client.close()
  const { error } = terminal(frames)
  assert.equal(error!.code, 502)
  assert.equal(error!.type, 'LLM_STREAM_BROKEN')
  assert.equal(textOf(frames), 'Hello, wor')
  assert.equal(llm.requests.length, 1, 'a stream that started is never retried')
  const stored = await lastEvent(frames[0]!.metadata!.conversation_id)
  assert.deepEqual(
    [stored.type, stored.status, stored.content],
    ['assistant_message', 'interrupted', 'Hello, wor'],
  )
})

test('a provider that stops sending ends in 504 after the timeout', async () => {
  llm.reply({ body: firstEvents(openAiStream(['Half ', 'an answer']), 2), hang: true })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('hang', { text: 'hello' })
  const { error } = terminal(frames)
  assert.equal(error!.code, 504)
  assert.equal(error!.type, 'LLM_TIMEOUT')
  const stored = await lastEvent(frames[0]!.metadata!.conversation_id)
  assert.deepEqual([stored.status, stored.content], ['interrupted', 'Half '])

  // The process is unharmed and the conversation goes on.
  client.send({ action: 'ping', request_id: 'alive', payload: {} })
  assert.equal(terminal(await client.request('alive')).status, 'complete')
  client.close()
})
