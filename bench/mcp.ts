// What our MCP registry (src/mcp/registry.ts) adds to a tool call, against the bare SDK Client
// calling the same kind of server in the same run: over stdio (our demo server) and over
// Streamable HTTP (an SDK McpServer in a child process). Sequential calls give the latency of one
// call; 16 callers at once give the throughput.
// The HTTP server is this same file started as a child process (`node mcp.js http-server`).
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { z } from 'zod'
import type { ServerConfig } from '../src/config/types.js'
import { McpRegistry } from '../src/mcp/registry.js'
import { StdioTransport } from '../src/mcp/stdio-transport.js'
import { ownSession } from './platform.js'
import type { Bench } from './run.js'

const SELF = fileURLToPath(import.meta.url)
const DEMO = fileURLToPath(new URL('../servers/demo.js', import.meta.url))
/** Calls of each client before anything is timed (JIT, connection pools). */
const WARM_UP = 300
/** Sequential calls are timed in rounds, the clients taking turns, so drift hits them alike. */
const ROUNDS = 4
const CALLS_PER_ROUND = 500
const CALLERS = 16
/** Concurrent runs: this many rounds per client, again taking turns, each this long. */
const LOAD_ROUNDS = 7
const LOAD_MS = 800

type Call = () => Promise<void>

interface Side {
  label: string
  /** A caller (one turn, for the registry): its calls are checked, each throws unless the answer is 3. */
  caller(): Call
  close(): Promise<void>
}

interface SideResult {
  label: string
  median: number
  p99: number
  /** CPU time of this process (user + system) per sequential call, in microseconds. */
  cpuUs: number
  /** Calls per second with CALLERS callers: median of the rounds. */
  throughput: number
  /**
   * Calls per second against the first side's (the baseline's) in the same round: median over
   * the rounds. Each round's pair ran back to back, so the machine's changing load cancels out.
   */
  throughputRatio: number
  /** Per-call latency under that load: median over every call of every round. */
  loadedMedian: number
}

interface TransportResult {
  transport: string
  /** The baseline first, the registry last. */
  sides: SideResult[]
}

// ---------- the Streamable HTTP server (child process) ----------

/** The tool both servers offer: `add` as in servers/demo.ts, with its output schema. */
function addServer(): McpServer {
  const server = new McpServer({ name: 'bench', version: '1.0.0' })
  server.registerTool(
    'add',
    {
      description: 'Add two numbers.',
      inputSchema: { a: z.number().describe('first addend'), b: z.number().describe('second addend') },
      outputSchema: { sum: z.number() },
      annotations: { readOnlyHint: true },
    },
    ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }),
  )
  return server
}

/** Stateful Streamable HTTP on /mcp, one McpServer per session; prints its port, ends with stdin. */
async function serveHttp(): Promise<void> {
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const header = req.headers['mcp-session-id']
    const id = typeof header === 'string' ? header : undefined
    const existing = id === undefined ? undefined : sessions.get(id)
    if (existing) return existing.handleRequest(req, res)
    if (id !== undefined) return void res.writeHead(404).end()
    // No session yet: the transport answers anything but an initialize request with 400 itself.
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => void sessions.set(sid, transport),
    })
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
    }
    await addServer().connect(transport)
    return transport.handleRequest(req, res)
  }
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err))
      else res.destroy()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`)
  process.stdin.resume().on('end', () => process.exit(0))
}

/** Starts the HTTP server as a child; resolves with its URL once it listens. */
async function startHttpChild(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [SELF, 'http-server'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('the HTTP server exited before listening')
    }),
  ])) as [string]
  lines.close()
  return { url: `http://127.0.0.1:${line.trim()}/mcp`, child }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.stdin?.end()
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
  await exited
  clearTimeout(timer)
}

// ---------- the clients ----------

async function sdkSide(transport: Transport, label = 'SDK Client (baseline)'): Promise<Side> {
  const client = new Client({ name: 'bench', version: '1.0.0' }, { capabilities: {} })
  await client.connect(transport)
  // As the registry does at connect: the SDK then checks structuredContent against the output schema.
  await client.listTools()
  return {
    label,
    caller: () => async () => {
      const result = await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })
      const first = (result.content as Array<{ type: string; text?: string }>)[0]
      if (first?.text !== '3') throw new Error(`${label}: unexpected result ${JSON.stringify(result)}`)
    },
    close: () => client.close(),
  }
}

