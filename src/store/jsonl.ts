// The `jsonl` repository (architecture.md, jsonl): one append-only file of events, one JSON line
// each, shared by every process of one machine that opens it.
//
// Writes: callers queue; one batch at a time takes the log's lock (lock.ts), reads what other
// processes appended since our last offset (so request_id checks and seq numbering see them), cuts
// a torn tail a crashed writer left, stages the whole batch, appends it with one write() and lets
// go of the lock; batch.ts decides each operation. Its callers are answered once an fdatasync that
// began after the write returns (group commit). The fdatasync runs after the lock is let go, so
// other processes write meanwhile; this process's next batch waits for it, and takes in everything
// queued meanwhile. An fdatasync flushes the whole file: it also covers the lines of others that
// the batch read, which its answers (a duplicate, a seq) rest on.
// Reads: an in-memory index of byte offsets per conversation (log-index.ts), built by one
// streaming scan at open and kept current by reading only what was appended since (complete
// lines, without the lock). The lock protocol is in lock.ts.
import { errors } from '../errors.js'
import { fstatSync, writeSync } from 'node:fs'
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../logging.js'
import { Batch, prepare, type Prepared, type Staged } from './batch.js'
import { EventLogLock, type Hold } from './lock.js'
import { LogIndex, SYNC_IO_BYTES } from './log-index.js'
import {
  newestFirst,
  requestState,
  type BeginTurnResult,
  type ChatEvent,
  type ChatStore,
  type ConversationSummary,
  type NewEvent,
  type RequestPeek,
  type StoreOptions,
  type StoreStatus,
} from './types.js'

export interface JsonlStoreOptions extends StoreOptions {
  /** The event log; created with its folder when missing. */
  path: string
  /** fdatasync what a batch wrote or read before acknowledging it. */
  fsync: boolean
  log: Logger
  /**
   * A lock not refreshed for this long is taken to belong to a dead process and taken over
   * (default 5000, at least 2000). The holder refreshes it every staleMs / 2.
   */
  staleMs?: number
  /** How long a batch waits for the lock before failing with STORE_LOCK_TIMEOUT (default 30 s). */
  lockTimeoutMs?: number
  /**
   * How long writes may still wait for the lock once the store is winding down (default 1500, a
   * share of the platform's 5 s shutdown budget). Past it, those still waiting are refused with
   * STORE_CLOSED, not written.
   */
  closeTimeoutMs?: number
  /**
   * Fires when the app begins to shut down, before the turns that are stopped store what they had
   * said: the store winds down from then on, not only from close(), so those writes are bounded too.
   */
  shutdown?: AbortSignal
  /**
   * For tests: runs under the lock, after the catch-up, right before the write, so a test can
   * disturb the file or the lock at exactly that point.
   */
  beforeWrite?: () => Promise<void>
}

const DEFAULT_STALE_MS = 5000
const MIN_STALE_MS = 2000
const DEFAULT_LOCK_TIMEOUT_MS = 30_000
const DEFAULT_CLOSE_TIMEOUT_MS = 1500
/** Operations per group commit: bounds one write and the time its callers wait. */
const MAX_BATCH = 512

type Pending =
  | {
      kind: 'begin'
      message: Prepared
      create: boolean
      resolve: (result: BeginTurnResult) => void
      reject: (err: unknown) => void
    }
  | {
      kind: 'append'
      events: Prepared[]
      resolve: (events: ChatEvent[]) => void
      reject: (err: unknown) => void
    }

export class JsonlStore implements ChatStore {
  readonly #path: string
  readonly #fsync: boolean
  readonly #isLive: (instance: string) => boolean
  readonly #log: Logger
  readonly #lock: EventLogLock
  readonly #beforeWrite: (() => Promise<void>) | undefined
  readonly #closeTimeoutMs: number
  /** Aborted closeTimeoutMs after winding down began: batches waiting for the lock give up. */
  readonly #giveUp = new AbortController()
  #giveUpTimer: NodeJS.Timeout | undefined
  readonly #file: FileHandle
  readonly #index: LogIndex

