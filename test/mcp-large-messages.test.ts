// Large messages from a stdio MCP server (issue 11, item 4), against a real child process
// (test/fixtures/large-server.ts): a 20 MB answer under the limit arrives whole without holding
// the event loop (compared with the SDK's ReadBuffer fed by the same kind of child), and an answer
// over `mcp.max_message_bytes` fails only its call, at once, while the server stays ready. The line
// reader's own cases (lines across chunks, the id of a cut message) are checked directly.
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { deserializeMessage, ReadBuffer } from '@modelcontextprotocol/sdk/shared/stdio.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import type { StdioServerConfig } from '../src/config/types.js'
import { describeCut, LineReader, type ReadLine } from '../src/mcp/line-reader.js'
import { McpRegistry } from '../src/mcp/registry.js'

const LARGE_SERVER = fileURLToPath(new URL('./fixtures/large-server.js', import.meta.url))
const MB = 1024 * 1024
const TWENTY_MB = 20 * MB

interface LogLine {
  level: string
  obj: Record<string, unknown>
  msg: string
}

/** The longest the event loop was held, in ms, while `run` ran: a 5 ms timer's lateness. */
async function longestStall<T>(run: () => Promise<T>): Promise<{ value: T; stallMs: number }> {
  const every = 5
  let last = performance.now()
  let stallMs = 0
  const timer = setInterval(() => {
    const now = performance.now()
    stallMs = Math.max(stallMs, now - last - every)
    last = now
  }, every)
  try {
    const value = await run()
    return { value, stallMs: Math.max(stallMs, performance.now() - last - every) }
  } finally {
    clearInterval(timer)
  }
}

function open(maxMessageBytes: number, toolTimeout = 30) {
  const lines: LogLine[] = []
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, obj: obj as Record<string, unknown>, msg })
  }
  const server: StdioServerConfig = {
    name: 'large',
    transport: 'stdio',
    command: process.execPath,
    args: [LARGE_SERVER],
    env: {},
  }
  const registry = new McpRegistry({
    servers: { large: server },
    connection: { max_reconnect_attempts: 0, connection_timeout: 10, initial_reconnect_delay: 0.05 },
    toolTimeout,
    env: process.env,
    secrets: [],
    maxMessageBytes,
    log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  })
  registry.start()
  return { registry, lines }
}

async function ready(registry: McpRegistry): Promise<void> {
  const deadline = Date.now() + 10_000
  while (registry.status()[0]?.state !== 'ready') {
    if (Date.now() > deadline) throw new Error(`not ready: ${JSON.stringify(registry.status())}`)
    await sleep(20)
  }
}

const answer = (registry: McpRegistry, bytes: number) =>
  registry.call('large__answer', JSON.stringify({ bytes }), { signal: new AbortController().signal })

/**
 * Starts the fixture by hand, asks for `bytes` bytes and feeds its stdout to `read` as it comes,
 * until `read` returns the answer: how a reader copes with the chunks a real pipe gives.
 */
async function streamAnswer(
  bytes: number,
  read: (chunk: Buffer) => JSONRPCMessage[],
): Promise<{ message: JSONRPCMessage; stallMs: number; ms: number; busyMs: number }> {
  const child = spawn(process.execPath, [LARGE_SERVER], { stdio: ['pipe', 'pipe', 'inherit'] })
  const request = (message: object) =>
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`)
  try {
    const initialize = {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 't', version: '1' },
    }
    request({ id: 1, method: 'initialize', params: initialize })
    request({ method: 'notifications/initialized' })
    const started = performance.now()
    let busyMs = 0
    const { value, stallMs } = await longestStall(
      () =>
        new Promise<JSONRPCMessage>((resolve, reject) => {
          child.once('exit', () => reject(new Error('the server exited')))
          child.stdout.on('data', (chunk: Buffer) => {
            const reading = performance.now()
            const messages = read(chunk)
            busyMs += performance.now() - reading
            for (const message of messages) if ('id' in message && message.id === 2) resolve(message)
          })
          request({ id: 2, method: 'tools/call', params: { name: 'answer', arguments: { bytes } } })
        }),
    )
    return { message: value, stallMs, ms: performance.now() - started, busyMs }
  } finally {
    child.kill()
  }
}

function textOf(message: JSONRPCMessage): string {
  const result = (message as { result?: { content?: { text?: string }[] } }).result
  return result?.content?.[0]?.text ?? ''
}

const texts = (lines: ReadLine[]) => lines.map((l) => ('text' in l ? l.text : `<${l.oversized.bytes} bytes>`))

test('lines split across chunks, several in one chunk, CRLF and blank lines', () => {
  const reader = new LineReader(1024)
  assert.deepEqual(texts(reader.push(Buffer.from('{"a":'))), [])
  assert.deepEqual(texts(reader.push(Buffer.from('1}\n{"b":2}\r\n\n{"c"'))), ['{"a":1}', '{"b":2}'])
  assert.deepEqual(texts(reader.push(Buffer.from(':3}\n'))), ['{"c":3}'])
  // A character of several bytes cut between chunks is decoded whole.
  const euro = Buffer.from('"€"\n')
  assert.deepEqual(texts([...reader.push(euro.subarray(0, 2)), ...reader.push(euro.subarray(2))]), ['"€"'])
})

test('a line over the limit is dropped with its size, and the next line is read', () => {
  const reader = new LineReader(1024)
  const big = `{"result":{"content":[{"type":"text","text":"${'x'.repeat(5000)}"}]},"jsonrpc":"2.0","id":7}`
  const lines: ReadLine[] = []
  for (let i = 0; i < big.length; i += 100) lines.push(...reader.push(Buffer.from(big.slice(i, i + 100))))
  lines.push(...reader.push(Buffer.from('\n{"ok":1}\n')))
  assert.deepEqual(texts(lines), [`<${big.length} bytes>`, '{"ok":1}'])
  const cut = lines[0] as { oversized: { head: string; tail: string } }
  assert.ok(cut.oversized.head.length <= 4096 && cut.oversized.tail.length <= 4096)
  assert.deepEqual(describeCut(cut.oversized.head, cut.oversized.tail), { id: 7, response: true })
})

test('the id of a cut message: first or last, a string, not a nested one, not a request', () => {
  const filler = `"${'y'.repeat(100)}`
  // The TypeScript SDK writes the id last, others first; a nested "id" is not the message's.
  assert.deepEqual(
    describeCut(`{"result":{"id":99,"text":${filler}`, `${filler}"},"jsonrpc":"2.0","id":3}`),
    {
      id: 3,
      response: true,
    },
  )
  assert.deepEqual(describeCut(`{"jsonrpc":"2.0","id":"a\\"b","result":{"id":1,"t":${filler}`, `xx"}}`), {
    id: 'a"b',
    response: true,
  })
  // An escaped quote in the tail does not confuse the backward reading.
  assert.deepEqual(describeCut('{"result":{"t":"', 'z\\"z\\\\"}, "id" : 12 }'), { id: 12, response: true })
  // A request from the server (its id is not one of ours) is never answered for.
  assert.equal(
    describeCut(`{"method":"sampling/createMessage","params":{"t":${filler}`, '"},"id":3}').response,
    false,
  )
  assert.deepEqual(describeCut('{"result":{"t":"', 'xyz'), { response: true })
})

