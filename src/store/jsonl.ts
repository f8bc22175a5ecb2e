// The `jsonl` repository (architecture.md, jsonl): one append-only file of events, one JSON line
// each, shared by every process of one machine that opens it.
//
// Writes: callers queue; one batch at a time takes the proper-lockfile lock, reads what other
// processes appended since our last offset (so request_id checks and seq numbering see them), cuts
// a torn tail a crashed writer left, stages the whole batch, then appends it with one write() and
// one fdatasync before anyone is answered (group commit).
// Reads: an in-memory index of byte offsets per conversation, built by one streaming scan at open
// and kept current by reading only what was appended since (complete lines, without the lock).
import { randomUUID } from 'node:crypto'
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import lockfile from 'proper-lockfile'
import { eventProblem } from './event-schema.js'
import { RequestIndex, type TrackedRequest } from './request-index.js'
import {
  newestFirst,
  requestState,
  StoreError,
  titleOf,
  type BeginTurnResult,
  type ChatEvent,
  type ChatStore,
  type ConversationSummary,
  type NewEvent,
  type RequestPeek,
  type StoreOptions,
  type StoreStatus,
} from './types.js'

export interface StoreLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface JsonlStoreOptions extends StoreOptions {
  /** The event log; created with its folder when missing. */
  path: string
  /** fdatasync each batch before acknowledging it. */
  fsync: boolean
  log: StoreLogger
  /**
   * A lock not refreshed for this long is taken to belong to a dead process and taken over
   * (default 5000; proper-lockfile's floor is 2000). The holder refreshes it every staleMs / 2.
   */
  staleMs?: number
  /** How long a batch waits for the lock before failing with STORE_LOCK_TIMEOUT (default 30 s). */
  lockTimeoutMs?: number
  /**
   * For tests: runs under the lock, after the catch-up, right before the write, so a test can
   * disturb the file or the lock at exactly that point.
   */
  beforeWrite?: () => Promise<void>
}

const DEFAULT_STALE_MS = 5000
const MIN_STALE_MS = 2000
const DEFAULT_LOCK_TIMEOUT_MS = 30_000
const SCAN_CHUNK = 1 << 20
/** Operations per group commit: bounds one write and the time its callers wait. */
const MAX_BATCH = 512
const NEWLINE = 0x0a
/** Concurrent reads of one history() call. */
const READS_IN_FLIGHT = 64

/** Where one conversation's events are in the file; entry i is one event. */
interface ConversationIndex {
  principal: string
  created: string
  updated: string
  title: string
  seqs: number[]
  offsets: number[]
  lengths: number[]
}

type Pending =
  | {
      kind: 'begin'
      message: NewEvent
      create: boolean
      resolve: (result: BeginTurnResult) => void
      reject: (err: unknown) => void
    }
  | {
      kind: 'append'
      events: NewEvent[]
      resolve: (events: ChatEvent[]) => void
      reject: (err: unknown) => void
    }

/** What an operation of a batch came to, before the batch is written. */
type Staged =
  | { kind: 'started'; event: ChatEvent; retry: boolean }
  | { kind: 'duplicate'; request: TrackedRequest; requestId: string }
  | { kind: 'not_found' }
  | { kind: 'appended'; events: ChatEvent[] }
  | { kind: 'refused'; error: unknown }

/** A batch being prepared: its lines and what they change, on top of the index. */
interface Batch {
  lines: string[]
  events: ChatEvent[]
  lastSeq: Map<string, number>
  owners: Map<string, string>
  /** The requests of the batch's events, over the store's. */
  requests: RequestIndex
}

/** The lock of one batch; `compromised` is set by proper-lockfile when it lost it. */
interface Hold {
  compromised: Error | undefined
}

export class JsonlStore implements ChatStore {
  readonly #path: string
  readonly #fsync: boolean
  readonly #isLive: (instance: string) => boolean
  readonly #log: StoreLogger
  readonly #staleMs: number
  readonly #lockTimeoutMs: number
  readonly #beforeWrite: (() => Promise<void>) | undefined
  readonly #file: FileHandle

  readonly #conversations = new Map<string, ConversationIndex>()
  readonly #byPrincipal = new Map<string, string[]>()
  readonly #requests = new RequestIndex()
  #events = 0
  /** The end of the last complete line indexed: everything before it is in the index. */
  #offset = 0
  #bytesRead = 0

