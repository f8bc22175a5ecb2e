// Upgrade-time authentication and conversation ownership (protocol.md, Connection, Conversations).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { startLlmServer, type LlmServer } from './helpers/llm-server.js'
import { Client, listenOnPort, startPlatform, terminal, type Platform } from './helpers/platform.js'

let llm: LlmServer
let platform: Platform
let url: string

before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    env: { ALICE_KEY: 'alice-secret-key-1', BOB_KEY: 'bob-secret-key-2' },
    patch: (c) => {
      c.auth = {
        api_keys: [
          { name: 'alice', key: 'env:ALICE_KEY' },
          { name: 'bob', key: 'env:BOB_KEY' },
        ],
      }
      c.websocket.allowed_origins = ['https://app.example.com']
    },
  })
  url = (await listenOnPort(platform)).url
})
after(async () => {
  await platform.close()
  await llm.close()
})

function refusal(options: WebSocket.ClientOptions, protocols?: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options)
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('open', () => reject(new Error('upgrade was accepted')))
    ws.on('error', () => undefined)
  })
}

test('no key, a wrong key: 401 before any WebSocket exists', async () => {
  assert.equal(await refusal({}), 401)
  assert.equal(await refusal({ headers: { authorization: 'Bearer wrong' } }), 401)
})

test('an Origin not in websocket.allowed_origins: 403', async () => {
  assert.equal(
    await refusal({
      headers: { authorization: 'Bearer alice-secret-key-1', origin: 'https://evil.example' },
    }),
    403,
  )
})

test('a browser passes its key as subprotocol bearer.KEY', async () => {
  const client = await Client.connect(url, { headers: { origin: 'https://app.example.com' } }).catch(
    () => undefined,
  )
  assert.equal(client, undefined, 'no key, no connection')
  const ws = new WebSocket(url, ['bearer.alice-secret-key-1', 'chat.v1'], {
    headers: { origin: 'https://app.example.com' },
  })
  const browser = new Client(ws)
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  assert.equal(ws.protocol, 'chat.v1')
  browser.send({ action: 'ping', request_id: 'p', payload: {} })
  assert.equal(terminal(await browser.request('p')).status, 'complete')
  browser.close()
})

test("another principal's conversation answers 404, as if it did not exist", async () => {
  const alice = await Client.connect(url, { headers: { authorization: 'Bearer alice-secret-key-1' } })
  const mine = await alice.chatAndWait('a1', { text: 'private' })
  const conversationId = mine[0]!.metadata!.conversation_id
  assert.equal(terminal(mine).status, 'complete')
  const bob = await Client.connect(url, { headers: { authorization: 'Bearer bob-secret-key-2' } })
  const theirs = await bob.chatAndWait('b1', { text: 'let me in', conversation_id: conversationId })
  assert.equal(terminal(theirs).error!.code, 404)
  assert.equal(terminal(theirs).error!.type, 'CONVERSATION_NOT_FOUND')
  const again = await alice.chatAndWait('a2', { text: 'still mine', conversation_id: conversationId })
  assert.equal(terminal(again).status, 'complete')
  alice.close()
  bob.close()
})
