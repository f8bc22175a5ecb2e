// What one connection may hold: requests at once (websocket.max_concurrent_requests, more get 429),
// replies left unread (websocket.max_buffered_bytes, past it the socket is closed with 1008), and
// how long a chat waits for a client that takes nothing in (llm.request.timeout, then it stops).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import WebSocket from 'ws'
import {
  defaultReply,
  openAiJson,
  openAiStream,
  startLlmServer,
  type LlmServer,
} from './helpers/llm-server.js'
import {
  Client,
  listenOnPort,
  demoServer,
  mcpSettled,
  startPlatform,
  terminal,
  textOf,
} from './helpers/platform.js'

let llm: LlmServer

before(async () => {
  llm = await startLlmServer()
})
after(async () => {
  await llm.close()
})

/** A WebSocket client that stops reading from its socket once open: replies pile up for it. */
async function deafClient(url: string): Promise<WebSocket & { _socket: Socket }> {
  const ws = new WebSocket(url) as WebSocket & { _socket: Socket }
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  ws._socket.pause()
  return ws
}

async function until(what: string, done: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test('300 chats at once on one connection: the configured number run, the rest get 429 with retry_after_ms', async () => {
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  llm.setDefault((req) => ({ ...defaultReply(req), delayMs: 300 }))
  try {
    const client = await Client.inject(platform.app)
    for (let i = 0; i < 300; i++) client.chat(`c${i}`, { text: `hello ${i}` })
    const ids = Array.from({ length: 300 }, (_, i) => `c${i}`)
    await client.until(
      (frames) =>
        ids.every((id) =>
          frames.some((f) => f.request_id === id && ['complete', 'error'].includes(f.status)),
        ),
      30_000,
    )
    const ends = ids.map((id) =>
      client.frames.find((f) => f.request_id === id && f.status !== 'processing' && f.status !== 'chunk')!,
    )
    const refused = ends.filter((f) => f.status === 'error')
    assert.equal(
      ends.filter((f) => f.status === 'complete').length,
      16,
      'websocket.max_concurrent_requests of the test config',
    )
    assert.equal(refused.length, 284)
    for (const f of refused) {
      assert.equal(f.error!.code, 429)
      assert.equal(f.error!.type, 'TOO_MANY_REQUESTS')
      assert.ok((f.error!.data!.retry_after_ms as number) > 0)
    }
    assert.equal(llm.requests.length, 16, 'only the running ones reached the provider')
    client.close()
  } finally {
    llm.setDefault(defaultReply)
    llm.requests.length = 0
    await platform.close()
  }
})

test('a client that never reads is cut off at websocket.max_buffered_bytes (1008); others are served', async () => {
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers: { demo: demoServer() },
    patch: (c) => {
      c.websocket.max_buffered_bytes = 65_536
    },
  })
  try {
    await mcpSettled(platform.app)
    const url = (await listenOnPort(platform)).url
    const deaf = await deafClient(url)
    const closed = new Promise<number>((resolve) => deaf.once('close', (code) => resolve(code)))
    const frame = JSON.stringify({ action: 'list_tools', request_id: 'lt', payload: {} })
    const warned = () => platform.logs.lines().some((l) => l.msg === 'client not reading')
    // Each reply is a few KB; the loopback's own buffers take some megabytes before ours fill.
    for (let sent = 0; sent < 20_000 && !warned(); sent += 500) {
      for (let i = 0; i < 500; i++) deaf.send(frame.replace('"lt"', `"lt-${sent + i}"`))
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await until('the warning', warned)
    const other = await Client.connect(url)
    assert.equal((await other.ask('ping')).status, 'complete', 'the others are served')
    other.close()
    deaf._socket.resume()
    assert.equal(await closed, 1008)
  } finally {
    await platform.close()
  }
})

test('a chat whose client takes nothing in for llm.request.timeout is stopped, and lets go of the provider', async () => {
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (c) => {
      c.llm.request.timeout = 1
      c.llm.request.max_response_bytes = 64 * 1024 * 1024
      c.websocket.max_buffered_bytes = 64 * 1024 * 1024
    },
  })
  try {
    const url = (await listenOnPort(platform)).url
    const deaf = await deafClient(url)
    // An answer far larger than what the loopback and the backpressure threshold hold.
    llm.reply({
      body: openAiStream(Array.from({ length: 8000 }, () => 'x'.repeat(2000))),
      chunkSize: 65_536,
      delayMs: 20,
    })
    const before = llm.closedEarly()
    deaf.send(JSON.stringify({ action: 'chat', request_id: 'big', payload: { text: 'everything' } }))
    await llm.waitForClosedEarly(before + 1)
    await until('the warning', () =>
      platform.logs.lines().some((l) => l.msg === 'client not reading' && l.request_id === 'big'),
    )
    const turn = platform.logs.lines().find((l) => l.msg === 'turn' && l.request_id === 'big')
    assert.equal(turn?.stopped_by, 'unread')
    deaf.terminate()
  } finally {
    await platform.close()
  }
})

test('one reply larger than websocket.max_buffered_bytes reaches a client that reads', async () => {
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (c) => {
      c.websocket.max_buffered_bytes = 65_536
      c.chat.service.streaming.enabled = false
    },
  })
  try {
    const url = (await listenOnPort(platform)).url
    const client = await Client.connect(url)
    const long = 'word '.repeat(20_000) // 100 KB in one non-streamed text chunk
    llm.reply({ json: openAiJson(long) })
    const frames = await client.chatAndWait('long', { text: 'say a lot' })
    assert.equal(terminal(frames).status, 'complete')
    assert.equal(textOf(frames), long)
    client.close()
  } finally {
    await platform.close()
  }
})
