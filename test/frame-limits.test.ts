// A frame with many problems costs its sender, not everyone: 80,000 unknown keys in a payload are
// answered with one small error frame that lists the first problems and counts the rest, while
// another client's pings stay about as fast as while a frame of the same size and key count that
// the schema accepts is read. Long field names and actions are cut in the reply.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_COUNTED_ISSUES, MAX_ISSUE_CHARS, MAX_LISTED_ISSUES } from '../src/chat/protocol.js'
import { startLlmServer, type LlmServer } from './helpers/llm-server.js'
import {
  listenOnPort,
  assertError,
  Client,
  startPlatform,
  terminal,
  type Frame,
  type Platform,
} from './helpers/platform.js'

const KEYS = 80_000

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (c) => {
      c.websocket.max_message_bytes = 2 * 1024 * 1024
    },
  })
})
after(async () => {
  await platform.close()
  await llm.close()
})

function manyKeys(): Record<string, string> {
  const keys: Record<string, string> = {}
  for (let i = 0; i < KEYS; i++) keys[`k${i}`] = 'v'
  return keys
}

interface Stall {
  /** The longest `other` waited for a pong while the frame was being answered. */
  pingMs: number
  /** From sending the frame to its terminal frame. */
  answerMs: number
  reply: Frame
}

/** Sends `frame` from `sender` while `other` pings, one ping after another, until it is answered. */
async function stall(sender: Client, other: Client, frame: { request_id: string }): Promise<Stall> {
  const start = performance.now()
  let answeredAt: number | undefined
  sender.send(frame)
  const answer = sender.request(frame.request_id, 10_000).then((frames) => {
    answeredAt = performance.now()
    return terminal(frames)
  })
  let pingMs = 0
  do {
    const sent = performance.now()
    assert.equal((await other.ask('ping')).status, 'complete')
    pingMs = Math.max(pingMs, performance.now() - sent)
  } while (answeredAt === undefined)
  const reply = await answer
  return { pingMs, answerMs: answeredAt - start, reply }
}

test('80,000 unknown keys: one small error frame, and other clients are not held up', async (t) => {
  // Real sockets, as the clients that saw the stall had.
  const { url } = await listenOnPort(platform)
  const sender = await Client.connect(url)
  const other = await Client.connect(url)
  for (let i = 0; i < 5; i++) await other.ask('ping')

  // The baseline: as many keys, as many bytes, valid to the schema (a prompt's arguments), so
  // what it costs is reading the frame; it is then refused for its unknown server.
  const valid = {
    action: 'get_prompt',
    request_id: 'valid',
    payload: { server: 'none', name: 'p', arguments: manyKeys() },
  }
  const invalid = { action: 'chat', request_id: 'invalid', payload: { text: 'hi', ...manyKeys() } }
  const baseline = await stall(sender, other, valid)
  assert.equal(baseline.reply.status, 'error')
  assert.notEqual(baseline.reply.error!.type, 'VALIDATION_FAILED')
  const many = await stall(sender, other, invalid)

  const bytes = Buffer.byteLength(JSON.stringify(many.reply))
  t.diagnostic(
    `frame ${Buffer.byteLength(JSON.stringify(invalid))} bytes; reply ${bytes} bytes; answered in ${many.answerMs.toFixed(0)} ms; ` +
      `longest ping meanwhile ${many.pingMs.toFixed(0)} ms, against ${baseline.pingMs.toFixed(0)} ms while the valid frame was read ` +
      `(answered in ${baseline.answerMs.toFixed(0)} ms)`,
  )
  // Other clients wait about as long as for any frame this size (a floor of 20 ms keeps a
  // near-zero baseline from making the ratio noise). Measured 0.8–2× here; the bound leaves room
  // for a loaded machine and catches a validation that is again quadratic in the problems.
  const ratio = many.pingMs / Math.max(baseline.pingMs, 20)
  t.diagnostic(`ping ratio ${ratio.toFixed(2)}`)
  assert.ok(ratio < 6, `pings waited ${many.pingMs.toFixed(0)} ms, baseline ${baseline.pingMs.toFixed(0)} ms`)
  assert.ok(many.answerMs < 3000, `answered in ${many.answerMs.toFixed(0)} ms`)
  const error = assertError(many.reply, 400, 'VALIDATION_FAILED')
  const issues = error.data!.validation_errors as { field: string; type: string }[]
  assert.equal(issues.length, MAX_LISTED_ISSUES)
  assert.deepEqual(
    issues.map((i) => `${i.field}:${i.type}`),
    Array.from({ length: MAX_LISTED_ISSUES }, (_, i) => `payload.k${i}:unknown_field`),
  )
  // Counting stops at the bound: a lower bound, not all 79,980.
  assert.equal(error.data!.validation_errors_more, MAX_COUNTED_ISSUES - MAX_LISTED_ISSUES)
  assert.ok(bytes < 8 * 1024, `reply of ${bytes} bytes`)

  sender.close()
  other.close()
})

test('a long field name or action is cut in the reply', async () => {
  const client = await Client.inject(platform.app)
  const long = 'y'.repeat(100_000)
  client.send({ action: 'chat', request_id: 'long1', payload: { text: 'hi', [long]: 1 } })
  client.send({ action: long, request_id: 'long2', payload: {} })
  for (const id of ['long1', 'long2']) {
    const reply = terminal(await client.request(id))
    const error = assertError(reply, 400, 'VALIDATION_FAILED')
    const [issue] = error.data!.validation_errors as { field: string; message: string }[]
    assert.ok(issue!.field.length <= MAX_ISSUE_CHARS && issue!.message.length <= MAX_ISSUE_CHARS)
    assert.ok(Buffer.byteLength(JSON.stringify(reply)) < 1024)
  }
  client.close()
})
