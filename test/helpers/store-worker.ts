// A separate process working on a jsonl event log, for test/store-jsonl.test.ts. Started as
// `node store-worker.js '<json task>'`; reports each result as one JSON line on stdout (an `ack`
// is printed only once the store has acknowledged the event); the store's logs go to stderr.
import { pino } from 'pino'
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import lockfile from 'proper-lockfile'
import { JsonlStore } from '../../src/store/jsonl.js'
import { EventLogLock } from '../../src/store/lock.js'
import type { ChatEvent, NewEvent } from '../../src/store/types.js'

export type WorkerTask =
  /** Lanes of 100 operations each, run concurrently, with request_ids shared between workers. */
  | { task: 'concurrent'; path: string; fsync: boolean; worker: number; lanes: number }
  /**
   * Appends until killed. With `holdAfter`: once that many events are acknowledged, the next
   * batch stops under the lock, right before its write, says `holding`, and waits to be killed.
   */
  | {
      task: 'until-killed'
      path: string
      staleMs: number
      lockTimeoutMs: number
      worker: string
      holdAfter?: number
    }
  /** Holds the lock (kept fresh) until killed. */
  | { task: 'hold-lock'; path: string; staleMs: number }
  /** Begins each turn (in a new conversation), then appends its events. */
  | { task: 'turns'; path: string; turns: { begin: NewEvent; append: NewEvent[] }[] }
  /** Appends raw text to the file, ignoring the lock. */
  | { task: 'raw-append'; path: string; text: string }
  /**
   * From `startAt` (a wall-clock time shared by the workers of a test), takes the event log's lock
   * `rounds` times, pausing a millisecond between rounds. Under it: a line `in <worker>` to
   * `trace`, a read-modify-write of the number in `counter` with a pause between, a line
   * `out <worker>`. Waits between tries are `pollMs` long unless a release wakes the waiter.
   */
  | {
      task: 'lock-rounds'
      path: string
      worker: string
      rounds: number
      pollMs: number
      startAt: number
      trace: string
      counter: string
    }

export const SHARED_CONVERSATION = 'shared'
export const PRINCIPAL = 'p'

