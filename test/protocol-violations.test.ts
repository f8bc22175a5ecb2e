// A client that breaks the WebSocket protocol (invalid UTF-8 in a text frame, an unmasked frame, a
// bad opcode, a reserved bit set) is at fault itself: each is logged once as a warning
// WEBSOCKET_ERROR without a stack, its socket closed by ws with the matching code, and nothing is
// logged as an error nor answered as INTERNAL. The frames are written byte by byte on a real TCP
// socket, after a real handshake with a listening platform.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { openAiStream, startLlmServer } from './helpers/llm-server.js'
import { listenOnPort, startPlatform } from './helpers/platform.js'

/** A frame as a client sends it: FIN, `rsv` bits, `opcode`, and (unless `masked` is false) masked. */
function frame(opcode: number, payload: Buffer, options: { masked?: boolean; rsv?: number } = {}): Buffer {
  const masked = options.masked ?? true
  const head = Buffer.from([0x80 | ((options.rsv ?? 0) << 4) | opcode, (masked ? 0x80 : 0) | payload.length])
  if (!masked) return Buffer.concat([head, payload])
  const mask = randomBytes(4)
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))
  return Buffer.concat([head, mask, body])
}

/** Opens /ws/chat by hand; resolves with the socket once the 101 has arrived. */
async function handshake(port: number): Promise<{ socket: Socket; received: Buffer[] }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(
    [
      'GET /ws/chat HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      '',
      '',
    ].join('\r\n'),
  )
  const received: Buffer[] = []
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk)
      if (Buffer.concat(received).includes('\r\n\r\n')) resolve()
    })
    socket.once('error', reject)
  })
  assert.match(Buffer.concat(received).toString('latin1'), /^HTTP\/1\.1 101 /)
  return { socket, received }
}

/** The close code of the server's close frame among what arrived after the handshake. */
function closeCode(received: Buffer[]): number | undefined {
  const all = Buffer.concat(received)
  const at = all.indexOf('\r\n\r\n') + 4
  // Server frames are not masked; a close frame is opcode 8 and its payload starts with the code.
  for (let i = at; i + 1 < all.length;) {
    const opcode = all[i]! & 0x0f
    const length = all[i + 1]! & 0x7f
    if (opcode === 8 && length >= 2) return all.readUInt16BE(i + 2)
    i += 2 + length
  }
  return undefined
}

const violations: { name: string; bytes: () => Buffer; code: number; wsCode: string }[] = [
  {
    name: 'invalid UTF-8 in a text frame',
    bytes: () => frame(0x1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])),
    code: 1007,
    wsCode: 'WS_ERR_INVALID_UTF8',
  },
  {
    name: 'an unmasked client frame',
    bytes: () => frame(0x1, Buffer.from('{}'), { masked: false }),
    code: 1002,
    wsCode: 'WS_ERR_EXPECTED_MASK',
  },
  {
    name: 'a bad opcode',
    bytes: () => frame(0x3, Buffer.from('{}')),
    code: 1002,
    wsCode: 'WS_ERR_INVALID_OPCODE',
  },
  {
    name: 'RSV1 set without permessage-deflate',
    bytes: () => frame(0x1, Buffer.from('{}'), { rsv: 0b100 }),
    code: 1002,
    wsCode: 'WS_ERR_UNEXPECTED_RSV_1',
  },
  {
    name: 'RSV2 set',
    bytes: () => frame(0x1, Buffer.from('{}'), { rsv: 0b010 }),
    code: 1002,
    wsCode: 'WS_ERR_UNEXPECTED_RSV_2_3',
  },
]

test('protocol violations are logged as warnings, without stack, error line or INTERNAL', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  try {
    const { port } = await listenOnPort(platform)
    for (const v of violations) {
      const before = platform.logs.lines().length
      const { socket, received } = await handshake(port)
      socket.write(v.bytes())
      await once(socket, 'close')
      assert.equal(closeCode(received), v.code, `${v.name}: closed with ${v.code}`)
      assert.doesNotMatch(
        Buffer.concat(received).toString('latin1'),
        /INTERNAL/,
        `${v.name}: no INTERNAL frame`,
      )
      // The socket's close reaches the client a little before the log line is written.
      let lines: Record<string, any>[] = []
      for (let i = 0; i < 50; i++) {
        lines = platform.logs.lines().slice(before)
        if (lines.some((l) => l.error?.type === 'WEBSOCKET_ERROR')) break
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      const warnings = lines.filter((l) => l.error?.type === 'WEBSOCKET_ERROR')
      assert.equal(warnings.length, 1, `${v.name}: one WEBSOCKET_ERROR line`)
      assert.equal(warnings[0]!.level, 'warn', v.name)
      assert.equal(warnings[0]!.error.code, v.wsCode, v.name)
      for (const line of lines) {
        assert.notEqual(line.level, 'error', `${v.name}: ${JSON.stringify(line)}`)
        assert.notEqual(line.level, 'fatal', `${v.name}: ${JSON.stringify(line)}`)
        assert.doesNotMatch(JSON.stringify(line), /"stack"|\n\s+at /, `${v.name}: no stack`)
        assert.doesNotMatch(JSON.stringify(line), /INTERNAL/, `${v.name}: no INTERNAL`)
      }
    }
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('a violation in the middle of a turn ends the turn as a closed socket does, with a warning only', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  try {
    const { port } = await listenOnPort(platform)
    llm.reply({ body: openAiStream(['one ', 'two']), chunkSize: 20, delayMs: 300 })
    const { socket, received } = await handshake(port)
    const chat = { action: 'chat', request_id: 'r1', payload: { text: 'hi' } }
    socket.write(frame(0x1, Buffer.from(JSON.stringify(chat))))
    while (llm.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    socket.write(frame(0x1, Buffer.from([0xc3, 0x28])))
    await once(socket, 'close')
    assert.equal(closeCode(received), 1007)
    await llm.waitForClosedEarly()
    await platform.close()
    const lines = platform.logs.lines()
    assert.ok(lines.some((l) => l.level === 'warn' && l.error?.type === 'WEBSOCKET_ERROR'))
    for (const line of lines) {
      assert.ok(!['error', 'fatal'].includes(line.level as string), JSON.stringify(line))
      assert.doesNotMatch(JSON.stringify(line), /"stack"|INTERNAL/, JSON.stringify(line))
    }
  } finally {
    await platform.close()
    await llm.close()
  }
})
