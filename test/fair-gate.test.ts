// The bound on LLM requests in flight in one process: at most `limit` hold a slot, the others wait
// and are admitted round robin between principals; a waiter whose turn is stopped leaves the queue.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { FairGate } from '../src/chat/fair-gate.js'
import { defaultReply, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { Client, startPlatform, terminal } from './helpers/platform.js'

test('beyond the limit, waiters are admitted round robin by principal, not first come first served', async () => {
  const gate = new FairGate(2)
  const admitted: string[] = []
  const releases: (() => void)[] = []
  const ask = (name: string, principal: string) =>
    gate.acquire(principal, new AbortController().signal).then((release) => {
      admitted.push(name)
      releases.push(release)
    })
  const all = [
    ...['a1', 'a2', 'a3', 'a4', 'a5', 'a6'].map((n) => ask(n, 'alice')),
    ...['b1', 'b2'].map((n) => ask(n, 'bob')),
  ]
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(admitted, ['a1', 'a2'])
  assert.deepEqual(gate.load, { running: 2, waiting: 6 })
  while (admitted.length < 8) {
    releases.shift()!()
    await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(all)
  // alice queued four before bob's two, yet bob is not kept waiting behind all of them.
  assert.deepEqual(admitted, ['a1', 'a2', 'a3', 'b1', 'a4', 'b2', 'a5', 'a6'])
  for (const release of releases) release()
  assert.deepEqual(gate.load, { running: 0, waiting: 0 })
})

test('a waiter whose signal fires leaves the queue; a slot given back twice counts once', async () => {
  const gate = new FairGate(1)
  const first = await gate.acquire('alice', new AbortController().signal)
  const stop = new AbortController()
  const waiting = gate.acquire('bob', stop.signal)
  stop.abort(new Error('cancelled'))
  await assert.rejects(waiting, /cancelled/)
  assert.deepEqual(gate.load, { running: 1, waiting: 0 })
  first()
  first()
  assert.deepEqual(gate.load, { running: 0, waiting: 0 })
  const again = await gate.acquire('carol', new AbortController().signal)
  assert.deepEqual(gate.load, { running: 1, waiting: 0 })
  again()
})

let llm: LlmServer
before(async () => {
  llm = await startLlmServer()
})
after(async () => {
  await llm.close()
})

test('many connections at once: the provider never has more than the process bound in flight', async () => {
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  llm.setDefault((req) => ({ ...defaultReply(req), delayMs: 200 }))
  try {
    // 5 connections × 16 (websocket.max_concurrent_requests) = 80 turns at once, over the 64 allowed.
    const clients = await Promise.all(Array.from({ length: 5 }, () => Client.inject(platform.app)))
    const turns = clients.flatMap((client, c) =>
      Array.from({ length: 16 }, (_, i) => client.chatAndWait(`t${c}-${i}`, { text: 'hello' })),
    )
    const ends = await Promise.all(turns)
    assert.ok(
      ends.every((frames) => terminal(frames).status === 'complete'),
      'every turn completed',
    )
    // Never over the bound; and more than one connection's worth at once, so the bound was met.
    assert.ok(llm.mostAtOnce() <= 64, `${llm.mostAtOnce()} at once`)
    assert.ok(llm.mostAtOnce() > 16, `${llm.mostAtOnce()} at once`)
    for (const client of clients) client.close()
  } finally {
    llm.setDefault(defaultReply)
    await platform.close()
  }
})