async function registrySide(config: ServerConfig, problems: string[]): Promise<Side> {
  const note = (obj: object, msg: string) => problems.push(`${msg} ${JSON.stringify(obj)}`)
  const registry = new McpRegistry({
    servers: { [config.name]: config },
    connection: { max_reconnect_attempts: 0, connection_timeout: 10, initial_reconnect_delay: 1 },
    toolTimeout: 30,
    env: process.env,
    secrets: [],
    log: { debug: () => undefined, info: () => undefined, warn: note, error: note },
  })
  registry.start()
  let name: string | undefined
  try {
    const deadline = Date.now() + 15_000
    while (!registry.settled()) {
      if (Date.now() > deadline) throw new Error(`${config.name}: not settled within 15 s`)
      await sleep(10)
    }
    const status = registry.status()[0]
    if (status?.state !== 'ready') throw new Error(`${config.name}: ${status?.state} ${status?.error ?? ''}`)
    name = registry.list().find((t) => t.server === config.name && t.tool === 'add')?.name
    if (name === undefined) throw new Error(`${config.name}: no tool add`)
  } catch (err) {
    await registry.close()
    throw err
  }
  const tool = name
  return {
    label: 'registry',
    caller: () => {
      // One turn's signal per caller, as the chat service passes one per turn.
      const { signal } = new AbortController()
      return async () => {
        const outcome = await registry.call(tool, '{"a":1,"b":2}', { signal })
        if (outcome.is_error || outcome.content !== '3') {
          throw new Error(`registry: unexpected outcome ${JSON.stringify(outcome)}`)
        }
      }
    },
    close: () => registry.close(),
  }
}

// ---------- measuring ----------

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

function median(values: number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  )
}

interface Samples {
  latencies: number[]
  cpuUs: number
  calls: number
  throughputs: number[]
  loaded: number[]
}

async function sequential(call: Call, calls: number, into: Samples): Promise<void> {
  const cpu = process.cpuUsage()
  for (let i = 0; i < calls; i++) {
    const started = performance.now()
    await call()
    into.latencies.push(performance.now() - started)
  }
  const used = process.cpuUsage(cpu)
  into.cpuUs += used.user + used.system
  into.calls += calls
}

/** CALLERS callers calling back to back for LOAD_MS; calls per second of them all. */
async function concurrent(side: Side, into: Samples): Promise<void> {
  const end = performance.now() + LOAD_MS
  const started = performance.now()
  let calls = 0
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      const call = side.caller()
      while (performance.now() < end) {
        const t = performance.now()
        await call()
        into.loaded.push(performance.now() - t)
        calls++
      }
    }),
  )
  into.throughputs.push(calls / ((performance.now() - started) / 1000))
}