test('a 20 MB answer: the SDK ReadBuffer holds the event loop, the line reader does not', async () => {
  const old = new ReadBuffer({ maxBufferSize: Infinity })
  const before = await streamAnswer(TWENTY_MB, (chunk) => {
    old.append(chunk)
    const messages: JSONRPCMessage[] = []
    for (let m = old.readMessage(); m !== null; m = old.readMessage()) messages.push(m)
    return messages
  })
  const reader = new LineReader(32 * MB)
  const after = await streamAnswer(TWENTY_MB, (chunk) =>
    reader.push(chunk).flatMap((line) => ('text' in line ? [deserializeMessage(line.text)] : [])),
  )
  assert.equal(textOf(before.message).length, TWENTY_MB)
  assert.equal(textOf(after.message).length, TWENTY_MB)
  const figures = (f: typeof before) =>
    `${f.ms.toFixed(0)} ms in all, ${f.busyMs.toFixed(0)} ms reading, longest stall ${f.stallMs.toFixed(0)} ms`
  console.log(`20 MB over stdio: SDK ReadBuffer ${figures(before)}; line reader ${figures(after)}`)
  // The time spent reading is the steady measure; the longest stall depends on how reads batch.
  assert.ok(after.busyMs * 5 < before.busyMs, `reading took ${figures(after)}, against ${figures(before)}`)
})

test('a 20 MB answer under the limit arrives whole through the registry, the loop kept free', async (t) => {
  const { registry } = open(32 * MB)
  t.after(() => registry.close())
  await ready(registry)
  const { value: outcome, stallMs } = await longestStall(() => answer(registry, TWENTY_MB))
  console.log(`20 MB through the registry: longest stall ${stallMs.toFixed(0)} ms`)
  assert.equal(outcome.is_error, false)
  assert.equal(outcome.content.length, TWENTY_MB)
  assert.ok(/^x+$/.test(outcome.content))
  // Reading itself is linear: what is left is one JSON.parse and the SDK's checks of the result.
  assert.ok(stallMs < 1000, `the loop was held ${stallMs.toFixed(0)} ms`)
})

test('an answer over mcp.max_message_bytes fails its call at once; the server stays ready', async (t) => {
  const { registry, lines } = open(MB, 30)
  t.after(() => registry.close())
  await ready(registry)
  const pid = registry.status()[0]?.pid
  const started = performance.now()
  const refused = await answer(registry, 2 * MB)
  const ms = performance.now() - started
  assert.equal(refused.is_error, true)
  assert.match(refused.content, /answer was too large: \d+ bytes, over the limit of 1048576 bytes/)
  // Well before the 30 s tool_timeout: the stand-in answer ends the call.
  assert.ok(ms < 5000, `refused after ${ms.toFixed(0)} ms`)
  const warning = lines.find((l) => l.msg === 'mcp message over mcp.max_message_bytes dropped')
  assert.equal(warning?.level, 'warn')
  assert.equal(warning.obj.server, 'large')
  assert.equal(warning.obj.limit, MB)
  assert.ok((warning.obj.bytes as number) > 2 * MB)
  const status = registry.status()[0]
  assert.equal(status?.state, 'ready')
  assert.equal(status.pid, pid)
  // The same process goes on answering.
  const next = await answer(registry, 1000)
  assert.deepEqual(next, { content: 'x'.repeat(1000), is_error: false })
})
