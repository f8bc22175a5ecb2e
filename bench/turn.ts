// The cost of a chat turn (issue 13): the platform as its own process, driven over WebSocket by 50
// clients at once and by 1 client turn after turn, against the same work done with no framework in
// one process (the baseline): the same streamed request with undici and, for a tool turn, the same
// tool call with the bare MCP SDK client. A local stand-in provider answers at once, in its own
// process, so neither side pays for it; the demo MCP server runs over stdio for both.
// Roles of this file as a child process: `turn.js provider` (the stand-in provider) and
// `turn.js baseline URL` (the baseline, driven over IPC).
// BENCH_PROFILE=1 adds a CPU profile of the platform's concurrent phase (top functions by self time).
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import WebSocket, { WebSocketServer } from 'ws'
import {
  cpuMsOf,
  DEMO,
  demoServers,
  fmt,
  median,
  ownSession,
  quantile,
  ratio,
  startPlatform,
  verdict,
  type StoreKind,
} from './platform.js'
import { summariseProfile, type CpuProfile, type ProfileSummary } from './profile.js'
import type { Bench } from './run.js'

const SELF = fileURLToPath(import.meta.url)
const CLIENTS = 50
/** Turns per measured round: at 50 clients, and for the one client going turn after turn. */
const CONCURRENT_TURNS = 1000
const SEQUENTIAL_TURNS = 150
const ROUNDS = 3
/** Warm-up turns of each side and kind before anything is measured (their answers are checked). */
const WARM_UP_TURNS = 150
const PROFILE_TURNS = 1000

type Kind = 'plain' | 'tool'
const KINDS: Kind[] = ['plain', 'tool']

// ---------- what the provider answers, and what each side checks ----------

const MODEL = 'bench-model'
const SYSTEM_PROMPT = 'You are a helpful assistant.'
const USER_TEXT: Record<Kind, string> = {
  plain: 'Say hello in a sentence.',
  tool: 'What is 1 + 2? Use the add tool.',
}
/** A short answer in 20 deltas, as a model streams it token by token. */
const ANSWER =
  'Hello! This is the stand-in provider, answering you at once in twenty small pieces of text, as models stream them.'
const ANSWER_AFTER_TOOL = 'The add tool says that 1 + 2 is 3: the sum of the two numbers you gave, as asked.'
const TOOL_NAME = 'demo__add'
const TOOL_CALL_ID = 'call_bench_add'
const USAGE = { prompt_tokens: 120, completion_tokens: 20, total_tokens: 140 }

/** The words of `text`, each with the space before it: 20 pieces for the answers above. */
function pieces(text: string): string[] {
  const words = text.split(/(?= )/)
  if (words.length !== 20) throw new Error(`${words.length} pieces, not 20: ${text}`)
  return words
}

/** A streamed chat.completion.chunk body, in OpenAI's SSE format. */
function sseBody(deltas: object[], finish: string): string {
  const chunk = (choices: unknown[], extra: object = {}): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1763900000, model: MODEL, choices, ...extra })}\n\n`
  return [
    ...deltas.map((delta) => chunk([{ index: 0, delta, finish_reason: null }])),
    chunk([{ index: 0, delta: {}, finish_reason: finish }]),
    chunk([], { usage: USAGE }),
    'data: [DONE]\n\n',
  ].join('')
}

const TEXT_REPLY = sseBody(
  [{ role: 'assistant', content: '' }, ...pieces(ANSWER).map((content) => ({ content }))],
  'stop',
)
const AFTER_TOOL_REPLY = sseBody(
  [{ role: 'assistant', content: '' }, ...pieces(ANSWER_AFTER_TOOL).map((content) => ({ content }))],
  'stop',
)
const TOOL_CALL_REPLY = sseBody(
  [
    { role: 'assistant', content: null },
    {
      tool_calls: [
        {
          index: 0,
          id: TOOL_CALL_ID,
          type: 'function',
          function: { name: TOOL_NAME, arguments: '{"a": 1, ' },
        },
      ],
    },
    { tool_calls: [{ index: 0, function: { arguments: '"b": 2}' } }] },
  ],
  'tool_calls',
)

interface WireMessage {
  role?: string
  content?: unknown
  tool_call_id?: string
}

/**
 * The stand-in provider's answer to one request: after a tool result, the final text; to a user
 * asking for the add tool (when the request offers it), a call of it; else the text answer.
 * Refuses (400) what the real API refuses and a bench request would not send.
 */
function reply(body: { stream?: unknown; messages?: unknown; tools?: unknown }): string | undefined {
  if (body.stream !== true || !Array.isArray(body.messages) || body.messages.length === 0) return undefined
  const last = body.messages.at(-1) as WireMessage
  if (last.role === 'tool') return last.tool_call_id === TOOL_CALL_ID ? AFTER_TOOL_REPLY : undefined
  const offered =
    Array.isArray(body.tools) &&
    body.tools.some((t: { function?: { name?: string } }) => t.function?.name === TOOL_NAME)
  if (last.role === 'user' && offered && JSON.stringify(last.content).includes('add tool'))
    return TOOL_CALL_REPLY
  return TEXT_REPLY
}

/** The stand-in provider: prints its port, answers every chat completion at once, ends with stdin. */
async function serveProvider(): Promise<void> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      let sse: string | undefined
      try {
        if (req.method === 'POST' && req.url?.endsWith('/chat/completions'))
          sse = reply(JSON.parse(Buffer.concat(chunks).toString('utf8')) as object)
      } catch {
        // Not JSON: refused below.
      }
      if (sse === undefined) {
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { message: 'bad request', type: 'invalid_request_error' } }))
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.end(sse)
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`)
  process.stdin.resume().on('end', () => process.exit(0))
}

