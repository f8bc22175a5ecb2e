// The jsonl repository with real processes on a real file: concurrent writers, writers killed in
// the middle of appending, locks left behind or taken away, and reads that touch only what they
// need. The contract every repository shares is in store-contract.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import {
  appendFileSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { eventProblem } from '../src/store/event-schema.js'
import { JsonlStore } from '../src/store/jsonl.js'
import { EventLogLock, lockTarget } from '../src/store/lock.js'
import type { Logger } from '../src/logging.js'
import type { ChatEvent, NewEvent } from '../src/store/types.js'
import { PRINCIPAL, SHARED_CONVERSATION, type WorkerTask } from './helpers/store-worker.js'

const WORKER = fileURLToPath(new URL('./helpers/store-worker.js', import.meta.url))
// proper-lockfile's floor: the shortest stale period there is.
const STALE_MS = 2000
const alive = () => true

interface Message {
  op: string
  [field: string]: any
}

/** A store-worker process, its reports (one JSON object per stdout line) and its stderr. */
class Worker {
  readonly child: ChildProcess
  readonly messages: Message[] = []
  stderr = ''
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #waiters: { until: () => boolean; resolve: () => void; reject: (err: Error) => void }[] = []

  constructor(task: WorkerTask) {
    this.child = spawn(process.execPath, [WORKER, JSON.stringify(task)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.stderr += text))
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.messages.push(JSON.parse(line) as Message)
      this.#waiters = this.#waiters.filter((w) => (w.until() ? (w.resolve(), false) : true))
    })
    this.closed = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        for (const w of this.#waiters)
          w.reject(new Error(`worker ended (${code ?? signal}) before: ${this.stderr}`))
        resolve({ code, signal })
      })
    })
  }

  /** Resolves once `until()` holds after a report; rejects if the worker ends first. */
  waitFor(until: () => boolean): Promise<void> {
    if (until()) return Promise.resolve()
    return new Promise((resolve, reject) => this.#waiters.push({ until, resolve, reject }))
  }

  count(op: string): number {
    return this.messages.filter((m) => m.op === op).length
  }

  async succeeded(): Promise<void> {
    const { code } = await this.closed
    assert.equal(code, 0, `worker failed: ${this.stderr}`)
  }
}

interface Logged {
  level: 'debug' | 'info' | 'warn' | 'error'
  msg: string
  obj: object
}

function recordingLog(): Logger & { entries: Logged[] } {
  const entries: Logged[] = []
  return {
    entries,
    debug: (obj, msg) => entries.push({ level: 'debug', msg, obj }),
    info: (obj, msg) => entries.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => entries.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => entries.push({ level: 'error', msg, obj }),
  }
}

/** Whether something holds the lock's name: a link (not followed: it points nowhere) or a directory. */
function locked(lock: string): boolean {
  return lstatSync(lock, { throwIfNoEntry: false }) !== undefined
}

async function tempLog(): Promise<{ dir: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'store-jsonl-'))
  return { dir, path: join(dir, 'events.jsonl') }
}

/** Every line of the file, each checked to be a whole, valid event. */
function readEvents(path: string): ChatEvent[] {
  const text = readFileSync(path, 'utf8')
  assert.ok(text === '' || text.endsWith('\n'), 'the file ends with a complete line')
  return text
    .split('\n')
    .slice(0, -1)
    .map((line, i) => {
      const value: unknown = JSON.parse(line)
      assert.equal(eventProblem(value), undefined, `line ${i + 1} is an event`)
      return value as ChatEvent
    })
}

/** seq 1..n in file order, for every conversation of the file. */
function assertGapless(events: ChatEvent[]): Map<string, ChatEvent[]> {
  const byConversation = new Map<string, ChatEvent[]>()
  for (const e of events)
    byConversation.set(e.conversation_id, [...(byConversation.get(e.conversation_id) ?? []), e])
  for (const [id, list] of byConversation) {
    assert.deepEqual(
      list.map((e) => e.seq),
      list.map((_, i) => i + 1),
      `seq of ${id} is 1..n`,
    )
  }
  return byConversation
}

function turn(conversation_id: string, request_id: string, content = 'Hello'): NewEvent {
  return {
    conversation_id,
    request_id,
    type: 'user_message',
    role: 'user',
    content,
    principal: 'alice',
    status: 'complete',
  }
}

