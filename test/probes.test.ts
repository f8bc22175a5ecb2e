// GET /health and GET /ready through a real Fastify instance.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { MemoryStore } from '../src/store/memory.js'
import { startLlmServer } from './helpers/llm-server.js'
import { Client, listenOnPort, demoServer, mcpSettled, startPlatform, terminal } from './helpers/platform.js'

test('/health is 200; /ready names each dependency', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  try {
    const health = await platform.app.inject('/health')
    assert.equal(health.statusCode, 200)
    assert.deepEqual(health.json(), { status: 'ok' })
    const ready = await platform.app.inject('/ready')
    assert.equal(ready.statusCode, 200)
    assert.deepEqual(ready.json(), {
      status: 'ready',
      checks: {
        store: { ready: true, type: 'memory' },
        llm: { ready: true, provider: 'local', model: 'test-model' },
        mcp: { ready: true, servers: [] },
      },
    })
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('/ready is 503 and says which dependency is not ready', async () => {
  class UnreachableStore extends MemoryStore {
    override status() {
      return { ready: false, type: 'memory', detail: 'disk full' }
    }
  }
  const llm = await startLlmServer()
  const platform = await startPlatform({ baseUrl: llm.baseUrl, store: new UnreachableStore() })
  try {
    const ready = await platform.app.inject('/ready')
    assert.equal(ready.statusCode, 503)
    assert.equal(ready.json().status, 'not_ready')
    assert.deepEqual(ready.json().checks.store, { ready: false, type: 'memory', detail: 'disk full' })
    assert.equal((await platform.app.inject('/health')).statusCode, 200, 'alive all the same')
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('/ready is 503 once shutdown has begun', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  try {
    const { url, port } = await listenOnPort(platform)
    // A client that does not answer the closing handshake keeps the shutdown going for a while.
    const ws = new WebSocket(url)
    await new Promise((resolve) => ws.once('open', resolve))
    ;(ws as unknown as { _socket: { pause(): void } })._socket.pause()
    const closing = platform.app.close()
    await new Promise((resolve) => setTimeout(resolve, 100))
    const res = await fetch(`http://127.0.0.1:${port}/ready`)
    assert.equal(res.status, 503)
    await closing
    ws.terminate()
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('/ready shows an MCP server whose command does not exist as failed, with the reason', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers: { ghost: { command: 'mcp-platform-no-such-command' }, demo: demoServer() },
    patch: (c) => {
      c.mcp.connection = { max_reconnect_attempts: 2, connection_timeout: 5, initial_reconnect_delay: 0.05 }
    },
  })
  try {
    // The platform serves before any server has connected.
    const client = await Client.inject(platform.app)
    client.send({ action: 'ping', request_id: 'early', payload: {} })
    assert.equal(terminal(await client.request('early')).status, 'complete')
    client.close()

    await mcpSettled(platform.app)
    const deadline = Date.now() + 5000
    let ghost: any
    do {
      const res = await platform.app.inject('/ready')
      assert.equal(res.statusCode, 200, 'a failed MCP server does not hold readiness back')
      ghost = res.json().checks.mcp.servers.find((s: any) => s.name === 'ghost')
      if (ghost.error?.includes('gave up')) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    } while (Date.now() < deadline)
    assert.equal(ghost.state, 'failed')
    assert.match(ghost.error, /ENOENT|not found|no such/i)
    assert.match(ghost.error, /gave up after 2 reconnect attempts/)
    assert.equal(ghost.attempts, 3)
    const demo = platform.app.mcp.status().find((s) => s.name === 'demo')!
    assert.equal(demo.state, 'ready')
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('with auth, /ready tells a remote caller without a key only ready or not', async () => {
  class UnreachableStore extends MemoryStore {
    override status() {
      return { ready: false, type: 'jsonl', path: '/var/lib/chat/store.jsonl', detail: 'disk full' }
    }
  }
  const llm = await startLlmServer()
  const options = {
    baseUrl: llm.baseUrl,
    env: { ALICE_KEY: 'alice-secret-key-1' },
    patch: (c: Record<string, any>) => {
      c.auth = { api_keys: [{ name: 'alice', key: 'env:ALICE_KEY' }] }
      c.websocket.allowed_origins = ['https://app.example.com']
    },
  }
  const ready = await startPlatform(options)
  const failing = await startPlatform({ ...options, store: new UnreachableStore() })
  const remote = '203.0.113.7'
  const asks = (app: typeof ready.app, remoteAddress: string, headers: Record<string, string> = {}) =>
    app.inject({ url: '/ready', remoteAddress, headers })
  try {
    // Unauthenticated and remote: the state only, a wrong key or an Origin changing nothing.
    const anonymous: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { origin: 'https://app.example.com' },
    ]
    for (const headers of anonymous) {
      const ok = await asks(ready.app, remote, headers)
      assert.equal(ok.statusCode, 200)
      assert.deepEqual(ok.json(), { status: 'ready' })
      const down = await asks(failing.app, remote, headers)
      assert.equal(down.statusCode, 503)
      assert.deepEqual(down.json(), { status: 'not_ready' })
    }
    // An API key, from anywhere (the key's Origin check is the WebSocket's, not the probe's).
    for (const remoteAddress of [remote, '2001:db8::1']) {
      const headers = { authorization: 'Bearer alice-secret-key-1', origin: 'https://evil.example' }
      const down = await asks(failing.app, remoteAddress, headers)
      assert.equal(down.statusCode, 503)
      assert.equal(down.json().checks.store.path, '/var/lib/chat/store.jsonl')
      assert.equal(down.json().checks.store.detail, 'disk full')
    }
    // The same host, without a key.
    for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      const down = await asks(failing.app, remoteAddress)
      assert.equal(down.statusCode, 503)
      assert.equal(down.json().checks.store.detail, 'disk full')
      assert.equal((await asks(ready.app, remoteAddress)).json().checks.llm.model, 'test-model')
    }
  } finally {
    await ready.close()
    await failing.close()
    await llm.close()
  }
})

test('without auth, /ready tells every caller the details', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  try {
    const res = await platform.app.inject({ url: '/ready', remoteAddress: '203.0.113.7' })
    assert.equal(res.statusCode, 200)
    assert.equal(res.json().checks.llm.model, 'test-model')
  } finally {
    await platform.close()
    await llm.close()
  }
})