async function startProvider(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [SELF, 'provider'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const [line] = (await once(lines, 'line')) as [string]
  lines.close()
  return { url: `http://127.0.0.1:${line.trim()}/v1`, child }
}

// ---------- the baseline: undici + the bare MCP SDK client, no framework (child process) ----------

interface RoundRequest {
  type: 'round'
  kind: Kind
  concurrency: number
  turns: number
  check: boolean
}

interface RoundResult {
  turns: number
  wallMs: number
  /** CPU time of the serving process (user + system) during the round. */
  cpuMs: number
  latencies: number[]
  /** WebSocket frames received (the platform only). */
  frames: number
}

/** Runs `turns` turns, `concurrency` at a time, each worker taking the next until none is left. */
async function runTurns(
  concurrency: number,
  turns: number,
  turn: (worker: number) => Promise<void>,
): Promise<{ wallMs: number; latencies: number[] }> {
  const latencies: number[] = []
  let started = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (started < turns) {
        started++
        const t = performance.now()
        await turn(worker)
        latencies.push(performance.now() - t)
      }
    }),
  )
  return { wallMs: performance.now() - t0, latencies }
}

async function serveBaseline(providerUrl: string): Promise<void> {
  const { Pool } = await import('undici')
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js')
  const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js')
  const base = new URL(providerUrl)
  const pool = new Pool(base.origin)
  const path = `${base.pathname.replace(/\/$/, '')}/chat/completions`
  const mcp = new Client({ name: 'bench-baseline', version: '1.0.0' }, { capabilities: {} })
  // In a session of its own, as the platform's registry starts it (see ownSession).
  await mcp.connect(new StdioClientTransport({ ...ownSession(process.execPath, [DEMO]), stderr: 'ignore' }))
  // What the LLM is offered, made once: every tool of the server, named as the platform names them.
  const { tools } = await mcp.listTools()
  const wireTools = tools.map((t) => ({
    type: 'function',
    function: { name: `demo__${t.name}`, description: t.description, parameters: t.inputSchema },
  }))

  interface Reply {
    text: string
    calls: { id: string; name: string; arguments: string }[]
  }
  /** A chunk for the WebSocket client, in the platform's protocol (the WebSocket variant only). */
  type Emit = (chunk: { type: string; data: unknown }) => void
  /** One streamed chat completion, read as it arrives: SSE events split by hand, each JSON parsed. */
  const complete = async (messages: object[], emit?: Emit): Promise<Reply> => {
    const res = await pool.request({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        model: MODEL,
        messages,
        temperature: 0.7,
        top_p: 0.9,
        max_tokens: 500,
        tools: wireTools,
        stream: true,
        stream_options: { include_usage: true },
      }),
    })
    if (res.statusCode !== 200) throw new Error(`provider: ${res.statusCode} ${await res.body.text()}`)
    const reply: Reply = { text: '', calls: [] }
    let buffer = ''
    res.body.setEncoding('utf8')
    for await (const piece of res.body as AsyncIterable<string>) {
      buffer += piece
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (!event.startsWith('data: ')) continue
        const data = event.slice(6)
        if (data === '[DONE]') continue
        const chunk = JSON.parse(data) as {
          choices: {
            delta: {
              content?: string | null
              tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[]
            }
          }[]
        }
        const delta = chunk.choices[0]?.delta
        if (delta?.content) {
          reply.text += delta.content
          emit?.({ type: 'text', data: delta.content })
        }
        for (const call of delta?.tool_calls ?? []) {
          const into = (reply.calls[call.index] ??= { id: '', name: '', arguments: '' })
          if (call.id) into.id = call.id
          if (call.function?.name) into.name += call.function.name
          if (call.function?.arguments) into.arguments += call.function.arguments
        }
      }
    }
    return reply
  }

  /** One turn: the request, and while the model asks for tools, their calls and the next request. */
  const turn = async (
    text: string,
    emit?: Emit,
  ): Promise<{ text: string; results: string[]; hops: number }> => {
    const messages: object[] = [
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: text },
    ]
    const results: string[] = []
    let hops = 0
    let reply = await complete(messages, emit)
    while (reply.calls.length > 0 && hops < 8) {
      hops++
      messages.push({
        role: 'assistant',
        content: reply.text || null,
        tool_calls: reply.calls.map((c) => ({
          id: c.id,
          type: 'function',
          function: { name: c.name, arguments: c.arguments },
        })),
      })
      for (const call of reply.calls) {
        const args = JSON.parse(call.arguments) as Record<string, unknown>
        emit?.({ type: 'tool_call', data: { id: call.id, name: call.name, server: 'demo', arguments: args } })
        const result = await mcp.callTool({ name: call.name.slice('demo__'.length), arguments: args })
        const content = (result.content as { type: string; text?: string }[])
          .map((part) => part.text ?? '')
          .join('')
        emit?.({ type: 'tool_result', data: { id: call.id, name: call.name, is_error: false, content } })
        results.push(content)
        messages.push({ role: 'tool', tool_call_id: call.id, content })
      }
      reply = await complete(messages, emit)
    }
    return { text: reply.text, results, hops }
  }

  // The same turns behind a bare ws server speaking the platform's protocol: one frame per chunk.
  const server = createServer((_req, res) => res.writeHead(404).end())
  const wss = new WebSocketServer({ server, path: '/ws/chat', maxPayload: 1_048_576 })
  wss.on('connection', (ws) =>
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as { request_id: string; payload: { text: string } }
      const send = (reply: object) => ws.send(JSON.stringify({ request_id: frame.request_id, ...reply }))
      const conversation_id = randomUUID()
      send({ status: 'processing', metadata: { conversation_id } })
      turn(frame.payload.text, (chunk) => send({ status: 'chunk', chunk })).then(
        ({ hops }) =>
          send({
            status: 'complete',
            metadata: { conversation_id, model: MODEL, finish_reason: 'stop', tool_hops: hops },
          }),
        (err: unknown) => send({ status: 'error', error: { code: 500, message: String(err) } }),
      )
    }),
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')

  process.on('message', (message: RoundRequest | { type: 'exit' }) => {
    if (message.type === 'exit') {
      wss.close()
      server.close()
      void Promise.all([mcp.close(), pool.close()]).then(() => process.exit(0))
      return
    }
    const { kind, check } = message
    const cpu = process.cpuUsage()
    runTurns(message.concurrency, message.turns, async () => {
      const done = await turn(USER_TEXT[kind])
      const expected = kind === 'tool' ? ANSWER_AFTER_TOOL : ANSWER
      if (check && done.text !== expected) throw new Error(`baseline: answer ${done.text}`)
      if (check && done.results.join() !== (kind === 'tool' ? '3' : ''))
        throw new Error(`baseline: tool results ${done.results.join()}`)
    }).then(
      ({ wallMs, latencies }) => {
        const used = process.cpuUsage(cpu)
        const result: RoundResult = {
          turns: message.turns,
          wallMs,
          cpuMs: (used.user + used.system) / 1000,
          latencies,
          frames: 0,
        }
        process.send!(result)
      },
      (err: unknown) => {
        process.stderr.write(`baseline failed: ${String(err)}\n`)
        process.exit(1)
      },
    )
  })
  process.send!({ type: 'ready', port: (server.address() as AddressInfo).port })
}