async function compare(
  transport: string,
  sides: Side[],
  progress: (line: string) => void,
): Promise<TransportResult> {
  const samples = sides.map((): Samples => ({
    latencies: [],
    cpuUs: 0,
    calls: 0,
    throughputs: [],
    loaded: [],
  }))
  const callers = sides.map((side) => side.caller())
  for (const call of callers) {
    for (let i = 0; i < WARM_UP; i++) await call()
  }
  // Who goes first rotates from round to round too.
  const order = (round: number) => sides.map((_, i) => (i + round) % sides.length)
  for (let round = 0; round < ROUNDS; round++) {
    for (const i of order(round)) await sequential(callers[i]!, CALLS_PER_ROUND, samples[i]!)
  }
  for (let round = 0; round < LOAD_ROUNDS; round++) {
    for (const i of order(round)) await concurrent(sides[i]!, samples[i]!)
  }
  const results = sides.map((side, i): SideResult => {
    const s = samples[i]!
    const sorted = [...s.latencies].sort((x, y) => x - y)
    return {
      label: side.label,
      median: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      cpuUs: s.cpuUs / s.calls,
      throughput: median(s.throughputs),
      throughputRatio: median(s.throughputs.map((t, round) => t / samples[0]!.throughputs[round]!)),
      loadedMedian: median(s.loaded),
    }
  })
  for (const r of results) {
    progress(
      `${transport}, ${r.label}: median ${fmt(r.median, 3)} ms, p99 ${fmt(r.p99, 3)} ms, ` +
        `${fmt(r.cpuUs)} µs CPU/call; ${CALLERS} callers ${fmt(r.throughput)} calls/s ` +
        `(median ${fmt(r.loadedMedian, 2)} ms)`,
    )
  }
  return { transport, sides: results }
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

/** Closes what was opened, last first, even when a later one failed to open. */
async function closeAll(sides: Side[]): Promise<void> {
  for (const side of sides.reverse()) await side.close()
}

async function benchStdio(progress: (line: string) => void, problems: string[]): Promise<TransportResult> {
  const sides: Side[] = []
  try {
    const demo = { command: process.execPath, args: [DEMO] }
    // In a session of its own, as the registry's: on a loaded machine the scheduler treats them alike.
    sides.push(
      await sdkSide(new StdioClientTransport({ ...ownSession(process.execPath, [DEMO]), stderr: 'ignore' })),
    )
    // The registry's transport under the bare client: what of the registry's cost is the transport's.
    const transport = new StdioTransport({
      ...demo,
      env: { ...process.env } as Record<string, string>,
      maxMessageBytes: 16 * 1024 * 1024,
    })
    sides.push(await sdkSide(transport, 'SDK Client + our StdioTransport'))
    sides.push(await registrySide({ name: 'demo', transport: 'stdio', ...demo, env: {} }, problems))
    return await compare('stdio', sides, progress)
  } finally {
    await closeAll(sides)
  }
}

/**
 * Runs `work` with Node's MaxListenersExceededWarning counted rather than printed: the SDK's
 * Streamable HTTP transport gives every fetch the same signal, and undici only removes its abort
 * listener when the request is garbage-collected, so they pile up and Node warns on each fetch, by
 * the hundred. Any other warning is printed as usual.
 */
async function countingListenerWarnings<T>(work: () => Promise<T>): Promise<{ result: T; warnings: number }> {
  const printers = process.listeners('warning')
  let warnings = 0
  const filter = (warning: Error) => {
    if (warning.name === 'MaxListenersExceededWarning') warnings++
    else for (const print of printers) print(warning)
  }
  process.removeAllListeners('warning')
  process.on('warning', filter)
  try {
    return { result: await work(), warnings }
  } finally {
    // Warnings are emitted on the next tick: let the last ones reach the filter first.
    await sleep(10)
    process.off('warning', filter)
    for (const print of printers) process.on('warning', print)
  }
}

async function benchHttp(progress: (line: string) => void, problems: string[]): Promise<TransportResult> {
  const { url, child } = await startHttpChild()
  const sides: Side[] = []
  try {
    sides.push(await sdkSide(new StreamableHTTPClientTransport(new URL(url))))
    sides.push(
      await registrySide({ name: 'remote', transport: 'http', explicit: true, url, headers: {} }, problems),
    )
    return await compare('Streamable HTTP', sides, progress)
  } finally {
    await closeAll(sides)
    await stopChild(child)
  }
}

function rows(results: TransportResult[]): string[] {
  const signed = (d: number, digits: number) => `${d >= 0 ? '+' : '−'}${fmt(Math.abs(d), digits)}`
  return results.flatMap(({ transport, sides: [base, ...others] }) => [
    `| ${transport} | ${base!.label} | ${fmt(base!.median, 3)} | ${fmt(base!.p99, 3)} | ${fmt(base!.cpuUs)} | ${fmt(base!.throughput)} | ${fmt(base!.loadedMedian, 2)} |`,
    ...others.map(
      (o) =>
        `| ${transport} | ${o.label} | ${fmt(o.median, 3)} (${signed((o.median - base!.median) * 1000, 0)} µs) | ` +
        `${fmt(o.p99, 3)} | ${fmt(o.cpuUs)} (${signed(o.cpuUs - base!.cpuUs, 0)}) | ` +
        `${fmt(o.throughput)} (${fmt(o.throughputRatio, 2)}×) | ${fmt(o.loadedMedian, 2)} |`,
    ),
  ])
}

export const bench: Bench = {
  name: 'mcp',
  async run(progress) {
    const problems: string[] = []
    const started = performance.now()
    const stdio = await benchStdio(progress, problems)
    const { result: http, warnings } = await countingListenerWarnings(() => benchHttp(progress, problems))
    progress(
      `Streamable HTTP: ${warnings} MaxListenersExceededWarning from the SDK's transport (not printed)`,
    )
    const results = [stdio, http]
    progress(`took ${fmt((performance.now() - started) / 1000, 1)} s`)
    if (problems.length > 0) throw new Error(`the registry logged problems:\n${problems.join('\n')}`)
    const [sdk, transport, registry] = stdio.sides as [SideResult, SideResult, SideResult]
    const [httpSdk, httpRegistry] = http.sides as [SideResult, SideResult]
    const signed = (d: number) => `${d >= 0 ? '+' : '−'}${fmt(Math.abs(d))}`
    const us = (a: SideResult, b: SideResult) => signed((b.median - a.median) * 1000)
    const cpu = (a: SideResult, b: SideResult) => signed(b.cpuUs - a.cpuUs)
    // Within a tenth of the baseline's both ways: no more than run-to-run noise on this machine.
    const small =
      Math.abs(httpRegistry.median - httpSdk.median) < httpSdk.median / 10 &&
      Math.abs(httpRegistry.cpuUs - httpSdk.cpuUs) < httpSdk.cpuUs / 10
    return {
      title: 'MCP tool calls',
      markdown: `
What our MCP registry (\`src/mcp/registry.ts\`) adds to one tool call, against the bare SDK
\`Client\` (\`@modelcontextprotocol/sdk\`) calling the same server in the same run (\`bench/mcp.ts\`).
The tool is \`add\` with \`{"a":1,"b":2}\`; it has an output schema, so every client checks the
structured result (the SDK clients list the tools once, as the registry does when it connects).
The registry's call is \`registry.call(name, '{"a":1,"b":2}', { signal })\`, one signal per caller
(a turn's): it parses the JSON text, checks the arguments against the input schema (ajv), routes
the name to its server, gives the call its own timeout (an \`AbortController\` and a timer that the
SDK listens on), counts the request on its connection for session renewal, and turns the result
into text.

- **stdio**: our demo server (\`dist/servers/demo.js\`), one child for each client, each in a
  session of its own (the registry's transport starts it \`detached\`, the baseline's under
  \`setsid\`: Linux schedules each session as one group, and on a loaded machine a server in the
  client's group would be served differently). The baseline
  talks to it through the SDK's \`StdioClientTransport\`, the registry through ours
  (\`src/mcp/stdio-transport.ts\`); the middle row is the bare SDK \`Client\` on our transport, to
  tell the transport's share from the rest of the registry's.
- **Streamable HTTP**: an SDK \`McpServer\` with \`StreamableHTTPServerTransport\` (stateful
  sessions, answers as SSE streams, the SDK's default) on 127.0.0.1, one session per client, in a
  child process: not in-process, so the server's work is not on the measured event loop, as over
  stdio, and on 2 cores the client and the server each have one. Both clients use the SDK's
  \`StreamableHTTPClientTransport\`.

Sequential: ${WARM_UP} warm-up calls per client, then ${fmt(ROUNDS * CALLS_PER_ROUND)} calls each, timed one by one, in
${ROUNDS} rounds of ${CALLS_PER_ROUND} where the clients take turns; median and p99 over all of them, and the CPU
time (user + system) of the calling process per call. Concurrent: ${CALLERS} callers calling back to
back for ${fmt(LOAD_MS / 1000, 1)} s, ${LOAD_ROUNDS} rounds per client taking turns: the median of the rounds' calls per
second, and the median latency of a call under that load. The ratio beside calls/s is the median
of each round's ratio to the baseline's calls/s in the same round (the two ran back to back), which
a shared machine's changing load moves less than a ratio of medians.

| transport | client | sequential median ms | p99 ms | client CPU per call µs | ${CALLERS} callers: calls/s | ${CALLERS} callers: median ms |
| --- | --- | ---: | ---: | ---: | ---: | ---: |
${rows(results).join('\n')}

Over stdio the registry changes the median call by ${us(sdk, registry)} µs and the client's CPU per call by
${cpu(sdk, registry)} µs; our transport alone (the middle row) by ${us(sdk, transport)} µs and ${cpu(sdk, transport)} µs. Latency moves by tens
of microseconds from run to run, CPU per call less. The rest of the registry's share is spread
over its own steps (a profile shows no single hot spot): the call's \`AbortController\` and timer,
which the SDK then listens on, the schema check, the layers of async functions; under load with
${CALLERS} callers it shows as the throughput above. Our transport hands the client every answer of a chunk
at once, as the SDK's does, and waits a turn of the event loop only after a notification (so that
a progress notification read together with its result still reaches the request). An earlier
version waited a turn after every message, and reached 0.77× the baseline's throughput on its own
and 0.56× through the registry (measured on this machine the same day).

Target (issue 13): a tool call through the registry over stdio with ${CALLERS} callers ≥ 0.9× the
bare SDK's calls/s: ${fmt(registry.throughputRatio, 2)}×, ${registry.throughputRatio >= 0.9 ? 'met' : '**missed**'}.

Over Streamable HTTP a call costs the client about ${fmt(httpSdk.cpuUs / 1000, 1)} ms of CPU in the SDK itself
(undici's \`fetch\`, and web streams to parse each answer's SSE stream), beside which the
registry's work per call is small: ${us(httpSdk, httpRegistry)} µs at the median and ${cpu(httpSdk, httpRegistry)} µs of CPU per call${small ? ', within the noise' : ''}. Both clients make
Node warn \`MaxListenersExceededWarning\`, ${fmt(warnings)} times in this part (counted, not printed): each
\`fetch\` adds an abort listener to the transport's one signal, which undici removes only when the
request is garbage-collected.
`,
    }
  },
}

const [, script, role] = process.argv
if (script && import.meta.url === pathToFileURL(script).href && role === 'http-server') {
  await serveHttp()
}
