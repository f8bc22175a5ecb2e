// A client that stops reading must not make the platform buffer the LLM's whole answer: the
// platform stops reading the provider's stream while the socket is backed up, so the provider
// stalls and the platform's memory stays bounded; when the client reads again, the answer goes on.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { baseConfig, Client } from './helpers/platform.js'
import { rssOf, startPlatformProcess } from './helpers/process.js'

const DELTA = `${'lorem ipsum dolor sit amet '.repeat(600)}` // ~16 KB of text per SSE event
const DELTAS = 3000 // ~48 MB in all, if it were all read
const MB = 1024 * 1024

/** An OpenAI-compatible provider that writes only as fast as its reader takes, and counts. */
async function startHugeProvider() {
  const state = { written: 0, done: false }
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => void stream(res))
  })
  async function stream(res: ServerResponse): Promise<void> {
    res.setHeader('content-type', 'text/event-stream')
    const write = async (data: unknown) => {
      const line = `data: ${JSON.stringify(data)}\n\n`
      state.written += Buffer.byteLength(line)
      if (!res.write(line)) await Promise.race([once(res, 'drain'), once(res, 'close')])
    }
    for (let i = 0; i < DELTAS && !res.destroyed; i++) {
      await write({ model: 'big', choices: [{ index: 0, delta: { content: DELTA }, finish_reason: null }] })
    }
    if (res.destroyed) return
    await write({ model: 'big', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })
    res.end('data: [DONE]\n\n')
    state.done = true
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    state,
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () => {
      server.closeAllConnections()
      server.close()
    },
  }
}

/** Resolves once `read()` has not changed for `quietMs`. */
async function settles(read: () => number, quietMs: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let last = read()
  let since = Date.now()
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    const now = read()
    if (now !== last) {
      last = now
      since = Date.now()
    } else if (Date.now() - since >= quietMs) return now
  }
  throw new Error(`still moving after ${timeoutMs} ms (${last})`)
}

test('a client that stops reading stalls the provider; memory stays bounded; reading again resumes', async (t) => {
  const provider = await startHugeProvider()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-pressure-'))
  const config = baseConfig(provider.baseUrl)
  config.chat.service.max_input_chars = 100
  // The whole answer is allowed, and a client may pause longer than this test does.
  config.llm.request.max_response_bytes = 64 * MB
  config.llm.request.timeout = 60
  const platform = await startPlatformProcess(dir, config)
  try {
    const client = await Client.connect(platform.url)
    const before = await rssOf(platform.child.pid!)
    client.chat('big', { text: 'talk a lot' })
    await client.until((f) => f.some((x) => x.status === 'chunk'))
    const socket = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()

    const stalledAt = await settles(() => provider.state.written, 1500, 20_000)
    const during = await rssOf(platform.child.pid!)
    const total = DELTAS * Buffer.byteLength(DELTA)
    t.diagnostic(
      `provider wrote ${(stalledAt / MB).toFixed(1)} MB of ${(total / MB).toFixed(1)} MB before stalling; ` +
        `platform RSS ${(before / MB).toFixed(0)} MB -> ${(during / MB).toFixed(0)} MB`,
    )
    assert.equal(provider.state.done, false)
    assert.ok(stalledAt < total / 3, `the provider was held back (${stalledAt} bytes written)`)
    assert.ok(
      during - before < 96 * MB,
      `the platform did not buffer the answer (${during - before} bytes more)`,
    )

    // Reading again lets the answer flow on.
    socket.resume()
    await settles(() => provider.state.written, 300, 20_000).catch(() => 0)
    await client.until(() => provider.state.written > stalledAt + 4 * MB, 20_000)
    client.close()
  } finally {
    platform.child.kill('SIGTERM')
    await platform.exited
    provider.close()
    await rm(dir, { recursive: true, force: true })
  }
})