  readonly #queue: Pending[] = []
  #flushing: Promise<void> | undefined
  /** The log is on disk up to here: an fdatasync began after these bytes were written or read. */
  #durable = 0
  /** The fdatasync in flight; one at a time, each covering all the log held when it began. */
  #syncing: Promise<void> | undefined
  /**
   * What an fdatasync failed with. Linux reports a lost write once and then forgets it, so from
   * then on nothing written through this file can be vouched for: every later write is refused.
   */
  #syncFailure: Error | undefined
  /** Serialises scanning and indexing in this process (catch-ups and the write of a batch). */
  #exclusiveTail: Promise<unknown> = Promise.resolve()
  #closing = false
  #closed: Promise<void> | undefined

  private constructor(options: JsonlStoreOptions, file: FileHandle) {
    this.#path = resolve(options.path)
    this.#fsync = options.fsync
    this.#isLive = options.isLive
    this.#log = options.log
    this.#lock = new EventLogLock({
      path: this.#path,
      staleMs: Math.max(MIN_STALE_MS, options.staleMs ?? DEFAULT_STALE_MS),
      timeoutMs: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
      log: options.log,
    })
    this.#beforeWrite = options.beforeWrite
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS
    this.#file = file
    this.#index = new LogIndex(file, this.#path, options.log)
  }

  /** Opens (or creates) the log: one streaming scan builds the index, then a torn tail is cut. */
  static async open(options: JsonlStoreOptions): Promise<JsonlStore> {
    const path = resolve(options.path)
    await mkdir(dirname(path), { recursive: true })
    // Append mode: every write lands at the end of the file, whatever anyone else did to it.
    const file = await open(path, 'a+')
    const store = new JsonlStore(options, file)
    options.shutdown?.addEventListener('abort', () => store.#windDown(), { once: true })
    try {
      const started = performance.now()
      // The long scan runs without the lock; the lock is only needed for the last bit and the cut.
      await store.#exclusive(() => store.#catchUp(false))
      await store.#lock.run(() => store.#exclusive(() => store.#catchUp(true)))
      options.log.info(
        {
          path,
          events: store.#index.events,
          conversations: store.#index.conversations,
          bytes: store.#index.offset,
          ms: Math.round(performance.now() - started),
        },
        'event log opened',
      )
    } catch (err) {
      await file.close().catch(() => undefined)
      throw err
    }
    return store
  }

  beginTurn(message: NewEvent, create: boolean): Promise<BeginTurnResult> {
    return new Promise((resolve, reject) => {
      // Serialized and checked here, before the queue and the lock (batch.ts, prepare).
      const prepared = settle(() => prepare(message), reject)
      if (prepared) this.#submit({ kind: 'begin', message: prepared, create, resolve, reject })
    })
  }

  /** From the index, brought up to date with what other processes appended (no lock, no write). */
  async peekRequest(principal: string, requestId: string): Promise<RequestPeek> {
    this.#assertOpen()
    await this.#exclusive(() => this.#catchUp(false))
    const request = this.#index.requests.get(principal, requestId)
    const state = requestState(request, this.#isLive)
    if (state !== 'finished') return { state }
    // A replay acknowledges the answer: what another process wrote is on disk before it is told.
    await this.#durableTo(this.#index.offset)
    return { state, events: await this.#index.readAttempt(request!, requestId) }
  }

  append(events: NewEvent[]): Promise<ChatEvent[]> {
    if (events.length === 0) return Promise.resolve([])
    return new Promise((resolve, reject) => {
      const prepared = settle(() => events.map(prepare), reject)
      if (prepared) this.#submit({ kind: 'append', events: prepared, resolve, reject })
    })
  }

  async history(
    principal: string,
    conversationId: string,
    options: { limit?: number; beforeSeq?: number } = {},
  ): Promise<ChatEvent[] | undefined> {
    this.#assertOpen()
    await this.#exclusive(() => this.#catchUp(false))
    return this.#index.history(principal, conversationId, options)
  }

  async listConversations(
    principal: string,
    options: { limit: number; before?: string },
  ): Promise<ConversationSummary[]> {
    this.#assertOpen()
    await this.#exclusive(() => this.#catchUp(false))
    const summaries = this.#index.summaries(principal, options.before)
    return summaries.sort(newestFirst).slice(0, Math.max(0, options.limit))
  }

  status(): StoreStatus {
    const status = { ready: !this.#closing, type: 'jsonl', path: this.#path, events: this.#index.events }
    if (this.#syncFailure === undefined) return status
    return { ...status, ready: false, detail: 'an fdatasync of the event log failed; restart to write again' }
  }

  /** Bytes read from the log since open: what reads cost (tests and benchmarks). */
  get bytesRead(): number {
    return this.#index.bytesRead
  }

  /**
   * Writes what is pending, then closes the file. Bounded: a batch still waiting for the lock
   * after closeTimeoutMs is refused (a batch holding it finishes its write, which is short).
   */
  close(): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  /** From now on, writes waiting for the lock have closeTimeoutMs left, then are refused. */
  #windDown(): void {
    if (this.#giveUpTimer !== undefined || this.#giveUp.signal.aborted) return
    this.#giveUpTimer = setTimeout(() => {
      const reason = new errors.STORE_CLOSED('the store closed while the event log was locked; not written')
      this.#giveUp.abort(reason)
    }, this.#closeTimeoutMs)
    this.#giveUpTimer.unref()
  }

  async #close(): Promise<void> {
    this.#closing = true
    this.#windDown()
    try {
      await this.#flushing
    } finally {
      clearTimeout(this.#giveUpTimer)
    }
    await this.#exclusive(() => Promise.resolve())
    // A replay's flush may still run.
    await this.#syncing
    await this.#file.close()
  }

  // --- writing -------------------------------------------------------------------------------

  #submit(op: Pending): void {
    if (this.#closing) {
      op.reject(new errors.STORE_CLOSED('the store is closed'))
      return
    }
    this.#queue.push(op)
    this.#flushing ??= this.#flush()
  }

  async #flush(): Promise<void> {
    // Let the callers of this tick join the first batch too.
    await new Promise<void>((resolve) => setImmediate(resolve))
    while (this.#queue.length > 0) await this.#commit(this.#queue.splice(0, MAX_BATCH))
    this.#flushing = undefined
  }

  /**
   * One group commit: staged and written under the lock, its callers answered once it is on disk.
   * The fdatasync comes after the lock is let go, so another process writes meanwhile; the next
   * batch of this process waits for it, so the lock is shared fairly, and what queued meanwhile
   * goes in that one batch. Never throws.
   */
  async #commit(ops: Pending[]): Promise<void> {
    let staged: Staged[] = []
    try {
      this.#assertSyncable()
      // What others appended is read (and parsed) before the lock, and again after each wait for
      // it, so that under the lock only what came since is left to read.
      const readOthers = () => this.#exclusive(() => this.#catchUp(false))
      await readOthers()
      let upTo = 0
      ;[staged, upTo] = await this.#lock.run(
        (hold) =>
          this.#exclusive(async (): Promise<[Staged[], number]> => {
            await this.#catchUp(true)
            const batch = new Batch(this.#index, this.#isLive)
            const outcomes = ops.map((op) => batch.stage(op))
            if (batch.lines.length > 0) await this.#write(batch, hold)
            // Every answer rests on the log up to here: what the batch wrote, and what it read.
            return [outcomes, this.#index.offset]
          }),
        this.#giveUp.signal,
        readOthers,
      )
      await this.#durableTo(upTo)
    } catch (err) {
      for (const op of ops) op.reject(err)
      return
    }
    await Promise.all(ops.map((op, i) => this.#answer(op, staged[i]!)))
  }

  /** Resolves once the log is on disk up to `offset` (at once without fsync); rejects if it cannot be. */
  async #durableTo(offset: number): Promise<void> {
    if (!this.#fsync) return
    while (this.#durable < offset) {
      this.#assertSyncable()
      // The fdatasync in flight may have begun before `offset` was reached: then one more after it.
      this.#syncing ??= this.#sync()
      await this.#syncing
    }
  }

  /** One fdatasync, covering the log as far as the index holds it now. Never throws. */
  async #sync(): Promise<void> {
    const target = this.#index.offset
    try {
      await this.#file.datasync()
      this.#durable = Math.max(this.#durable, target)
    } catch (err) {
      this.#syncFailure ??= err instanceof Error ? err : new Error(String(err))
      this.#log.error(
        { err, path: this.#path },
        'fdatasync of the event log failed; writes are refused from now on',
      )
    } finally {
      this.#syncing = undefined
    }
  }

  #assertSyncable(): void {
    if (this.#syncFailure === undefined) return
    throw new errors.STORE_WRITE_FAILED(
      `the event log could not be flushed to disk (${this.#syncFailure.message}); nothing more is acknowledged`,
      { cause: this.#syncFailure },
    )
  }

  async #answer(op: Pending, staged: Staged): Promise<void> {
    try {
      switch (staged.kind) {
        case 'refused':
          return op.reject(staged.error)
        case 'appended':
          return (op as Extract<Pending, { kind: 'append' }>).resolve(staged.events)
        case 'duplicate': {
          const events = await this.#index.readAttempt(staged.request, staged.requestId)
          return (op as Extract<Pending, { kind: 'begin' }>).resolve({ outcome: 'duplicate', events })
        }
        case 'not_found':
          return (op as Extract<Pending, { kind: 'begin' }>).resolve({ outcome: 'not_found' })
        case 'started':
          return (op as Extract<Pending, { kind: 'begin' }>).resolve({
            outcome: 'started',
            event: staged.event,
            retry: staged.retry,
          })
      }
    } catch (err) {
      op.reject(err)
    }
  }

  /** The batch's one write, after making sure nobody else wrote under our lock; no fdatasync. */
  async #write(batch: Batch, hold: Hold): Promise<void> {
    await this.#beforeWrite?.()
    const lost = hold.verify()
    if (lost) {
      throw new errors.STORE_LOCK_COMPROMISED('the event log lock was lost; nothing was written', {
        cause: lost,
      })
    }
    // Someone appending under what we believe is our lock means the lock is not ours any more.
    // (A synchronous fstat: under the lock, a thread-pool round trip costs more than the call.)
    const { size } = fstatSync(this.#file.fd)
    if (size !== this.#index.offset) {
      throw new errors.STORE_LOCK_COMPROMISED(
        `the event log changed under our lock (${size} bytes, ${this.#index.offset} expected); nothing was written`,
      )
    }
    const data = Buffer.from(batch.lines.join(''), 'utf8')
    try {
      // Small, as most batches are: written synchronously, for the reason the catch-up reads so.
      const bytesWritten =
        data.length <= SYNC_IO_BYTES
          ? writeSync(this.#file.fd, data)
          : (await this.#file.write(data)).bytesWritten
      if (bytesWritten !== data.length)
        throw new Error(`short write: ${bytesWritten} of ${data.length} bytes`)
    } catch (err) {
      // An unacknowledged batch must not stay: its callers will retry it.
      await this.#file.truncate(this.#index.offset).catch((cut: unknown) => {
        this.#log.error({ err: cut, path: this.#path }, 'could not cut off a failed write')
      })
      throw new errors.STORE_WRITE_FAILED(`could not write the event log: ${String(err)}`, {
        cause: err,
      })
    }
    this.#index.addWritten(batch.events, batch.lines)
  }

  // --- reading -------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closing) throw new errors.STORE_CLOSED('the store is closed')
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#exclusiveTail.then(fn, fn)
    this.#exclusiveTail = run.catch(() => undefined)
    return run
  }

  /**
   * Indexes the complete lines appended since our offset. Under the lock, a partial last line can
   * only be a writer that died mid-write: it is cut off, or the next write would glue onto it.
   * Without the lock it may be a write in progress, so it is left alone.
   */
  async #catchUp(locked: boolean): Promise<void> {
    const size = await this.#index.catchUp()
    // Shrunk (a failed write cut off by its writer): what is written there next is not on disk yet.
    this.#durable = Math.min(this.#durable, size)
    const offset = this.#index.offset
    if (locked && size > offset) {
      await this.#file.truncate(offset)
      this.#log.warn({ path: this.#path, offset, bytes: size - offset }, 'cut off a torn last line')
    }
  }
}

/** `step()`, or undefined with `reject` called with what it threw. */
function settle<T>(step: () => T, reject: (err: unknown) => void): T | undefined {
  try {
    return step()
  } catch (err) {
    reject(err)
    return undefined
  }
}