  readonly #queue: Pending[] = []
  #flushing: Promise<void> | undefined
  /** Serialises scanning and indexing in this process (catch-ups and the write of a batch). */
  #exclusiveTail: Promise<unknown> = Promise.resolve()
  #closing = false
  #closed: Promise<void> | undefined

  private constructor(options: JsonlStoreOptions, file: FileHandle) {
    this.#path = resolve(options.path)
    this.#fsync = options.fsync
    this.#isLive = options.isLive
    this.#log = options.log
    this.#staleMs = Math.max(MIN_STALE_MS, options.staleMs ?? DEFAULT_STALE_MS)
    this.#lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS
    this.#beforeWrite = options.beforeWrite
    this.#file = file
  }

  /** Opens (or creates) the log: one streaming scan builds the index, then a torn tail is cut. */
  static async open(options: JsonlStoreOptions): Promise<JsonlStore> {
    const path = resolve(options.path)
    await mkdir(dirname(path), { recursive: true })
    // Append mode: every write lands at the end of the file, whatever anyone else did to it.
    const file = await open(path, 'a+')
    const store = new JsonlStore(options, file)
    try {
      const started = performance.now()
      // The long scan runs without the lock; the lock is only needed for the last bit and the cut.
      await store.#exclusive(() => store.#catchUp(false))
      await store.#withLock(() => store.#exclusive(() => store.#catchUp(true)))
      options.log.info(
        {
          path,
          events: store.#events,
          conversations: store.#conversations.size,
          bytes: store.#offset,
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
    return new Promise((resolve, reject) => this.#submit({ kind: 'begin', message, create, resolve, reject }))
  }

  /** From the index, brought up to date with what other processes appended (no lock, no write). */
  async peekRequest(principal: string, requestId: string): Promise<RequestPeek> {
    this.#assertOpen()
    await this.#exclusive(() => this.#catchUp(false))
    const request = this.#requests.get(principal, requestId)
    const state = requestState(request, this.#isLive)
    if (state !== 'finished') return { state }
    return { state, events: await this.#readAttempt(request!, requestId) }
  }

  append(events: NewEvent[]): Promise<ChatEvent[]> {
    if (events.length === 0) return Promise.resolve([])
    return new Promise((resolve, reject) => this.#submit({ kind: 'append', events, resolve, reject }))
  }

  async history(
    principal: string,
    conversationId: string,
    options: { limit?: number; beforeSeq?: number } = {},
  ): Promise<ChatEvent[] | undefined> {
    this.#assertOpen()
    await this.#exclusive(() => this.#catchUp(false))
    const conversation = this.#conversations.get(conversationId)
    if (conversation?.principal !== principal) return undefined
    const end =
      options.beforeSeq === undefined
        ? conversation.seqs.length
        : firstAtLeast(conversation.seqs, options.beforeSeq)
    const start = options.limit === undefined ? 0 : Math.max(0, end - Math.max(0, options.limit))
    return this.#read(conversation, start, end)
  }

  async listConversations(
    principal: string,
    options: { limit: number; before?: string },
  ): Promise<ConversationSummary[]> {
    this.#assertOpen()
    await this.#exclusive(() => this.#catchUp(false))
    const summaries: ConversationSummary[] = []
    for (const id of this.#byPrincipal.get(principal) ?? []) {
      const c = this.#conversations.get(id)!
      if (options.before !== undefined && !(c.updated < options.before)) continue
      summaries.push({ id, created: c.created, updated: c.updated, title: c.title })
    }
    return summaries.sort(newestFirst).slice(0, Math.max(0, options.limit))
  }

  status(): StoreStatus {
    return { ready: !this.#closing, type: 'jsonl', path: this.#path, events: this.#events }
  }

  /** Bytes read from the log since open: what reads cost (tests and benchmarks). */
  get bytesRead(): number {
    return this.#bytesRead
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true
      await this.#flushing
      await this.#exclusive(() => Promise.resolve())
      await this.#file.close()
    })()
    return this.#closed
  }

  // --- writing -------------------------------------------------------------------------------

  #submit(op: Pending): void {
    if (this.#closing) {
      op.reject(new StoreError('STORE_CLOSED', 'the store is closed'))
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

  /** One group commit; answers every caller of the batch, never throws. */
  async #commit(ops: Pending[]): Promise<void> {
    let staged: Staged[] = []
    try {
      staged = await this.#withLock((hold) =>
        this.#exclusive(async () => {
          await this.#catchUp(true)
          const batch: Batch = {
            lines: [],
            events: [],
            lastSeq: new Map(),
            owners: new Map(),
            requests: new RequestIndex(this.#requests),
          }
          const outcomes = ops.map((op) => this.#stage(batch, op))
          if (batch.lines.length > 0) await this.#write(batch, hold)
          return outcomes
        }),
      )
    } catch (err) {
      for (const op of ops) op.reject(err)
      return
    }
    await Promise.all(ops.map((op, i) => this.#answer(op, staged[i]!)))
  }

  async #answer(op: Pending, staged: Staged): Promise<void> {
    try {
      switch (staged.kind) {
        case 'refused':
          return op.reject(staged.error)
        case 'appended':
          return (op as Extract<Pending, { kind: 'append' }>).resolve(staged.events)
        case 'duplicate': {
          const events = await this.#readAttempt(staged.request, staged.requestId)
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

  /** Decides one operation against the index and what the batch already holds. */
  #stage(batch: Batch, op: Pending): Staged {
    try {
      if (op.kind === 'append') return { kind: 'appended', events: this.#stageEvents(batch, op.events) }
      const { message, create } = op
      const request = batch.requests.get(message.principal, message.request_id)
      const state = requestState(request, this.#isLive)
      if (state === 'running' || state === 'finished') {
        return { kind: 'duplicate', request: request!, requestId: message.request_id }
      }
      if (state === 'retry') {
        const [event] = this.#stageEvents(batch, [{ ...message, conversation_id: request!.conversation }])
        return { kind: 'started', event: event!, retry: true }
      }
      const owner =
        this.#conversations.get(message.conversation_id)?.principal ??
        batch.owners.get(message.conversation_id)
      if (create ? owner !== undefined : owner !== message.principal) return { kind: 'not_found' }
      const [event] = this.#stageEvents(batch, [message])
      return { kind: 'started', event: event!, retry: false }
    } catch (error) {
      return { kind: 'refused', error }
    }
  }

  /** Builds and checks all events of one operation first, so a refused one stages nothing. */
  #stageEvents(batch: Batch, inputs: NewEvent[]): ChatEvent[] {
    const nextSeq = new Map<string, number>()
    const built = inputs.map((input) => {
      const conversation = input.conversation_id
      const seq =
        (nextSeq.get(conversation) ??
          batch.lastSeq.get(conversation) ??
          this.#conversations.get(conversation)?.seqs.at(-1) ??
          0) + 1
      nextSeq.set(conversation, seq)
      return buildEvent(input, seq)
    })
    for (const { event, line } of built) {
      batch.lines.push(line)
      batch.events.push(event)
      batch.lastSeq.set(event.conversation_id, event.seq)
      if (!this.#conversations.has(event.conversation_id) && !batch.owners.has(event.conversation_id)) {
        batch.owners.set(event.conversation_id, event.principal)
      }
      batch.requests.record(event)
    }
    return built.map((b) => b.event)
  }

  /** The batch's one write, after making sure nobody else wrote under our lock. */
  async #write(batch: Batch, hold: Hold): Promise<void> {
    await this.#beforeWrite?.()
    if (hold.compromised) {
      throw new StoreError('STORE_LOCK_COMPROMISED', 'the event log lock was lost; nothing was written', {
        cause: hold.compromised,
      })
    }
    // Someone appending under what we believe is our lock means the lock is not ours any more.
    const { size } = await this.#file.stat()
    if (size !== this.#offset) {
      throw new StoreError(
        'STORE_LOCK_COMPROMISED',
        `the event log changed under our lock (${size} bytes, ${this.#offset} expected); nothing was written`,
      )
    }
    const data = Buffer.from(batch.lines.join(''), 'utf8')
    try {
      const { bytesWritten } = await this.#file.write(data)
      if (bytesWritten !== data.length)
        throw new Error(`short write: ${bytesWritten} of ${data.length} bytes`)
      if (this.#fsync) await this.#file.datasync()
    } catch (err) {
      // An unacknowledged batch must not stay: its callers will retry it.
      await this.#file.truncate(this.#offset).catch((cut: unknown) => {
        this.#log.error({ err: cut, path: this.#path }, 'could not cut off a failed write')
      })
      throw new StoreError('STORE_WRITE_FAILED', `could not write the event log: ${String(err)}`, {
        cause: err,
      })
    }
    let offset = this.#offset
    for (let i = 0; i < batch.events.length; i++) {
      const length = Buffer.byteLength(batch.lines[i]!)
      this.#index(batch.events[i]!, offset, length)
      offset += length
    }
    this.#offset = offset
  }

  async #withLock<T>(fn: (hold: Hold) => Promise<T>): Promise<T> {
    const hold: Hold = { compromised: undefined }
    let release: () => Promise<void>
    try {
      release = await lockfile.lock(this.#path, {
        stale: this.#staleMs,
        update: this.#staleMs / 2,
        realpath: false,
        // Short, jittered polls: the lock is held for one write and one fsync at a time. The
        // whole wait is bounded, so a caller gets an error rather than hanging.
        retries: {
          forever: true,
          retries: 10,
          factor: 1.5,
          minTimeout: 1,
          maxTimeout: 10,
          randomize: true,
          maxRetryTime: this.#lockTimeoutMs,
        },
        onCompromised: (err) => {
          hold.compromised = err
          this.#log.error({ err, path: this.#path }, 'event log lock compromised')
        },
      })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw code === 'ELOCKED'
        ? new StoreError(
            'STORE_LOCK_TIMEOUT',
            `could not lock ${this.#path} within ${this.#lockTimeoutMs} ms`,
            {
              cause: err,
            },
          )
        : new StoreError('STORE_WRITE_FAILED', `could not lock ${this.#path}: ${String(err)}`, { cause: err })
    }
    try {
      return await fn(hold)
    } finally {
      // After a compromise proper-lockfile has already let go (ERELEASED); nothing to do then.
      await release().catch((err: unknown) => {
        if (!hold.compromised)
          this.#log.warn({ err, path: this.#path }, 'could not release the event log lock')
      })
    }
  }

  // --- reading -------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closing) throw new StoreError('STORE_CLOSED', 'the store is closed')
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
    const { size } = await this.#file.stat()
    if (size < this.#offset) {
      // Only a failed write's rollback shrinks the file; lines of it may have been read by us
      // in the meantime, so the index is rebuilt from the start.
      this.#log.warn(
        { path: this.#path, size, offset: this.#offset },
        'event log shrank; rebuilding the index',
      )
      this.#resetIndex()
    }
    if (size > this.#offset) this.#offset = await this.#scan(this.#offset, size)
    if (locked && size > this.#offset) {
      await this.#file.truncate(this.#offset)
      this.#log.warn(
        { path: this.#path, offset: this.#offset, bytes: size - this.#offset },
        'cut off a torn last line',
      )
    }
  }

  /** Reads [from, to) in chunks, indexing each complete line; returns the end of the last one. */
  async #scan(from: number, to: number): Promise<number> {
    let buffer = Buffer.allocUnsafe(Math.min(SCAN_CHUNK, to - from))
    let base = from
    let filled = 0
    while (base + filled < to) {
      if (filled === buffer.length) {
        // One line longer than the buffer: make room for it.
        const bigger = Buffer.allocUnsafe(buffer.length * 2)
        buffer.copy(bigger, 0, 0, filled)
        buffer = bigger
      }
      const want = Math.min(buffer.length - filled, to - base - filled)
      const { bytesRead } = await this.#file.read(buffer, filled, want, base + filled)
      if (bytesRead === 0) break
      this.#bytesRead += bytesRead
      filled += bytesRead
      const view = buffer.subarray(0, filled)
      let start = 0
      for (let end = view.indexOf(NEWLINE, start); end !== -1; end = view.indexOf(NEWLINE, start)) {
        this.#indexLine(view, start, end, base + start)
        start = end + 1
      }
      if (start > 0) {
        buffer.copy(buffer, 0, start, filled)
        filled -= start
        base += start
      }
    }
    return base
  }

  #indexLine(buffer: Buffer, start: number, end: number, offset: number): void {
    let value: unknown
    try {
      value = JSON.parse(buffer.toString('utf8', start, end))
    } catch (err) {
      this.#log.warn({ path: this.#path, offset, err }, 'skipped a line of the event log that is not JSON')
      return
    }
    const problem = eventProblem(value)
    if (problem) {
      this.#log.warn(
        { path: this.#path, offset, problem },
        'skipped a line of the event log that is not an event',
      )
      return
    }
    this.#index(value as ChatEvent, offset, end + 1 - start)
  }

  #index(event: ChatEvent, offset: number, length: number): void {
    let c = this.#conversations.get(event.conversation_id)
    if (!c) {
      c = {
        principal: event.principal,
        created: event.timestamp,
        updated: event.timestamp,
        title: '',
        seqs: [],
        offsets: [],
        lengths: [],
      }
      this.#conversations.set(event.conversation_id, c)
      const mine = this.#byPrincipal.get(event.principal)
      if (mine) mine.push(event.conversation_id)
      else this.#byPrincipal.set(event.principal, [event.conversation_id])
    }
    const last = c.seqs.length > 0 ? c.seqs[c.seqs.length - 1]! : 0
    if (event.seq <= last) {
      // Two events claiming one seq: the first one written stands.
      this.#log.warn(
        { path: this.#path, offset, conversation_id: event.conversation_id, seq: event.seq },
        'skipped an event whose seq is taken',
      )
      return
    }
    c.seqs.push(event.seq)
    c.offsets.push(offset)
    c.lengths.push(length)
    c.updated = event.timestamp
    if (!c.title && event.type === 'user_message') c.title = titleOf(event.content)
    this.#requests.record(event)
    this.#events++
  }

  #resetIndex(): void {
    this.#conversations.clear()
    this.#byPrincipal.clear()
    this.#requests.clear()
    this.#events = 0
    this.#offset = 0
  }

  /**
   * Events [from, to) of a conversation's index: one read per run of adjacent lines, the reads
   * issued together (a conversation's lines are usually spread over the file).
   */
  async #read(c: ConversationIndex, from: number, to: number): Promise<ChatEvent[]> {
    const runs: { first: number; end: number }[] = []
    for (let i = from; i < to;) {
      let j = i + 1
      while (j < to && c.offsets[j] === c.offsets[j - 1]! + c.lengths[j - 1]!) j++
      runs.push({ first: i, end: j })
      i = j
    }
    const buffers: Buffer[] = []
    // A bounded number at a time: a long conversation must not flood the thread pool.
    for (let r = 0; r < runs.length; r += READS_IN_FLIGHT) {
      const chunk = runs.slice(r, r + READS_IN_FLIGHT).map(async ({ first, end }) => {
        const length = c.offsets[end - 1]! + c.lengths[end - 1]! - c.offsets[first]!
        const buffer = Buffer.allocUnsafe(length)
        const { bytesRead } = await this.#file.read(buffer, 0, length, c.offsets[first])
        this.#bytesRead += bytesRead
        return buffer.subarray(0, bytesRead)
      })
      buffers.push(...(await Promise.all(chunk)))
    }
    const events: ChatEvent[] = []
    runs.forEach(({ first, end }, r) => {
      let at = 0
      for (let k = first; k < end; k++) {
        const event = parseEvent(buffers[r]!.toString('utf8', at, at + c.lengths[k]! - 1))
        at += c.lengths[k]!
        if (event === undefined || event.seq !== c.seqs[k]) {
          this.#log.error(
            { path: this.#path, offset: c.offsets[k], seq: c.seqs[k] },
            'an indexed event could not be read back',
          )
          continue
        }
        events.push(event)
      }
    })
    return events
  }

  /** A request's latest attempt: its events from the attempt's first one on. */
  async #readAttempt(request: TrackedRequest, requestId: string): Promise<ChatEvent[]> {
    const c = this.#conversations.get(request.conversation)
    if (!c) return []
    const events = await this.#read(c, firstAtLeast(c.seqs, request.attemptSeq), c.seqs.length)
    return events.filter((e) => e.request_id === requestId)
  }
}

/** The stored form of an event; the JSON round trip gives the caller exactly what reads return. */
function buildEvent(input: NewEvent, seq: number): { event: ChatEvent; line: string } {
  // Fields the store assigns are never taken from the caller, even if present at runtime.
  const {
    id: _id,
    seq: _seq,
    timestamp: _timestamp,
    conversation_id,
    ...rest
  } = input as Partial<ChatEvent> & NewEvent
  const draft = { id: randomUUID(), conversation_id, seq, timestamp: new Date().toISOString(), ...rest }
  const line = JSON.stringify(draft)
  const event: unknown = JSON.parse(line)
  const problem = eventProblem(event)
  if (problem) throw new StoreError('STORE_INVALID_EVENT', `the event does not fit the schema: ${problem}`)
  return { event: event as ChatEvent, line: `${line}\n` }
}

function parseEvent(text: string): ChatEvent | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return eventProblem(value) === undefined ? (value as ChatEvent) : undefined
  } catch {
    return undefined
  }
}

/** The index of the first seq >= `seq` in an ascending list (binary search). */
function firstAtLeast(seqs: number[], seq: number): number {
  let low = 0
  let high = seqs.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (seqs[mid]! < seq) low = mid + 1
    else high = mid
  }
  return low
}
