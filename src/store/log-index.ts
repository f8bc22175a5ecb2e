// The jsonl repository's in-memory index of its file (architecture.md, jsonl): for each
// conversation the byte offset and length of each of its lines, its owner and summary, and each
// request's state. Built by one streaming scan at open, kept current by reading only what was
// appended since; reads of a conversation read its lines and nothing else.
import { fstatSync, readSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { eventProblem } from './event-schema.js'
import { RequestIndex, type TrackedRequest } from './request-index.js'
import { titleOf, type ChatEvent, type ConversationSummary } from './types.js'
import type { Logger } from '../logging.js'

const SCAN_CHUNK = 1 << 20
/**
 * A catch-up this small is read synchronously: usually what other processes appended since our
 * last batch, just written, in the page cache. Under the lock every process waits for the reader,
 * and on a busy machine a thread-pool round trip costs more than copying this much.
 */
export const SYNC_IO_BYTES = 256 * 1024
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

export class LogIndex {
  readonly #file: FileHandle
  readonly #path: string
  readonly #log: Logger
  readonly #conversations = new Map<string, ConversationIndex>()
  readonly #byPrincipal = new Map<string, string[]>()
  readonly #requests = new RequestIndex()
  #events = 0
  /** The end of the last complete line indexed: everything before it is in the index. */
  #offset = 0
  #bytesRead = 0

  constructor(file: FileHandle, path: string, log: Logger) {
    this.#file = file
    this.#path = path
    this.#log = log
  }

  get offset(): number {
    return this.#offset
  }

  get events(): number {
    return this.#events
  }

  get conversations(): number {
    return this.#conversations.size
  }

  /** Bytes read from the file since open. */
  get bytesRead(): number {
    return this.#bytesRead
  }

  get requests(): RequestIndex {
    return this.#requests
  }

  /** The principal a conversation belongs to; undefined when it does not exist. */
  owner(conversationId: string): string | undefined {
    return this.#conversations.get(conversationId)?.principal
  }

  /** The last seq of a conversation; 0 when it has none. */
  lastSeq(conversationId: string): number {
    return this.#conversations.get(conversationId)?.seqs.at(-1) ?? 0
  }

  /**
   * Indexes the complete lines appended since the offset and returns the file's size: bigger than
   * the new offset when the file ends with a partial line, which the caller judges (a write in
   * progress, or without it, a torn one).
   */
  async catchUp(): Promise<number> {
    // Synchronous: an fstat answers from the inode in memory, quicker than a thread-pool round trip,
    // and under the log's lock every process waits for it.
    const { size } = fstatSync(this.#file.fd)
    if (size < this.#offset) {
      // Only a failed write's rollback shrinks the file; lines of it may have been read by us
      // in the meantime, so the index is rebuilt from the start.
      this.#log.warn(
        { path: this.#path, size, offset: this.#offset },
        'event log shrank; rebuilding the index',
      )
      this.#reset()
    }
    if (size > this.#offset)
      this.#offset = await this.#scan(this.#offset, size, size - this.#offset <= SYNC_IO_BYTES)
    return size
  }

  /** Indexes the lines this process just wrote at the offset, in order. */
  addWritten(events: readonly ChatEvent[], lines: readonly string[]): void {
    let offset = this.#offset
    for (let i = 0; i < events.length; i++) {
      const length = Buffer.byteLength(lines[i]!)
      this.#add(events[i]!, offset, length)
      offset += length
    }
    this.#offset = offset
  }

  /** Events of a conversation: of those with seq < beforeSeq, the last `limit`. */
  async history(
    principal: string,
    conversationId: string,
    options: { limit?: number; beforeSeq?: number },
  ): Promise<ChatEvent[] | undefined> {
    const c = this.#conversations.get(conversationId)
    if (c?.principal !== principal) return undefined
    const end = options.beforeSeq === undefined ? c.seqs.length : firstAtLeast(c.seqs, options.beforeSeq)
    const start = options.limit === undefined ? 0 : Math.max(0, end - Math.max(0, options.limit))
    return this.#read(c, start, end)
  }

  /** The principal's conversations (any order); `before`: strictly older than it. */
  summaries(principal: string, before: string | undefined): ConversationSummary[] {
    const summaries: ConversationSummary[] = []
    for (const id of this.#byPrincipal.get(principal) ?? []) {
      const c = this.#conversations.get(id)!
      if (before !== undefined && !(c.updated < before)) continue
      summaries.push({ id, created: c.created, updated: c.updated, title: c.title })
    }
    return summaries
  }

  /** A request's latest attempt: its events from the attempt's first one on. */
  async readAttempt(request: TrackedRequest, requestId: string): Promise<ChatEvent[]> {
    const c = this.#conversations.get(request.conversation)
    if (!c) return []
    const events = await this.#read(c, firstAtLeast(c.seqs, request.attemptSeq), c.seqs.length)
    return events.filter((e) => e.request_id === requestId)
  }

  /** Reads [from, to) in chunks, indexing each complete line; returns the end of the last one. */
  async #scan(from: number, to: number, sync: boolean): Promise<number> {
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
      const bytesRead = sync
        ? readSync(this.#file.fd, buffer, filled, want, base + filled)
        : (await this.#file.read(buffer, filled, want, base + filled)).bytesRead
      if (bytesRead === 0) break
      this.#bytesRead += bytesRead
      filled += bytesRead
      const view = buffer.subarray(0, filled)
      let start = 0
      for (let end = view.indexOf(NEWLINE, start); end !== -1; end = view.indexOf(NEWLINE, start)) {
        this.#addLine(view, start, end, base + start)
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

  #addLine(buffer: Buffer, start: number, end: number, offset: number): void {
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
    this.#add(value as ChatEvent, offset, end + 1 - start)
  }

  #add(event: ChatEvent, offset: number, length: number): void {
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

  #reset(): void {
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
