// The jsonl store's cost: appends per second with fsync for 1 and 4 writer processes, against
// the floor of a raw appendFile + fdatasync per event measured in the same run; and the time to
// open (index) and to read one conversation from logs of 1,000 and 1,000,000 events.
// Writers are this same file started as child processes (`node store.js writer '<json>'`).
import { pino } from 'pino'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createWriteStream, readFileSync } from 'node:fs'
import { mkdtemp, open, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { once } from 'node:events'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { JsonlStore } from '../src/store/jsonl.js'
import type { ChatEvent, NewEvent } from '../src/store/types.js'
import type { Bench } from './run.js'

const SELF = fileURLToPath(import.meta.url)
const WRITE_MS = 3000
const WARM_UP = 100
const READS = 200
const quiet = pino({ enabled: false })

interface WriterTask {
  mode: 'raw' | 'store'
  path: string
  /** Appends in flight at once in this process (store mode). */
  lanes: number
  /** Wall-clock start, the same for every writer of a run. */
  startAt: number
  durationMs: number
  id: string
}

/** An event as the chat service would append it: a tool result of a modest size. */
function newEvent(conversation: string, i: number): NewEvent {
  return {
    conversation_id: conversation,
    request_id: `r-${conversation}`,
    principal: 'bench',
    type: 'tool_result',
    role: 'tool',
    tool_call_id: `call-${i}`,
    content: `{"temperature": 21.5, "unit": "celsius", "reading": ${i}, "station": "bench"}`,
    status: 'complete',
    token_count: 24,
  }
}

async function sleepUntil(time: number): Promise<void> {
  const wait = time - Date.now()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
}

async function writer(task: WriterTask): Promise<number> {
  const end = task.startAt + task.durationMs
  let events = 0
  if (task.mode === 'raw') {
    // The floor: the same lines, each appended and fdatasync'ed alone, no lock, no checks.
    const file = await open(task.path, 'a')
    await sleepUntil(task.startAt)
    for (let i = 0; Date.now() < end; i++) {
      const event: ChatEvent = {
        ...newEvent(`c-${task.id}`, i),
        id: randomUUID(),
        seq: i + 1,
        timestamp: new Date().toISOString(),
      }
      await file.appendFile(`${JSON.stringify(event)}\n`)
      await file.datasync()
      events++
    }
    await file.close()
    return events
  }
  const store = await JsonlStore.open({ path: task.path, fsync: true, isLive: () => true, log: quiet })
  await sleepUntil(task.startAt)
  await Promise.all(
    Array.from({ length: task.lanes }, async (_, lane) => {
      const conversation = `c-${task.id}-${lane}`
      for (let i = 0; Date.now() < end; i++) {
        await store.append([newEvent(conversation, i)])
        events++
      }
    }),
  )
  await store.close()
  return events
}

/** Events per second of `writers` processes appending to one file together. */
async function measureWrites(mode: WriterTask['mode'], writers: number, lanes: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-store-'))
  const path = join(dir, 'events.jsonl')
  try {
    // Time for every process to start and open the store before the common start.
    const startAt = Date.now() + 1500
    const counts = await Promise.all(
      Array.from({ length: writers }, (_, w) => {
        const task: WriterTask = { mode, path, lanes, startAt, durationMs: WRITE_MS, id: `w${w}` }
        const child = spawn(process.execPath, [SELF, 'writer', JSON.stringify(task)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        })
        let out = ''
        child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text))
        return once(child, 'close').then(([code]) => {
          if (code !== 0) throw new Error(`writer ${w} exited with ${String(code)}`)
          return (JSON.parse(out) as { events: number }).events
        })
      }),
    )
    const total = counts.reduce((a, b) => a + b, 0)
    const lines = readFileSync(path, 'utf8').split('\n').length - 1
    if (lines !== total) throw new Error(`${total} events acknowledged, ${lines} lines in the file`)
    return total / (WRITE_MS / 1000)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** A log of `conversations` × `perConversation` events, interleaved: each conversation spread thin. */
async function generate(path: string, conversations: number, perConversation: number): Promise<void> {
  const out = createWriteStream(path)
  const base = Date.parse('2026-01-01T00:00:00.000Z')
  for (let seq = 1; seq <= perConversation; seq++) {
    const lines: string[] = []
    for (let c = 0; c < conversations; c++) {
      const user = seq % 2 === 1
      const event: ChatEvent = {
        id: randomUUID(),
        conversation_id: `c-${c}`,
        seq,
        timestamp: new Date(base + seq * 60_000 + c).toISOString(),
        type: user ? 'user_message' : 'assistant_message',
        role: user ? 'user' : 'assistant',
        content: user
          ? `Question ${seq} of conversation ${c}: what is the weather like in Lisbon today?`
          : `Answer ${seq}: sunny, 21 degrees, light wind from the north-west; no rain expected.`,
        request_id: `r-${c}-${Math.ceil(seq / 2)}`,
        principal: 'bench',
        status: 'complete',
        token_count: 20,
      }
      lines.push(JSON.stringify(event))
    }
    if (!out.write(`${lines.join('\n')}\n`)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

interface ReadResult {
  events: number
  mb: number
  openMs: number
  rssMb: number
  fullMedian: number
  fullP95: number
  limitMedian: number
  bytesPerRead: number
}

async function measureRead(conversations: number, perConversation: number): Promise<ReadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-store-read-'))
  const path = join(dir, 'events.jsonl')
  try {
    await generate(path, conversations, perConversation)
    const { size } = await stat(path)
    const rssBefore = process.memoryUsage().rss
    const started = performance.now()
    const store = await JsonlStore.open({ path, fsync: true, isLive: () => true, log: quiet })
    const openMs = performance.now() - started
    const rssMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20
    const target = `c-${Math.floor(conversations / 2)}`
    const time = async (options?: { limit: number }) => {
      const samples: number[] = []
      for (let i = 0; i < WARM_UP + READS; i++) {
        const t = performance.now()
        const events = await store.history('bench', target, options)
        if (events?.length !== Math.min(perConversation, options?.limit ?? Infinity))
          throw new Error('bad read')
        // The first reads only warm up the code paths (JIT).
        if (i >= WARM_UP) samples.push(performance.now() - t)
      }
      return samples.sort((a, b) => a - b)
    }
    const readBefore = store.bytesRead
    const full = await time()
    const bytesPerRead = (store.bytesRead - readBefore) / (WARM_UP + READS)
    const limited = await time({ limit: 20 })
    await store.close()
    return {
      events: conversations * perConversation,
      mb: size / 2 ** 20,
      openMs,
      rssMb,
      fullMedian: quantile(full, 0.5),
      fullP95: quantile(full, 0.95),
      limitMedian: quantile(limited, 0.5),
      bytesPerRead,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

export const bench: Bench = {
  name: 'store',
  async run(progress) {
    const writes: { writers: number; raw: number; single: number; grouped: number }[] = []
    for (const writers of [1, 4]) {
      const raw = await measureWrites('raw', writers, 1)
      progress(`${writers} writer(s), raw appendFile + fdatasync: ${fmt(raw)} events/s`)
      const single = await measureWrites('store', writers, 1)
      progress(`${writers} writer(s), store, 1 append in flight each: ${fmt(single)} events/s`)
      const grouped = await measureWrites('store', writers, 16)
      progress(`${writers} writer(s), store, 16 appends in flight each: ${fmt(grouped)} events/s`)
      writes.push({ writers, raw, single, grouped })
    }
    const reads: ReadResult[] = []
    for (const [conversations, per] of [
      [10, 100],
      [10_000, 100],
    ] as const) {
      const r = await measureRead(conversations, per)
      progress(
        `${fmt(r.events)} events: open ${fmt(r.openMs)} ms, read 100 events ${fmt(r.fullMedian, 2)} ms (p95 ${fmt(r.fullP95, 2)})`,
      )
      reads.push(r)
    }

    const writeRows = writes.map(
      (w) =>
        `| ${w.writers} | ${fmt(w.raw)} | ${fmt(w.single)} (${fmt(w.single / w.raw, 2)}×) | ${fmt(w.grouped)} (${fmt(w.grouped / w.raw, 1)}×) |`,
    )
    const readRows = reads.map(
      (r) =>
        `| ${fmt(r.events)} | ${fmt(r.mb, 1)} MiB | ${fmt(r.openMs)} ms | ${fmt(r.rssMb)} MiB | ${fmt(r.fullMedian, 2)} ms / ${fmt(r.fullP95, 2)} ms | ${fmt(r.limitMedian, 2)} ms | ${fmt(r.bytesPerRead)} |`,
    )
    const one = writes[0]!
    const four = writes[1]!
    const target = (value: number, bound: number) => (value >= bound ? 'met' : '**missed**')
    return {
      title: 'Store',
      markdown: `
### Appends with fsync

Events per second appended to one jsonl file by all writer processes together, each process
appending for ${WRITE_MS / 1000} s with \`fsync: true\` (\`bench/store.ts\`). The baseline is the floor
of the file system: the same lines, each one \`appendFile\`'d and \`fdatasync\`'ed alone, with no
lock and no checks.

| writer processes | raw appendFile + fdatasync per event | store, 1 append in flight per process | store, 16 appends in flight per process |
| ---: | ---: | ---: | ---: |
${writeRows.join('\n')}

One append alone costs the store ${fmt(1000 / one.single, 2)} ms here against ${fmt(1000 / one.raw, 2)} ms for the raw
append + \`fdatasync\` (this virtual disk acknowledges a flush quickly): on top of the write and the
flush come the lock (a \`symlink\` and an \`unlink\`, src/store/lock.ts), two \`fstat\`s and a
\`readlink\` under it, and the serializing and checking of the event. Appends that wait together in
one process share all of it, one write and one \`fdatasync\` for the batch (group commit), so with
several in flight the store is well above the baseline. A platform process has one append in flight
per running turn. Several processes take turns at the lock: a waiting one is woken by the release
(it watches the lock's folder), and each flushes after letting go, while the next one writes. Their
writes follow one another where the raw writers' come together, so the file system's journal merges
fewer of their flushes into one commit: that is what the four-process rows pay.

Targets (issue 13), against the raw rate of 4 writer processes in the same run: 4 processes with
one append in flight each ${fmt(four.single / four.raw, 2)}× (≥ 0.5×: ${target(four.single / four.raw, 0.5)}); with 16 in flight each
${fmt(four.grouped / four.raw, 1)}× (≥ 4×: ${target(four.grouped / four.raw, 4)}).

### Reading one conversation

A log of N events in conversations of 100 events, written interleaved (every conversation spread
over the whole file), then opened: one streaming scan builds the index (JSON parse and schema check
of every line). Then \`history()\` of one conversation, ${READS} times after ${WARM_UP} warm-up reads: the
whole conversation (100 events), and its last 20. The file was just written, so it is in the page
cache: this measures the store, not the disk.

| events in the file | file size | open (index build) | RSS growth at open | history, 100 events: median / p95 | history, limit 20: median | bytes read per full history |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${readRows.join('\n')}

A read costs what the conversation costs, not what the file costs: the same bytes are read from
both files (that conversation's lines only, one \`pread\` per run of adjacent lines, up to 64 at a
time). The big file costs more only to open (the scan) and in memory (the index).
`,
    }
  },
}

const [, script, role, argument] = process.argv
if (script && import.meta.url === pathToFileURL(script).href && role === 'writer' && argument) {
  writer(JSON.parse(argument) as WriterTask).then(
    (events) => process.stdout.write(JSON.stringify({ events })),
    (err: unknown) => {
      process.stderr.write(`writer failed: ${String(err)}\n`)
      process.exit(1)
    },
  )
}
