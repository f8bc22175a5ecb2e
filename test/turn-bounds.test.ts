// Turns with an end (issue 11, item 5), seen from a client of /ws/chat: a provider that keeps the
// connection busy without ever finishing (keep-alive comments every 200 ms, which reset the idle
// timer) ends at `chat.service.turn_timeout` with TURN_TIMEOUT (504); one whose answer grows
// without end is cut at `llm.request.max_response_bytes` with LLM_RESPONSE_TOO_LARGE (502) and its
// connection closed. Either way what was said is stored as interrupted.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { openAiStream, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { Client, startPlatform, terminal, textOf, type Platform } from './helpers/platform.js'

const LIMIT = 64 * 1024

let llm: LlmServer
/** turn_timeout 1 s; the idle timeout (5 s) and the size limit (8 MiB) are never reached. */
let timed: Platform
/** max_response_bytes 64 KiB; turn_timeout (60 s) is never reached. */
let capped: Platform

before(async () => {
  llm = await startLlmServer()
  timed = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (c) => {
      c.chat.service.turn_timeout = 1
    },
  })
  capped = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (c) => {
      c.llm.request = { ...c.llm.request, max_response_bytes: LIMIT }
    },
  })
})
after(async () => {
  await timed.close()
  await capped.close()
  await llm.close()
})

/** The first `n` SSE events of a stream: what a provider sent before it went on without end. */
function firstEvents(body: string, n: number): string {
  return body
    .split('\n\n')
    .slice(0, n)
    .map((e) => `${e}\n\n`)
    .join('')
}

/** One OpenAI content delta, as an SSE event. */
function contentDelta(content: string): string {
  const chunk = { id: 'chatcmpl-forever', object: 'chat.completion.chunk', created: 1763900000 }
  return `data: ${JSON.stringify({ ...chunk, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`
}

async function lastEvent(platform: Platform, conversationId: string) {
  const events = await platform.app.chatStore.history('anonymous', conversationId)
  return events!.at(-1)!
}

test(
  'keep-alive comments every 200 ms end at turn_timeout with 504; the text so far is stored as interrupted',
  { timeout: 15_000 },
  async () => {
    const closed = llm.closedEarly()
    llm.reply({
      body: firstEvents(openAiStream(['Let me ', 'think']), 3),
      forever: { piece: ': keep-alive\n\n', everyMs: 200 },
    })
    const client = await Client.inject(timed.app)
    const started = Date.now()
    const frames = await client.chatAndWait('alive-forever', { text: 'hello' })
    const elapsed = Date.now() - started
    const { error, status } = terminal(frames)
    assert.equal(status, 'error', 'the 504 error, not cancelled')
    assert.equal(error!.code, 504)
    assert.equal(error!.type, 'TURN_TIMEOUT')
    assert.ok(elapsed >= 900 && elapsed < 5000, `ended after ${elapsed} ms`)
    assert.equal(textOf(frames), 'Let me think')
    const stored = await lastEvent(timed, frames[0]!.metadata!.conversation_id)
    assert.deepEqual(
      [stored.type, stored.status, stored.content],
      ['assistant_message', 'interrupted', 'Let me think'],
    )
    await llm.waitForClosedEarly(closed + 1)

    const line = timed.logs.lines().find((l) => l.request_id === 'alive-forever' && l.outcome !== undefined)
    assert.equal(line?.outcome, 'timed_out')
    assert.equal(line?.error?.type, 'TURN_TIMEOUT')

    // The connection goes on.
    client.send({ action: 'ping', request_id: 'after-timeout', payload: {} })
    assert.equal(terminal(await client.request('after-timeout')).status, 'complete')
    client.close()
  },
)

test(
  'a streamed answer without end is cut at max_response_bytes with 502 and its connection closed',
  { timeout: 15_000 },
  async () => {
    const closed = llm.closedEarly()
    llm.reply({
      body: firstEvents(openAiStream([]), 1),
      forever: { piece: contentDelta('x'.repeat(1000)) },
    })
    const client = await Client.inject(capped.app)
    const frames = await client.chatAndWait('talks-forever', { text: 'hello' })
    client.close()
    const { error } = terminal(frames)
    assert.equal(error!.code, 502)
    assert.equal(error!.type, 'LLM_RESPONSE_TOO_LARGE')
    const text = textOf(frames)
    assert.ok(text.length > 0 && text.length < LIMIT, `${text.length} characters came through`)
    const stored = await lastEvent(capped, frames[0]!.metadata!.conversation_id)
    assert.deepEqual([stored.type, stored.status, stored.content], ['assistant_message', 'interrupted', text])
    await llm.waitForClosedEarly(closed + 1)
  },
)

test(
  'a non-streaming answer without end is cut at max_response_bytes with 502',
  { timeout: 15_000 },
  async () => {
    const closed = llm.closedEarly()
    llm.reply({
      headers: { 'content-type': 'application/json' },
      body: '{"id":"chatcmpl-forever","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"',
      forever: { piece: 'x'.repeat(1000) },
    })
    const client = await Client.inject(capped.app)
    const frames = await client.chatAndWait('json-forever', { text: 'hello', streaming: false })
    client.close()
    const { error } = terminal(frames)
    assert.equal(error!.code, 502)
    assert.equal(error!.type, 'LLM_RESPONSE_TOO_LARGE')
    await llm.waitForClosedEarly(closed + 1)
  },
)

test('a provider that keeps sending after the end of its answer has its connection closed; the turn completes', async () => {
  const before = llm.closedEarly()
  llm.reply({ body: openAiStream(['All ', 'done.']), forever: { piece: ': still here\n\n', everyMs: 20 } })
  const client = await Client.inject(timed.app)
  const frames = await client.chatAndWait('tail', { text: 'hello' })
  assert.equal(terminal(frames).status, 'complete')
  assert.equal(textOf(frames), 'All done.')
  await llm.waitForClosedEarly(before + 1)
  client.close()
})