// ---------- the sides, as the driver sees them ----------

interface Side {
  label: string
  round(kind: Kind, concurrency: number, turns: number, check?: boolean): Promise<RoundResult>
  close(): Promise<void>
}

/**
 * The baseline child, and two sides on it: turns it runs itself when told over IPC (the
 * baseline), and turns its WebSocket clients ask for (the baseline behind a bare ws server).
 */
async function baselineSides(providerUrl: string): Promise<{ baseline: Side; ws: Side }> {
  const child = fork(SELF, ['baseline', providerUrl], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = once(child, 'exit')
  const next = () =>
    Promise.race([
      once(child, 'message').then(([m]) => m as unknown),
      exited.then(([code]) => {
        throw new Error(`the baseline exited with ${String(code)}`)
      }),
    ])
  const { port } = (await next()) as { port: number }
  const baseline: Side = {
    label: 'baseline',
    async round(kind, concurrency, turns, check = false) {
      const request: RoundRequest = { type: 'round', kind, concurrency, turns, check }
      child.send(request)
      return (await next()) as RoundResult
    },
    async close() {
      child.send({ type: 'exit' })
      await exited
    },
  }
  const ws = await socketSide(
    'baseline over WebSocket',
    child.pid!,
    `ws://127.0.0.1:${port}/ws/chat`,
    async () => {},
  )
  return { baseline, ws }
}

/** One WebSocket connection of the driver; one turn at a time on it. */
class Connection {
  frames = 0
  #id = 0
  #waiting: { resolve: () => void; reject: (err: Error) => void; check?: Kind; seen: Frame[] } | undefined

  constructor(
    readonly ws: WebSocket,
    readonly name: string,
  ) {
    ws.on('message', (data: Buffer) => this.#frame(data))
    ws.on('close', () => this.#waiting?.reject(new Error(`${name}: socket closed during a turn`)))
  }

  static async open(url: string, name: string): Promise<Connection> {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    return new Connection(ws, name)
  }

  /** One chat turn in a new conversation; `check` parses every frame and checks the answer. */
  turn(kind: Kind, check?: Kind): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject, check, seen: [] }
      const request_id = `${this.name}-${++this.#id}`
      this.ws.send(JSON.stringify({ action: 'chat', request_id, payload: { text: USER_TEXT[kind] } }))
    })
  }

  #frame(data: Buffer): void {
    this.frames++
    const waiting = this.#waiting
    if (!waiting) return
    // Measured turns look for the terminal frame only (the driver's cost is not what is measured).
    if (waiting.check) waiting.seen.push(JSON.parse(data.toString('utf8')) as Frame)
    if (data.includes('"status":"complete"')) {
      this.#waiting = undefined
      const problem = waiting.check ? checkFrames(waiting.check, waiting.seen) : undefined
      if (problem) waiting.reject(new Error(`${this.name}: ${problem}`))
      else waiting.resolve()
    } else if (data.includes('"status":"error"') || data.includes('"status":"cancelled"')) {
      this.#waiting = undefined
      waiting.reject(new Error(`${this.name}: ${data.toString('utf8')}`))
    }
  }
}