function reply(conversation_id: string, request_id: string, content = 'Hi'): NewEvent {
  return { ...turn(conversation_id, request_id, content), type: 'assistant_message', role: 'assistant' }
}

test('four processes appending 1,000 events each: every event once, duplicates refused, seq gapless', async () => {
  const { dir, path } = await tempLog()
  try {
    const setup = await JsonlStore.open({ path, fsync: true, isLive: alive, log: recordingLog() })
    const shared = await setup.beginTurn(
      { ...turn(SHARED_CONVERSATION, 'setup'), principal: PRINCIPAL },
      true,
    )
    assert.equal(shared.outcome, 'started')
    await setup.close()

    const workers = [0, 1, 2, 3].map(
      (worker) => new Worker({ task: 'concurrent', path, fsync: true, worker, lanes: 10 }),
    )
    await Promise.all(workers.map((w) => w.succeeded()))

    const acks = workers.flatMap((w) => w.messages.filter((m) => m.op === 'ack'))
    const duplicates = workers.flatMap((w) => w.messages.filter((m) => m.op === 'duplicate'))
    assert.equal(acks.length + duplicates.length, 4000, 'every operation answered')
    // 100 request_ids were tried by all four: each started once, refused three times.
    const startedShared = acks.filter((a) => String(a.request_id).startsWith('shared-'))
    assert.equal(startedShared.length, 100)
    assert.equal(new Set(startedShared.map((a) => a.request_id)).size, 100)
    assert.equal(duplicates.length, 300)
    for (const d of duplicates) assert.ok(startedShared.some((a) => a.request_id === d.request_id))

    const events = readEvents(path)
    assert.equal(events.length, 1 + acks.length)
    assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'no event twice')
    const byId = new Map(events.map((e) => [e.id, e]))
    for (const a of acks) {
      const stored = byId.get(a.id)
      assert.ok(stored, `acknowledged event ${a.id} is in the file`)
      assert.deepEqual([stored.conversation_id, stored.seq], [a.conversation_id, a.seq])
    }
    const userMessages = events.filter((e) => e.type === 'user_message').map((e) => e.request_id)
    assert.equal(new Set(userMessages).size, userMessages.length, 'no request began twice')
    const conversations = assertGapless(events)
    assert.equal(conversations.get(SHARED_CONVERSATION)!.length, 401)

    const reader = await JsonlStore.open({ path, fsync: true, isLive: alive, log: recordingLog() })
    assert.equal(reader.status().events, events.length)
    const history = await reader.history(PRINCIPAL, SHARED_CONVERSATION)
    assert.deepEqual(history, conversations.get(SHARED_CONVERSATION))
    await reader.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a writer killed with SIGKILL while appending, 20 times: acknowledged events kept, torn tails cut', async (t) => {
  const { dir, path } = await tempLog()
  try {
    const acked: Message[] = []
    const openTimes: number[] = []
    const tornAfter = new Set<number>()
    let previous: Worker | undefined
    for (let round = 0; round < 20; round++) {
      // The next writer may find the lock of the killed one: it must take it over once stale.
      // Its wait is bounded by lockTimeoutMs (the stale period plus scheduling slack): a writer
      // blocked longer fails to open, and this test with it.
      const target = 1 + ((round * 37) % 60)
      // Odd rounds: killed for sure while holding the lock, a batch staged; even rounds: killed
      // wherever it happens to be once `target` events are acknowledged.
      const holding = round % 2 === 1
      const worker = new Worker({
        task: 'until-killed',
        path,
        staleMs: STALE_MS,
        lockTimeoutMs: STALE_MS + 1000,
        worker: `k${round}`,
        holdAfter: holding ? target : undefined,
      })
      await worker.waitFor(() => (holding ? worker.count('holding') > 0 : worker.count('ack') >= target))
      worker.child.kill('SIGKILL')
      const { signal } = await worker.closed
      assert.equal(signal, 'SIGKILL', `round ${round} was killed, not failed: ${worker.stderr}`)
      openTimes.push(worker.messages.find((m) => m.op === 'ready')!.open_ms as number)
      acked.push(...worker.messages.filter((m) => m.op === 'ack'))
      if (previous && tornAfter.has(round - 1)) {
        assert.match(worker.stderr, /cut off a torn last line/, `round ${round} cut the torn tail`)
      }
      // SIGKILL does not tear a write() to a local file (the kernel finishes the call), but a power
      // loss does: leave what such a crash leaves, a line without its end, every other round.
      if (round % 2 === 1) {
        appendFileSync(path, `{"id":"torn-${round}","conversation_id":"c-torn","seq":1,"timest`)
        tornAfter.add(round)
      }
      previous = worker
    }
    t.diagnostic(`writer open times (ms), lock wait included: ${openTimes.join(', ')}`)

    const log = recordingLog()
    const store = await JsonlStore.open({ path, fsync: true, isLive: alive, log, staleMs: STALE_MS })
    assert.ok(
      log.entries.some((e) => e.msg === 'cut off a torn last line'),
      'the torn tail of the last round was cut at open',
    )
    const events = readEvents(path)
    assert.ok(!readFileSync(path, 'utf8').includes('torn-'), 'no torn line is left, whole or glued')
    const byId = new Map(events.map((e) => [e.id, e]))
    for (const a of acked) {
      const stored = byId.get(a.id)
      assert.ok(stored, `acknowledged event ${a.id} survived`)
      assert.deepEqual([stored.conversation_id, stored.seq], [a.conversation_id, a.seq])
    }
    const conversations = assertGapless(events)
    assert.equal(store.status().events, events.length)
    for (const [id, list] of conversations) assert.deepEqual(await store.history(PRINCIPAL, id), list)
    t.diagnostic(`${acked.length} acknowledged events, ${events.length} in the file`)
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a lock left behind is taken over once stale; a live holder keeps it', async () => {
  const { dir, path } = await tempLog()
  const lock = `${path}.lock`
  try {
    // A lock directory a dead process left a minute ago.
    mkdirSync(lock)
    const old = new Date(Date.now() - 60_000)
    utimesSync(lock, old, old)
    const store = await JsonlStore.open({
      path,
      fsync: true,
      isLive: alive,
      log: recordingLog(),
      staleMs: STALE_MS,
      lockTimeoutMs: STALE_MS + 1000,
    })
    assert.equal((await store.beginTurn(turn('c1', 'r1'), true)).outcome, 'started')
    assert.ok(!locked(lock), 'released after the write')

    // A live process holding the lock (and keeping it fresh) is waited for, past the stale
    // period, until the wait runs out.
    const holder = new Worker({ task: 'hold-lock', path, staleMs: STALE_MS })
    await holder.waitFor(() => holder.count('locked') === 1)
    await assert.rejects(store.append([reply('c1', 'r1')]), { code: 'STORE_LOCK_TIMEOUT' })
    // Killed, it leaves its lock behind; the next write takes it over once stale.
    holder.child.kill('SIGKILL')
    await holder.closed
    assert.ok(locked(lock), 'the killed holder left its lock')
    const [event] = await store.append([reply('c1', 'r1')])
    assert.equal(event!.seq, 2)
    assert.deepEqual(
      readEvents(path).map((e) => e.seq),
      [1, 2],
    )
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a lock whose holder died on this machine is taken over at once, not after staleMs', async () => {
  const { dir, path } = await tempLog()
  const lock = `${path}.lock`
  // The default stale period: what a restart after a crash used to wait out.
  const staleMs = 5000
  try {
    // A store process stops under the lock, right before its write, and is killed there.
    const holder = new Worker({
      task: 'until-killed',
      path,
      staleMs,
      lockTimeoutMs: staleMs + 1000,
      worker: 'dies-holding',
      holdAfter: 3,
    })
    await holder
      .waitFor(() => holder.count('holding') > 0)
      .catch((err: unknown) => {
        holder.child.kill('SIGKILL')
        throw err
      })
    // The lock is a link whose target names its holder: `<pid>.<machine>.<nonce>`.
    const target = readlinkSync(lock)

    // While the holder lives, its lock is its own: a short wait runs out.
    const log = recordingLog()
    await assert
      .rejects(JsonlStore.open({ path, fsync: true, isLive: alive, log, staleMs, lockTimeoutMs: 300 }), {
        code: 'STORE_LOCK_TIMEOUT',
      })
      .finally(() => holder.child.kill('SIGKILL'))
    assert.equal((await holder.closed).signal, 'SIGKILL')
    assert.ok(locked(lock), 'the killed holder left its lock')

    const started = performance.now()
    const store = await JsonlStore.open({ path, fsync: true, isLive: alive, log, staleMs })
    assert.equal((await store.beginTurn(turn('after', 'r-after'), true)).outcome, 'started')
    const elapsed = performance.now() - started
    assert.ok(elapsed < 2000, `opened and wrote in ${Math.round(elapsed)} ms (stale after ${staleMs})`)
    assert.equal(Number(target.split('.')[0]), holder.child.pid, 'the lock named its holder')
    assert.ok(
      log.entries.some((e) => e.msg === 'took over the event log lock of a process that died holding it'),
    )
    assert.ok(!locked(lock), 'the lock released after the write')
    assertGapless(readEvents(path))
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a compromised lock fails the batch cleanly, nothing written, and the store carries on', async () => {
  const { dir, path } = await tempLog()
  const lock = `${path}.lock`
  try {
    const log = recordingLog()
    // The store's test seam runs under the lock, after the catch-up, right before the write:
    // whatever `disturb` does happens exactly between the two, every time.
    let disturb: (() => Promise<void>) | undefined
    const store = await JsonlStore.open({
      path,
      fsync: true,
      isLive: alive,
      log,
      staleMs: STALE_MS,
      beforeWrite: async () => {
        const once = disturb
        disturb = undefined
        await once?.()
      },
    })
    assert.equal((await store.beginTurn(turn('c1', 'r1'), true)).outcome, 'started')

    // 1. Another process appends a line without taking the lock (as a writer whose lock was
    // taken over as stale would): the file grew under our lock, so our batch must not follow.
    const foreign = `${JSON.stringify({
      id: 'foreign-1',
      conversation_id: 'f1',
      seq: 1,
      timestamp: new Date().toISOString(),
      type: 'user_message',
      role: 'user',
      content: 'written without the lock',
      request_id: 'rf',
      principal: 'alice',
      status: 'complete',
    })}\n`
    disturb = async () => {
      await new Worker({ task: 'raw-append', path, text: foreign }).succeeded()
    }
    const before = readFileSync(path, 'utf8')
    const batch = await Promise.allSettled([
      store.append([reply('c1', 'r1')]),
      store.beginTurn(turn('c2', 'r2'), true),
    ])
    for (const outcome of batch) {
      assert.equal(outcome.status, 'rejected')
      assert.equal(outcome.reason.code, 'STORE_LOCK_COMPROMISED')
    }
    assert.equal(readFileSync(path, 'utf8'), before + foreign, 'nothing of the batch was written')

    // The store carries on: it reads the foreign line and numbers after it.
    const [next] = await store.append([reply('c1', 'r1')])
    assert.equal(next!.seq, 2)
    assert.equal((await store.beginTurn(turn('c2', 'r2'), true)).outcome, 'started')
    assert.deepEqual(
      (await store.history('alice', 'f1'))!.map((e) => e.id),
      ['foreign-1'],
    )

    // 2. The lock directory is replaced while we hold it, as a process taking it over would do.
    // proper-lockfile sees it at its next refresh and reports the lock compromised; the write
    // waits for that report, then must not happen.
    disturb = async () => {
      rmSync(lock, { recursive: true })
      mkdirSync(lock)
      const future = new Date(Date.now() + 60_000)
      utimesSync(lock, future, future)
      while (!log.entries.some((e) => e.msg === 'event log lock compromised')) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    const size = statSync(path).size
    await assert.rejects(store.append([reply('c1', 'r1', 'lost')]), { code: 'STORE_LOCK_COMPROMISED' })
    assert.equal(statSync(path).size, size, 'nothing was written')
    // The other "holder" lets go; the store writes again.
    rmSync(lock, { recursive: true })
    const [after] = await store.append([reply('c1', 'r1', 'kept')])
    assert.equal(after!.seq, 3)
    const events = readEvents(path)
    assertGapless(events)
    assert.ok(!events.some((e) => e.content === 'lost'))
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a corrupt line in the middle is skipped with a warning; a torn last line is cut at open', async () => {
  const { dir, path } = await tempLog()
  try {
    const event = (seq: number) =>
      JSON.stringify({
        id: `e${seq}`,
        seq,
        timestamp: new Date().toISOString(),
        ...reply('c1', 'r1', `answer ${seq}`),
      })
    writeFileSync(
      path,
      [event(1), 'not json {', JSON.stringify({ hello: 'world' }), event(2), '{"id":"e3","conv'].join('\n'),
    )
    const log = recordingLog()
    const store = await JsonlStore.open({ path, fsync: true, isLive: alive, log })
    assert.deepEqual(
      log.entries.filter((e) => e.level === 'warn').map((e) => e.msg),
      [
        'skipped a line of the event log that is not JSON',
        'skipped a line of the event log that is not an event',
        'cut off a torn last line',
      ],
    )
    assert.deepEqual(
      (await store.history('alice', 'c1'))!.map((e) => e.id),
      ['e1', 'e2'],
    )
    const [next] = await store.append([reply('c1', 'r1')])
    assert.equal(next!.seq, 3)
    const lines = readFileSync(path, 'utf8').split('\n')
    assert.equal(lines.length, 6)
    assert.equal(lines[1], 'not json {', 'a corrupt line is left as it is, never rewritten')
    assert.equal(JSON.parse(lines[4]!).seq, 3, 'the new line replaced the torn one')
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test("reading one conversation of a big file reads that conversation's lines and nothing else", async () => {
  const { dir, path } = await tempLog()
  try {
    // 100,000 events of 1,000 conversations, interleaved: each conversation is spread over the file.
    const lengths = new Map<number, number>()
    const target = 500
    const timestamp = new Date().toISOString()
    for (let seq = 1; seq <= 100; seq++) {
      let chunk = ''
      for (let c = 0; c < 1000; c++) {
        const line = `${JSON.stringify({
          id: `e-${c}-${seq}`,
          seq,
          timestamp,
          ...reply(`c-${c}`, `r-${c}`, `answer number ${seq} of conversation ${c}`),
        })}\n`
        if (c === target) lengths.set(seq, Buffer.byteLength(line))
        chunk += line
      }
      appendFileSync(path, chunk)
    }
    const size = statSync(path).size
    const bytesOf = (from: number, to: number) => {
      let sum = 0
      for (let seq = from; seq <= to; seq++) sum += lengths.get(seq)!
      return sum
    }

    const store = await JsonlStore.open({ path, fsync: true, isLive: alive, log: recordingLog() })
    assert.equal(store.status().events, 100_000)
    assert.equal(store.bytesRead, size, 'open reads the file once')

    let before = store.bytesRead
    const all = await store.history('alice', `c-${target}`)
    assert.deepEqual(
      all!.map((e) => e.seq),
      Array.from({ length: 100 }, (_, i) => i + 1),
    )
    assert.equal(store.bytesRead - before, bytesOf(1, 100), 'only its 100 lines were read')

    before = store.bytesRead
    assert.equal((await store.history('alice', `c-${target}`, { limit: 10 }))!.length, 10)
    assert.equal(store.bytesRead - before, bytesOf(91, 100), 'limit 10: its last 10 lines')

    before = store.bytesRead
    const page = await store.history('alice', `c-${target}`, { beforeSeq: 50, limit: 5 })
    assert.deepEqual(
      page!.map((e) => e.seq),
      [45, 46, 47, 48, 49],
    )
    assert.equal(store.bytesRead - before, bytesOf(45, 49))

    before = store.bytesRead
    await store.listConversations('alice', { limit: 20 })
    assert.equal(store.bytesRead - before, 0, 'listing comes from the index')
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('close is bounded while another process keeps the lock: pending writes are refused, not lost or hung', async () => {
  const { dir, path } = await tempLog()
  const holder = new Worker({ task: 'hold-lock', path, staleMs: STALE_MS })
  try {
    const store = await JsonlStore.open({ path, fsync: true, isLive: alive, log: recordingLog() })
    assert.equal((await store.beginTurn(turn('c1', 'r1'), true)).outcome, 'started')
    const before = readFileSync(path, 'utf8')
    await holder.waitFor(() => holder.count('locked') === 1)
    // Both wait for the lock the holder keeps fresh (so it never turns stale).
    const pending = Promise.allSettled([
      store.append([reply('c1', 'r1')]),
      store.beginTurn(turn('c2', 'r2'), true),
    ])
    await new Promise((resolve) => setTimeout(resolve, 100))
    const started = performance.now()
    await store.close()
    const ms = performance.now() - started
    // The platform's shutdown budget is 5 s, and the store closes last.
    assert.ok(ms < 4000, `close took ${Math.round(ms)} ms`)
    for (const outcome of await pending) {
      assert.equal(outcome.status, 'rejected', 'never acknowledged')
      assert.equal(outcome.reason.code, 'STORE_CLOSED')
    }
    assert.equal(readFileSync(path, 'utf8'), before, 'nothing was written')
    assert.equal(holder.child.exitCode, null, 'the holder kept its lock throughout')
  } finally {
    holder.child.kill('SIGKILL')
    await holder.closed
    await rm(dir, { recursive: true, force: true })
  }
})

test('three takers of a dead holder lock at once: never two holders, never a failed write', async () => {
  const { dir, path } = await tempLog()
  try {
    // A pid that is provably gone: a child that has exited.
    const gone = spawn(process.execPath, ['-e', ''])
    await once(gone, 'exit')
    const deadPid = gone.pid!
    const lockPath = `${path}.lock`
    let most = 0
    for (let trial = 0; trial < 60; trial++) {
      // The lock as a process of this machine leaves it when it dies holding it.
      symlinkSync(lockTarget(deadPid), lockPath)
      let holding = 0
      const takers = Array.from(
        { length: 3 },
        () => new EventLogLock({ path, staleMs: 5000, timeoutMs: 5000, log: recordingLog() }),
      )
      await Promise.all(
        takers.map((lock) =>
          lock.run(async () => {
            holding++
            most = Math.max(most, holding)
            await new Promise((resolve) => setTimeout(resolve, 2))
            holding--
          }),
        ),
      )
      assert.ok(!locked(lockPath), `trial ${trial}: the last holder let go`)
    }
    assert.equal(most, 1, 'one holder at a time')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test(
  'processes waiting for the lock are woken by its release: one holder at a time, no update lost',
  { timeout: 120_000 },
  async (t) => {
    const { dir, path } = await tempLog()
    try {
      const trace = join(dir, 'trace')
      const counter = join(dir, 'counter')
      writeFileSync(trace, '')
      writeFileSync(counter, '0')
      // The lock as a process of this machine leaves it when it dies holding it: the first to try
      // takes it over.
      const gone = spawn(process.execPath, ['-e', ''])
      await once(gone, 'exit')
      symlinkSync(lockTarget(gone.pid!), `${path}.lock`)
      // A waiter tries again only when the lock's release wakes it, or ten minutes later: every
      // round below waits for a hand-over it must see, or this test runs out of time.
      const rounds = 25
      const startAt = Date.now() + 1000
      const workers = ['a', 'b', 'c', 'd'].map(
        (worker) =>
          new Worker({ task: 'lock-rounds', path, worker, rounds, pollMs: 600_000, startAt, trace, counter }),
      )
      await Promise.all(workers.map((w) => w.succeeded()))

      const lines = readFileSync(trace, 'utf8').split('\n').slice(0, -1)
      assert.equal(lines.length, 4 * rounds * 2, 'every round ran')
      for (let i = 0; i < lines.length; i += 2) {
        assert.match(lines[i]!, /^in [a-d]$/)
        assert.equal(
          lines[i + 1],
          lines[i]!.replace('in', 'out'),
          `line ${i + 2}: nobody else entered meanwhile`,
        )
      }
      assert.equal(readFileSync(counter, 'utf8'), String(4 * rounds), 'no update lost')
      const handOvers = lines.filter((line, i) => i % 2 === 0 && i > 0 && line !== lines[i - 2]).length
      t.diagnostic(`${handOvers} hand-overs between processes in ${4 * rounds} rounds`)
      assert.ok(handOvers >= 3, 'the lock went from process to process')
      assert.ok(!locked(`${path}.lock`), 'the last holder let go')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  },
)
