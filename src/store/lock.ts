// The lock on the event log (architecture.md, jsonl): a proper-lockfile lock directory next to the
// file, refreshed while held, taken over once a dead holder left it stale. A batch holds it for one
// catch-up and one write (its fsync comes after, see jsonl.ts).
//
// A process waiting for the lock watches the lock directory (fs.watch: inotify on Linux), so the
// release wakes it at once rather than at its next poll; the poll stays, for file systems that
// report nothing and for a holder that dies without letting go.
//
// The holder also records itself in `<path>.lock.owner` (host, pid namespace, pid, and which lock
// directory it holds), so a lock whose holder is provably dead on this machine (same host and pid
// namespace, `kill(pid, 0)` says ESRCH) is taken over at once instead of after staleMs: a restart
// after a crash does not wait. A lock without a record, or held from another machine or namespace,
// or whose process may be alive, is judged by its age alone, as before. The record is a sibling
// file because writing into the lock directory would change its mtime, which proper-lockfile
// watches to tell that its lock was taken.
import {
  closeSync,
  constants,
  openSync,
  readlinkSync,
  statSync,
  watch,
  writeSync,
  type FSWatcher,
} from 'node:fs'
import { mkdir, readFile, rmdir, stat, unlink } from 'node:fs/promises'
import { hostname } from 'node:os'
import { performance } from 'node:perf_hooks'
import lockfile from 'proper-lockfile'
import type { Logger } from '../logging.js'
import { errors } from '../errors.js'

/** The longest pause between two tries of a busy lock (before jitter). */
const MAX_POLL_MS = 10
/** How often a process waiting for the lock reads its holder's record (to take a dead one's over). */
const OWNER_CHECK_MS = 100
/** A takeover is a few file operations: a turn directory older than this was left by a dead taker. */
const TAKEOVER_STALE_MS = 10_000
/**
 * The owner record is overwritten in place, padded to this size, never truncated: truncating a file
 * frees its block, which on ext4 costs a journal update, under the lock, on every batch.
 */
const RECORD_BYTES = 512

/** Who holds the lock, as `<path>.lock.owner` says. */
interface Owner {
  host: string
  /** The pid namespace (Linux; null elsewhere): a pid means nothing across namespaces. */
  pidns: string | null
  pid: number
  /** The lock directory held (inode, birth time): a record left from an earlier lock is not this one's. */
  lock: string
}

const HOST = hostname()
const PIDNS = pidNamespace()

function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return null
  }
}

/** One holding of the lock; `compromised` is set by proper-lockfile when it lost it. */
export interface Hold {
  compromised: Error | undefined
}

export interface EventLogLockOptions {
  /** The event log (the lock is `<path>.lock`). */
  path: string
  /** A lock not refreshed for this long is taken over; the holder refreshes it every staleMs / 2. */
  staleMs: number
  /** How long to wait for the lock before failing with STORE_LOCK_TIMEOUT. */
  timeoutMs: number
  log: Logger
}

export class EventLogLock {
  readonly #path: string
  readonly #lockPath: string
  readonly #ownerPath: string
  /** Whether the last record named its lock directory with a birth time (not every file system has one). */
  #recordedBirth = false
  readonly #staleMs: number
  readonly #timeoutMs: number
  readonly #log: Logger

  constructor(options: EventLogLockOptions) {
    this.#path = options.path
    this.#lockPath = `${options.path}.lock`
    this.#ownerPath = `${options.path}.lock.owner`
    this.#staleMs = options.staleMs
    this.#timeoutMs = options.timeoutMs
    this.#log = options.log
  }