interface Frame {
  status: string
  chunk?: { type: string; data: unknown }
  metadata?: { tool_hops?: number }
}

/** What a turn's frames must show: the whole answer in its text chunks, the tool called and answered. */
function checkFrames(kind: Kind, frames: Frame[]): string | undefined {
  const text = frames
    .filter((f) => f.chunk?.type === 'text')
    .map((f) => f.chunk!.data as string)
    .join('')
  const expected = kind === 'tool' ? ANSWER_AFTER_TOOL : ANSWER
  if (text !== expected) return `answer ${JSON.stringify(text)}`
  const hops = frames.at(-1)?.metadata?.tool_hops
  if (hops !== (kind === 'tool' ? 1 : 0)) return `tool_hops ${String(hops)}`
  if (kind === 'tool') {
    const result = frames.find((f) => f.chunk?.type === 'tool_result')?.chunk?.data as
      { content?: string; is_error?: boolean } | undefined
    if (result?.content !== '3' || result.is_error) return `tool result ${JSON.stringify(result)}`
  }
  return undefined
}

/** A side driven over WebSocket by CLIENTS connections; CPU time of `pid` from /proc. */
async function socketSide(label: string, pid: number, url: string, stop: () => Promise<void>): Promise<Side> {
  const connections: Connection[] = []
  try {
    for (let i = 0; i < CLIENTS; i++) connections.push(await Connection.open(url, `c${i}`))
  } catch (err) {
    await stop()
    throw err
  }
  return {
    label,
    async round(kind, concurrency, turns, check = false) {
      const frames = connections.reduce((n, c) => n + c.frames, 0)
      const cpu = cpuMsOf(pid)
      const { wallMs, latencies } = await runTurns(concurrency, turns, (worker) =>
        connections[worker]!.turn(kind, check ? kind : undefined),
      )
      return {
        turns,
        wallMs,
        cpuMs: cpuMsOf(pid) - cpu,
        latencies,
        frames: connections.reduce((n, c) => n + c.frames, 0) - frames,
      }
    },
    async close() {
      for (const c of connections) c.ws.close()
      await stop()
    },
  }
}