function say(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`)
}

/** The store's log lines go to stderr, as JSON, for the parent test to read. */
const log = pino(pino.destination({ dest: 2, sync: true }))

function event(
  conversation_id: string,
  request_id: string,
  type: NewEvent['type'],
  content: string,
  instance?: string,
): NewEvent {
  const role = type === 'user_message' ? 'user' : type === 'tool_result' ? 'tool' : 'assistant'
  return {
    conversation_id,
    request_id,
    type,
    role,
    content,
    principal: PRINCIPAL,
    status: 'complete',
    instance,
  }
}

function ack(e: ChatEvent): void {
  say({ op: 'ack', id: e.id, conversation_id: e.conversation_id, seq: e.seq, request_id: e.request_id })
}

/**
 * One lane of worker w: its own conversation (a turn, then 79 more events), ten turns whose
 * request_ids every worker tries, and ten events in the conversation all workers share.
 */
function laneOperations(store: JsonlStore, w: number, lane: number): (() => Promise<void>)[] {
  const own = `c-${w}-${lane}`
  const ownOps: (() => Promise<void>)[] = [
    async () => {
      const began = await store.beginTurn(event(own, `r-${w}-${lane}`, 'user_message', 'hello'), true)
      if (began.outcome !== 'started') throw new Error(`own turn not started: ${began.outcome}`)
      ack(began.event)
    },
  ]
  for (let i = 1; i < 80; i++) {
    ownOps.push(async () => {
      const [stored] = await store.append([event(own, `r-${w}-${lane}`, 'tool_result', `result ${i}`)])
      ack(stored!)
    })
  }
  const sharedOps: (() => Promise<void>)[] = []
  for (let m = 0; m < 10; m++) {
    const requestId = `shared-${lane * 10 + m}`
    sharedOps.push(async () => {
      const message = event(`c-${w}-${requestId}`, requestId, 'user_message', 'same request', `worker-${w}`)
      const began = await store.beginTurn(message, true)
      if (began.outcome === 'started') ack(began.event)
      else if (began.outcome === 'duplicate') say({ op: 'duplicate', request_id: requestId })
      else throw new Error(`shared turn ${requestId}: ${began.outcome}`)
    })
    sharedOps.push(async () => {
      const [stored] = await store.append([
        event(SHARED_CONVERSATION, `r-${w}-${lane}-${m}`, 'assistant_message', `from ${w}`),
      ])
      ack(stored!)
    })
  }
  // Every fifth operation is a shared one.
  const ops: (() => Promise<void>)[] = []
  while (ownOps.length > 0 || sharedOps.length > 0) {
    const takeShared = ops.length % 5 === 4 && sharedOps.length > 0
    ops.push((takeShared ? sharedOps.shift() : (ownOps.shift() ?? sharedOps.shift()))!)
  }
  return ops
}

async function concurrent(task: Extract<WorkerTask, { task: 'concurrent' }>): Promise<void> {
  const store = await JsonlStore.open({ path: task.path, fsync: task.fsync, isLive: () => true, log })
  say({ op: 'ready' })
  await Promise.all(
    Array.from({ length: task.lanes }, async (_, lane) => {
      for (const op of laneOperations(store, task.worker, lane)) await op()
    }),
  )
  await store.close()
}

async function untilKilled(task: Extract<WorkerTask, { task: 'until-killed' }>): Promise<void> {
  const started = Date.now()
  let acks = 0
  const store = await JsonlStore.open({
    path: task.path,
    fsync: true,
    isLive: () => true,
    log,
    staleMs: task.staleMs,
    lockTimeoutMs: task.lockTimeoutMs,
    beforeWrite: async () => {
      if (task.holdAfter === undefined || acks < task.holdAfter) return
      say({ op: 'holding' })
      // proper-lockfile's refresh timer is unref'd: keep the process alive, the lock held.
      await new Promise(() => setInterval(() => undefined, 60_000))
    },
  })
  say({ op: 'ready', open_ms: Date.now() - started })
  await Promise.all(
    Array.from({ length: 4 }, async (_, lane) => {
      const conversation = `c-${task.worker}-${lane}`
      const began = await store.beginTurn(
        event(conversation, `r-${task.worker}-${lane}`, 'user_message', 'go'),
        true,
      )
      if (began.outcome !== 'started') throw new Error(`turn not started: ${began.outcome}`)
      ack(began.event)
      acks++
      for (let i = 1; ; i++) {
        // Now and then a batch of several events, so writes of several lines get cut too.
        const count = i % 7 === 0 ? 5 : 1
        const batch = Array.from({ length: count }, (_, k) =>
          event(
            conversation,
            `r-${task.worker}-${lane}`,
            'tool_result',
            `step ${i}.${k} `.repeat(1 + (i % 40)),
          ),
        )
        for (const stored of await store.append(batch)) {
          ack(stored)
          acks++
        }
      }
    }),
  )
}

async function holdLock(task: Extract<WorkerTask, { task: 'hold-lock' }>): Promise<void> {
  await lockfile.lock(task.path, {
    stale: task.staleMs,
    realpath: false,
    onCompromised: () => process.exit(3),
  })
  say({ op: 'locked' })
  // Keep the process (and proper-lockfile's refresh timer) alive until killed.
  setInterval(() => undefined, 60_000)
}

async function turns(task: Extract<WorkerTask, { task: 'turns' }>): Promise<void> {
  const store = await JsonlStore.open({ path: task.path, fsync: true, isLive: () => true, log })
  for (const { begin, append } of task.turns) {
    const began = await store.beginTurn(begin, true)
    if (began.outcome !== 'started') throw new Error(`turn not started: ${began.outcome}`)
    ack(began.event)
    for (const stored of await store.append(append)) ack(stored)
  }
  await store.close()
}

async function lockRounds(task: Extract<WorkerTask, { task: 'lock-rounds' }>): Promise<void> {
  const lock = new EventLogLock({
    path: task.path,
    staleMs: 5000,
    timeoutMs: 60_000,
    log,
    pollMs: task.pollMs,
  })
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
  await pause(task.startAt - Date.now())
  for (let round = 0; round < task.rounds; round++) {
    await lock.run(async () => {
      appendFileSync(task.trace, `in ${task.worker}\n`)
      const count = Number(readFileSync(task.counter, 'utf8'))
      // Long enough for the others to try, fail, and wait.
      await pause(2)
      writeFileSync(task.counter, String(count + 1))
      appendFileSync(task.trace, `out ${task.worker}\n`)
    })
    // As a store waits for its fdatasync before it locks again: the others get their turn.
    await pause(1)
  }
}

const run = async (): Promise<void> => {
  const task = JSON.parse(argument!) as WorkerTask
  switch (task.task) {
    case 'concurrent':
      return concurrent(task)
    case 'until-killed':
      return untilKilled(task)
    case 'hold-lock':
      return holdLock(task)
    case 'turns':
      return turns(task)
    case 'raw-append':
      appendFileSync(task.path, task.text)
      return
    case 'lock-rounds':
      return lockRounds(task)
  }
}
// Imported by the tests for its names, or loaded by a test runner without a task: nothing to run.
const [, script, argument] = process.argv
if (script && import.meta.url === pathToFileURL(script).href && argument) {
  run().then(
    () => say({ op: 'done' }),
    (err: unknown) => {
      process.stderr.write(
        `worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      )
      process.exit(1)
    },
  )
}