  /**
   * Runs `fn` holding the lock, and lets go after, whatever `fn` did. Waits for the lock at most
   * timeoutMs (STORE_LOCK_TIMEOUT), or until `signal` aborts: then rejects with its reason, `fn`
   * not run.
   */
  async run<T>(fn: (hold: Hold) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const hold: Hold = { compromised: undefined }
    const release = await this.#acquire(hold, signal)
    // Written before `fn` writes anything: a holder that dies at any point of its batch has left
    // its record, so the next process can take its lock over at once.
    try {
      this.#recordOwner()
      return await fn(hold)
    } finally {
      // A record naming a lock directory by its birth time cannot be mistaken for a later lock's,
      // so it may stay (a crash between removing it and letting go would cost staleMs). Without a
      // birth time an inode may be reused: the record goes first. After a compromise it is not ours.
      if (!hold.compromised && !this.#recordedBirth) await unlink(this.#ownerPath).catch(() => undefined)
      // After a compromise proper-lockfile has already let go (ERELEASED); nothing to do then.
      await release().catch((err: unknown) => {
        if (!hold.compromised)
          this.#log.warn({ err, path: this.#path }, 'could not release the event log lock')
      })
    }
  }

  async #acquire(hold: Hold, signal: AbortSignal | undefined): Promise<() => Promise<void>> {
    const deadline = performance.now() + this.#timeoutMs
    let ownerCheckedAt = -Infinity
    // Polled here rather than with proper-lockfile's retries, whose wait cannot be cut short.
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted()
      try {
        return await lockfile.lock(this.#path, {
          stale: this.#staleMs,
          update: this.#staleMs / 2,
          realpath: false,
          retries: 0,
          onCompromised: (err) => {
            hold.compromised = err
            this.#log.error({ err, path: this.#path }, 'event log lock compromised')
          },
        })
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        // The holder's record is read at most every OWNER_CHECK_MS: a busy log is locked often.
        if (code === 'ELOCKED' && performance.now() - ownerCheckedAt >= OWNER_CHECK_MS) {
          ownerCheckedAt = performance.now()
          if (await this.#takeOverFromDead()) continue
        }
        // ENOENT: another process removed the lock between proper-lockfile's mkdir and its stat.
        if (code !== 'ELOCKED' && code !== 'ENOENT') {
          throw new errors.STORE_WRITE_FAILED(`could not lock ${this.#path}: ${String(err)}`, {
            cause: err,
          })
        }
        if (performance.now() >= deadline) {
          throw new errors.STORE_LOCK_TIMEOUT(`could not lock ${this.#path} within ${this.#timeoutMs} ms`, {
            cause: err,
          })
        }
      }
      // Short, jittered polls (the lock is held for one write at a time), cut short by the release.
      const pause = Math.min(MAX_POLL_MS, 1.5 ** attempt) * (1 + Math.random())
      await this.#released(pause, signal)
    }
  }

  /**
   * Resolves when the lock directory is removed (or changes), after `ms`, or when `signal` aborts,
   * whichever comes first. The watch is a hint: an event may also be the holder's refresh, and
   * without one (the lock already gone, a file system that cannot watch, no inotify watches left)
   * the poll alone decides.
   */
  #released(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      let watcher: FSWatcher | undefined
      const finish = () => {
        clearTimeout(timer)
        watcher?.close()
        signal?.removeEventListener('abort', finish)
        resolve()
      }
      const timer = setTimeout(finish, ms)
      if (signal?.aborted) return finish()
      signal?.addEventListener('abort', finish, { once: true })
      try {
        // Not persistent: the timer keeps the process alive while it waits, the watch need not.
        watcher = watch(this.#lockPath, { persistent: false }, finish)
        watcher.on('error', finish)
      } catch (err) {
        // Gone already: released since the try. Any other failure: the poll alone.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') finish()
      }
    })
  }

  /**
   * Which lock directory this is: inode and birth time, so a reused inode is not mistaken. A
   * synchronous stat: it runs under the lock, where a thread-pool round trip costs more than it.
   */
  #lockIdentity(): { id: string; birth: boolean } | undefined {
    try {
      const info = statSync(this.#lockPath, { bigint: true, throwIfNoEntry: false })
      return info && { id: `${info.ino}:${info.birthtimeNs}`, birth: info.birthtimeNs > 0n }
    } catch {
      return undefined
    }
  }

  /**
   * Three synchronous system calls on a small cached file, under the lock (as #lockIdentity). Not
   * atomic on purpose: a torn record does not parse, and an unknown owner is judged by age.
   */
  #recordOwner(): void {
    const lock = this.#lockIdentity()
    this.#recordedBirth = lock?.birth ?? false
    const owner: Owner = { host: HOST, pidns: PIDNS, pid: process.pid, lock: lock?.id ?? '' }
    // Padded with spaces (JSON allows them), so it covers any shorter record written before it.
    const record = Buffer.from(JSON.stringify(owner).padEnd(RECORD_BYTES))
    try {
      const fd = openSync(this.#ownerPath, constants.O_WRONLY | constants.O_CREAT, 0o644)
      try {
        writeSync(fd, record, 0, record.length, 0)
      } finally {
        closeSync(fd)
      }
    } catch (err) {
      this.#log.warn({ err, path: this.#ownerPath }, 'could not record the event log lock owner')
    }
  }

  /**
   * Removes the lock when its recorded owner is provably dead; true when it did. Takers go one at
   * a time (`<lock>.takeover`, made with mkdir, atomic) and check the record and the lock
   * directory's identity again inside: a taker that comes second finds the lock gone or a new
   * one, never removes a live holder's.
   */
  async #takeOverFromDead(): Promise<boolean> {
    if (!(await this.#ownerSeemsDead())) return false
    const turn = `${this.#lockPath}.takeover`
    try {
      await mkdir(turn)
    } catch {
      // Another taker is at it; one that died mid-takeover leaves its directory, cleared when old.
      const made = await stat(turn).catch(() => undefined)
      if (made && Date.now() - made.mtimeMs > TAKEOVER_STALE_MS) await rmdir(turn).catch(() => undefined)
      return false
    }
    try {
      if (!(await this.#ownerSeemsDead())) return false
      await this.#removeDeadLock()
      return true
    } finally {
      await rmdir(turn).catch(() => undefined)
    }
  }

  /** The record names a process of this machine that is gone, and the lock is the one it made. */
  async #ownerSeemsDead(): Promise<boolean> {
    const owner = parseOwner(await readFile(this.#ownerPath, 'utf8').catch(() => undefined))
    if (!owner || owner.host !== HOST || owner.pidns !== PIDNS || owner.pid === process.pid) return false
    if (owner.lock === '' || owner.lock !== this.#lockIdentity()?.id) return false
    return isDead(owner.pid)
  }

  async #removeDeadLock(): Promise<void> {
    const owner = parseOwner(await readFile(this.#ownerPath, 'utf8').catch(() => undefined))
    await unlink(this.#ownerPath).catch(() => undefined)
    await rmdir(this.#lockPath).catch(() => undefined)
    this.#log.warn(
      { path: this.#path, owner: { host: owner?.host, pid: owner?.pid } },
      'took over the event log lock of a process that died holding it',
    )
  }
}

function parseOwner(text: string | undefined): Owner | undefined {
  if (text === undefined) return undefined
  try {
    const value = JSON.parse(text) as Partial<Owner>
    const ok =
      typeof value.host === 'string' &&
      (typeof value.pidns === 'string' || value.pidns === null) &&
      Number.isInteger(value.pid) &&
      (value.pid as number) > 0 &&
      typeof value.lock === 'string'
    return ok ? (value as Owner) : undefined
  } catch {
    return undefined
  }
}

/** True only when no process has this pid here (EPERM: it exists, someone else's). */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}