async function platformSide(providerUrl: string, store: StoreKind, nodeArgs: string[] = []): Promise<Side> {
  const platform = await startPlatform({ providerUrl, store, servers: demoServers(1), nodeArgs })
  return socketSide(`platform, ${store} store`, platform.pid, platform.ws, () => platform.stop())
}

// ---------- measuring ----------

type Mode = 'concurrent' | 'sequential'
const MODES: Mode[] = ['concurrent', 'sequential']
const CONCURRENCY: Record<Mode, number> = { concurrent: CLIENTS, sequential: 1 }
const TURNS: Record<Mode, number> = { concurrent: CONCURRENT_TURNS, sequential: SEQUENTIAL_TURNS }

interface Figures {
  turnsPerS: number
  p50: number
  p99: number
  cpuMsPerTurn: number
  framesPerTurn: number
}

/** Medians over the rounds of each figure. */
function figures(rounds: RoundResult[]): Figures {
  const per = rounds.map((r) => {
    const sorted = [...r.latencies].sort((a, b) => a - b)
    return {
      turnsPerS: r.turns / (r.wallMs / 1000),
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      cpuMsPerTurn: r.cpuMs / r.turns,
      framesPerTurn: r.frames / r.turns,
    }
  })
  const m = (key: keyof Figures) => median(per.map((p) => p[key]))
  return {
    turnsPerS: m('turnsPerS'),
    p50: m('p50'),
    p99: m('p99'),
    cpuMsPerTurn: m('cpuMsPerTurn'),
    framesPerTurn: m('framesPerTurn'),
  }
}

type SideName = 'baseline' | 'wsBaseline' | 'memory' | 'jsonl'
const SIDES: SideName[] = ['baseline', 'wsBaseline', 'memory', 'jsonl']
type Results = Record<Kind, Record<Mode, Record<SideName, Figures>>>

async function measure(providerUrl: string, progress: (line: string) => void): Promise<Results> {
  const sides = {} as Record<SideName, Side>
  try {
    const baseline = await baselineSides(providerUrl)
    sides.baseline = baseline.baseline
    sides.wsBaseline = baseline.ws
    sides.memory = await platformSide(providerUrl, 'memory')
    sides.jsonl = await platformSide(providerUrl, 'jsonl')
    for (const name of SIDES) {
      for (const kind of KINDS) await sides[name].round(kind, CLIENTS, WARM_UP_TURNS, true)
    }
    progress(`warmed up: ${WARM_UP_TURNS} turns of each kind on each side, answers checked`)
    const rounds = {} as Record<Kind, Record<Mode, Record<SideName, RoundResult[]>>>
    for (const kind of KINDS) {
      const empty = () =>
        Object.fromEntries(SIDES.map((name): [SideName, RoundResult[]] => [name, []])) as Record<
          SideName,
          RoundResult[]
        >
      rounds[kind] = { concurrent: empty(), sequential: empty() }
    }
    // Every round goes through every case, the sides taking turns (who goes first rotates): drift
    // of the machine's load reaches them alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of KINDS) {
        for (const mode of MODES) {
          for (let i = 0; i < SIDES.length; i++) {
            const name = SIDES[(i + round) % SIDES.length]!
            const r = await sides[name].round(kind, CONCURRENCY[mode], TURNS[mode])
            rounds[kind][mode][name].push(r)
          }
        }
      }
      progress(`round ${round + 1} of ${ROUNDS} done`)
    }
    const results = {} as Results
    for (const kind of KINDS) {
      results[kind] = { concurrent: {}, sequential: {} } as Results[Kind]
      for (const mode of MODES) {
        for (const name of SIDES) {
          const f = figures(rounds[kind][mode][name])
          results[kind][mode][name] = f
          progress(
            `${kind}, ${mode === 'concurrent' ? `${CLIENTS} clients` : '1 client'}, ${name}: ${fmt(f.turnsPerS)} turns/s, ` +
              `p50 ${fmt(f.p50, 2)} ms, p99 ${fmt(f.p99, 2)} ms, CPU ${fmt(f.cpuMsPerTurn, 3)} ms/turn` +
              (name === 'baseline' ? '' : `, ${fmt(f.framesPerTurn, 1)} frames/turn`),
          )
        }
      }
    }
    return results
  } finally {
    for (const side of Object.values(sides).reverse()) await side.close()
  }
}

