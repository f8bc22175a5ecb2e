// get_history and list_conversations over /ws/chat: scoped to the principal, paged.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { openAiStream, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { Client, startPlatform, terminal, type Platform } from './helpers/platform.js'

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    env: { A_KEY: 'key-of-alice-123', B_KEY: 'key-of-bob-456' },
    patch: (c) => {
      c.auth = {
        api_keys: [
          { name: 'alice', key: 'env:A_KEY' },
          { name: 'bob', key: 'env:B_KEY' },
        ],
      }
    },
  })
})
after(async () => {
  await platform.close()
  await llm.close()
})

async function ask(client: Client, id: string, payload: Record<string, unknown>) {
  client.send({ action: id.split('-')[0], request_id: id, payload })
  return terminal(await client.request(id))
}

test('get_history returns the events in order; limit and before_seq page back; 404 for others', async () => {
  const alice = await Client.inject(platform.app, { authorization: 'Bearer key-of-alice-123' })
  llm.reply({ body: openAiStream(['First answer']) })
  const first = await alice.chatAndWait('c1', { text: 'First question' })
  const conversationId = first[0]!.metadata!.conversation_id
  llm.reply({ body: openAiStream(['Second answer']) })
  await alice.chatAndWait('c2', { text: 'Second question', conversation_id: conversationId })

  const all = await ask(alice, 'get_history-1', { conversation_id: conversationId })
  const events = all.result!.events as any[]
  assert.deepEqual(
    events.map((e) => [e.seq, e.type, e.content, e.status]),
    [
      [1, 'user_message', 'First question', 'complete'],
      [2, 'assistant_message', 'First answer', 'complete'],
      [3, 'user_message', 'Second question', 'complete'],
      [4, 'assistant_message', 'Second answer', 'complete'],
    ],
  )
  assert.equal(events[0].request_id, 'c1')
  assert.equal(events[1].model, 'gpt-4o-mini')
  assert.equal(typeof events[1].token_count, 'number')
  assert.equal(events[0].instance, undefined, 'internal fields are not shown')

  const page = await ask(alice, 'get_history-2', { conversation_id: conversationId, limit: 2, before_seq: 4 })
  assert.deepEqual(
    (page.result!.events as any[]).map((e) => e.seq),
    [2, 3],
  )

  const bob = await Client.inject(platform.app, { authorization: 'Bearer key-of-bob-456' })
  const theirs = await ask(bob, 'get_history-3', { conversation_id: conversationId })
  assert.equal(theirs.error!.code, 404)
  const none = await ask(alice, 'get_history-4', { conversation_id: 'c-nope' })
  assert.equal(none.error!.code, 404)
  const bad = await ask(alice, 'get_history-5', {
    conversation_id: conversationId,
    limit: 0,
    before_seq: 'x',
  })
  assert.deepEqual((bad.error!.data!.validation_errors as any[]).map((e) => `${e.field}:${e.type}`).sort(), [
    'payload.before_seq:type_error',
    'payload.limit:out_of_range',
  ])
  alice.close()
  bob.close()
})

test('list_conversations: newest first, titled by the first user text, paged, only your own', async () => {
  const bob = await Client.inject(platform.app, { authorization: 'Bearer key-of-bob-456' })
  const ids: string[] = []
  for (const n of [1, 2, 3]) {
    const frames = await bob.chatAndWait(`b${n}`, {
      text: `Bob's topic number ${n} ${'x'.repeat(n === 3 ? 200 : 0)}`,
    })
    ids.push(frames[0]!.metadata!.conversation_id)
  }
  const listed = await ask(bob, 'list_conversations-1', {})
  const conversations = listed.result!.conversations as any[]
  assert.deepEqual(
    conversations.map((c) => c.id),
    [...ids].reverse(),
  )
  assert.equal(conversations[2].title, "Bob's topic number 1")
  assert.ok(conversations[0].title.length <= 80 && conversations[0].title.endsWith('…'))
  for (const c of conversations) assert.ok(c.created <= c.updated)

  const firstPage = await ask(bob, 'list_conversations-2', { limit: 2 })
  const page = firstPage.result!.conversations as any[]
  assert.equal(page.length, 2)
  const next = await ask(bob, 'list_conversations-3', { limit: 2, before: page[1].updated })
  assert.deepEqual(
    (next.result!.conversations as any[]).map((c) => c.id),
    [ids[0]],
  )

  const alice = await Client.inject(platform.app, { authorization: 'Bearer key-of-alice-123' })
  const hers = await ask(alice, 'list_conversations-4', {})
  assert.ok((hers.result!.conversations as any[]).every((c) => !ids.includes(c.id)))
  alice.close()
  bob.close()
})