/** The platform (memory store) under --cpu-prof, 50 clients, each kind alone in its own window. */
async function profile(
  providerUrl: string,
  progress: (line: string) => void,
): Promise<Record<Kind, ProfileSummary>> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-profile-'))
  try {
    const side = await platformSide(providerUrl, 'memory', ['--cpu-prof', `--cpu-prof-dir=${dir}`])
    const windows = {} as Record<Kind, { from: number; to: number; turns: number }>
    try {
      for (const kind of KINDS) await side.round(kind, CLIENTS, WARM_UP_TURNS, true)
      for (const kind of KINDS) {
        // The profile's clock is CLOCK_MONOTONIC in microseconds, as process.hrtime is (in ns).
        const from = Number(process.hrtime.bigint() / 1000n)
        await side.round(kind, CLIENTS, PROFILE_TURNS)
        windows[kind] = { from, to: Number(process.hrtime.bigint() / 1000n), turns: PROFILE_TURNS }
      }
    } finally {
      await side.close()
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    if (!file) throw new Error('the platform wrote no CPU profile (it did not exit by itself on SIGTERM?)')
    const cpuProfile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile
    const summaries = {} as Record<Kind, ProfileSummary>
    for (const kind of KINDS) {
      summaries[kind] = summariseProfile(cpuProfile, windows[kind].from, windows[kind].to)
      progress(`profile, ${kind}: ${fmt(summaries[kind].busyMs / PROFILE_TURNS, 3)} ms busy per turn`)
    }
    return summaries
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// ---------- the report ----------

function profileMarkdown(summaries: Record<Kind, ProfileSummary>): string {
  const parts = KINDS.map((kind) => {
    const s = summaries[kind]
    const fns = s.functions
      .slice(0, 15)
      .map(
        (f) =>
          `| ${f.name} | ${f.where} | ${fmt(f.selfMs / PROFILE_TURNS, 3)} | ${fmt((100 * f.selfMs) / s.busyMs, 1)} % |`,
      )
    const areas = s.areas
      .slice(0, 12)
      .map(
        (a) =>
          `| ${a.area} | ${fmt(a.inclusiveMs / PROFILE_TURNS, 3)} | ${fmt((100 * a.inclusiveMs) / s.busyMs, 1)} % |`,
      )
    return `#### ${kind === 'plain' ? 'Plain turn' : 'Turn with one tool call'}

${fmt(s.busyMs)} ms busy of ${fmt(s.windowMs)} ms (${fmt(PROFILE_TURNS)} turns: ${fmt(s.busyMs / PROFILE_TURNS, 3)} ms busy per turn under the profiler), ${fmt(s.samples)} samples.

| function (self time) | where | ms per turn | % of busy |
| --- | --- | ---: | ---: |
${fns.join('\n')}

| area (inclusive: on the stack) | ms per turn | % of busy |
| --- | ---: | ---: |
${areas.join('\n')}`
  })
  return `### CPU profile of the platform, ${CLIENTS} clients, memory store

\`BENCH_PROFILE=1 npm run bench -- turn\`: the platform started again with \`--cpu-prof\`, warmed up,
then ${fmt(PROFILE_TURNS)} turns of each kind, each kind in its own time window of the profile
(samples outside the windows, start-up and shutdown, are left out). "Busy" is every sample but
\`(idle)\`. Self time is a function's own (not its callees'); WebAssembly functions are named by
who called them (tiktoken's encoder is WebAssembly, so is undici's HTTP parser). An area's time
counts every sample with a function of that area anywhere on the stack, so areas overlap
(WebAssembly counts for its caller's area; the task queues and V8's builtins, on nearly every
stack, are left out).

${parts.join('\n\n')}`
}

function markdown(results: Results, summaries: Record<Kind, ProfileSummary> | undefined): string {
  const label: Record<SideName, string> = {
    baseline: 'baseline: undici + bare MCP SDK, no framework',
    wsBaseline: 'the same behind a bare ws server (not a target)',
    memory: 'platform, memory store',
    jsonl: 'platform, jsonl store with fsync',
  }
  const table = (mode: Mode) =>
    KINDS.flatMap((kind) => {
      const base = results[kind][mode].baseline
      return SIDES.map((name) => {
        const f = results[kind][mode][name]
        const vs = (a: number, b: number) => (name === 'baseline' ? '' : ` (${ratio(a, b)})`)
        return (
          `| ${kind === 'plain' ? 'plain' : 'one tool call'} | ${label[name]} | ${fmt(f.turnsPerS)}${vs(f.turnsPerS, base.turnsPerS)} | ` +
          `${fmt(f.p50, 2)} | ${fmt(f.p99, 2)} | ${fmt(f.cpuMsPerTurn, 3)}${vs(f.cpuMsPerTurn, base.cpuMsPerTurn)} | ` +
          `${name === 'baseline' ? '–' : fmt(f.framesPerTurn, 1)} |`
        )
      })
    })
  const c = (kind: Kind, name: SideName) => results[kind].concurrent[name]
  const s = (kind: Kind, name: SideName) => results[kind].sequential[name]
  const targets: [string, number, number, 'at most' | 'at least'][] = [
    [
      'CPU per plain turn, memory store ÷ baseline (50 clients)',
      c('plain', 'memory').cpuMsPerTurn / c('plain', 'baseline').cpuMsPerTurn,
      1.5,
      'at most',
    ],
    [
      'CPU per tool turn, memory store ÷ baseline (50 clients)',
      c('tool', 'memory').cpuMsPerTurn / c('tool', 'baseline').cpuMsPerTurn,
      2,
      'at most',
    ],
    [
      'plain turns/s, memory store ÷ baseline (50 clients)',
      c('plain', 'memory').turnsPerS / c('plain', 'baseline').turnsPerS,
      0.5,
      'at least',
    ],
    [
      'tool turns/s, memory store ÷ baseline (50 clients)',
      c('tool', 'memory').turnsPerS / c('tool', 'baseline').turnsPerS,
      0.5,
      'at least',
    ],
    [
      'CPU per plain turn, jsonl ÷ memory (50 clients)',
      c('plain', 'jsonl').cpuMsPerTurn / c('plain', 'memory').cpuMsPerTurn,
      1.2,
      'at most',
    ],
    [
      'CPU per tool turn, jsonl ÷ memory (50 clients)',
      c('tool', 'jsonl').cpuMsPerTurn / c('tool', 'memory').cpuMsPerTurn,
      1.2,
      'at most',
    ],
    [
      'sequential tool turn p50, jsonl ÷ memory (1 client)',
      s('tool', 'jsonl').p50 / s('tool', 'memory').p50,
      2,
      'at most',
    ],
  ]
  const targetRows = targets.map(
    ([what, value, bound, kind]) =>
      `| ${what} | ${fmt(value, 2)}× | ${kind === 'at most' ? '≤' : '≥'} ${fmt(bound, 1)}× | ${verdict(value, bound, kind)} |`,
  )
  return `
The cost of one chat turn (\`bench/turn.ts\`). The platform runs as its own process
(\`dist/src/server.js start\`, the shipped config.yaml's settings, auth off, log level info to a
file) with our demo MCP server (\`dist/servers/demo.js\`) over stdio, once with the memory store
and once with the jsonl store (\`fsync: true\`, on this machine's disk). A local stand-in provider,
in its own process, answers every streaming chat completion at once in OpenAI's SSE format: a text
answer in 20 deltas, or, asked to use the add tool, a call of \`${TOOL_NAME}\` and then, given the
tool's result, a text answer in 20 deltas. ${CLIENTS} WebSocket clients (\`ws\`, in the bench
process) send one \`chat\` at a time each, every turn in a new conversation; then one client,
turn after turn.

The baseline is the same work with no framework, in one process of its own (\`turn.js baseline\`):
the same streamed request (same messages, the demo server's tools offered, same settings) with
undici's \`Pool\`, its SSE split by hand, and for the tool turn the same call made with the bare SDK
\`Client\` over \`StdioClientTransport\` on the demo server (started under \`setsid\`, in a session of its
own as the platform's registry starts its servers, so that the kernel's autogroup scheduling treats
both alike), then the second request; ${CLIENTS} turns
at once (and one at a time) in that process. Not a target, only to tell what a WebSocket costs
by itself: the same process also serves the same turns behind a bare \`ws\` server, to the same
${CLIENTS} clients, one frame per chunk in the platform's protocol (no validation, no store, no
token counting, no log); its CPU is read from \`/proc\` as the platform's.

CPU per turn is the serving process's user + system time over the round divided by its turns:
the platform's from \`/proc/PID/stat\` (all its threads; not the demo server's, not the
clients'), the baseline's from its own \`process.cpuUsage()\`. Latency is from sending the
request (the \`chat\` frame) to the end of the answer (the \`complete\` frame). Each side first
does ${WARM_UP_TURNS} turns of each kind (answers checked: text chunks concatenate to the
answer, the tool's result is 3); then ${ROUNDS} rounds, each one ${fmt(CONCURRENT_TURNS)} turns at
${CLIENTS} clients and ${SEQUENTIAL_TURNS} turns at 1 client of each kind, the sides taking turns
within a round; every figure is the median of the ${ROUNDS} rounds. Ratios are to the baseline of
the same run. Frames are the WebSocket frames a client receives per turn.

#### ${CLIENTS} clients at once

| turn | serving process | turns/s | p50 ms | p99 ms | CPU ms per turn | frames per turn |
| --- | --- | ---: | ---: | ---: | ---: | ---: |
${table('concurrent').join('\n')}

#### One client, turn after turn

| turn | serving process | turns/s | p50 ms | p99 ms | CPU ms per turn | frames per turn |
| --- | --- | ---: | ---: | ---: | ---: | ---: |
${table('sequential').join('\n')}

#### Targets (issue 13)

| target | this run | bound | |
| --- | ---: | ---: | --- |
${targetRows.join('\n')}

For comparison only (not targets): the platform with the memory store against the baseline
behind a bare \`ws\` server, CPU per turn at ${CLIENTS} clients: ${ratio(c('plain', 'memory').cpuMsPerTurn, c('plain', 'wsBaseline').cpuMsPerTurn)} plain,
${ratio(c('tool', 'memory').cpuMsPerTurn, c('tool', 'wsBaseline').cpuMsPerTurn)} with one tool call.

The machine is shared and has 2 cores: the ${CLIENTS} clients, the stand-in provider and the demo
server run beside the serving process, so turns/s and latencies move from run to run; CPU per turn
of the serving process moves less.
${summaries ? `\n${profileMarkdown(summaries)}\n` : '\nRun with `BENCH_PROFILE=1` for a CPU profile of the platform (top functions by self time).\n'}`
}

export const bench: Bench = {
  name: 'turn',
  async run(progress) {
    const started = performance.now()
    const provider = await startProvider()
    try {
      const results = await measure(provider.url, progress)
      const summaries = process.env.BENCH_PROFILE ? await profile(provider.url, progress) : undefined
      progress(`took ${fmt((performance.now() - started) / 1000, 1)} s`)
      return { title: 'Cost of a turn', markdown: markdown(results, summaries) }
    } finally {
      provider.child.stdin!.end()
      await once(provider.child, 'exit')
    }
  },
}

const [, script, role, argument] = process.argv
if (script && import.meta.url === pathToFileURL(script).href) {
  if (role === 'provider') await serveProvider()
  else if (role === 'baseline' && argument) await serveBaseline(argument)
}
