// The lock on the event log (architecture.md, jsonl): a symbolic link `<path>.lock`, made with
// symlink(2), which fails when the name exists. Taking it is one atomic step, and its target names
// the holder (pid, machine, and a nonce for this holding), so the lock and the record of who holds
// it are one thing and cannot disagree. A batch holds it for one catch-up and one write (its
// fdatasync comes after, see jsonl.ts), and refreshes its mtime every staleMs / 2 meanwhile.
//
// Why a link: it is the cheapest atomic thing to make and remove. A lock directory (as
// proper-lockfile makes) has a block to allocate and free, which under fsync load cost a
// millisecond per mkdir and rmdir on ext4 here, on every batch, while every other process waited;
// a link lives in its inode. Its few system calls are made synchronously for the same reason: each
// takes microseconds on a cached inode, less than a thread-pool round trip, and under the lock every
// process waits for them.
//
// Taken over: at once when its holder is provably dead (same machine and pid namespace, and
// `kill(pid, 0)` says ESRCH), so a restart after a crash does not wait; otherwise once stale (not
// refreshed for staleMs: a holder on another machine or in another namespace, or whose pid lives
// on). Takers go one at a time (`<lock>.takeover`, made with mkdir) and look again inside, so
// none removes a lock taken meanwhile. A lock directory left by an earlier version of the platform
// (proper-lockfile's) is honoured while fresh and taken over once stale; processes of that version
// see a link as a lock held.
//
// Waiting: a process that finds the lock held watches its folder (fs.watch: inotify on Linux) for
// the link to go, so the release wakes it at once rather than at its next poll. The watch is a
// hint and the poll stays, for file systems that report nothing and for holders that die.
import { createHash, randomBytes } from 'node:crypto'
import {
  lstatSync,
  lutimesSync,
  mkdirSync,
  readlinkSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
  watch,
  type FSWatcher,
} from 'node:fs'
import { hostname } from 'node:os'
import { basename, dirname } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../logging.js'
import { errors } from '../errors.js'

/** The longest pause between two tries of a busy lock (before jitter), when no release is seen. */
const MAX_POLL_MS = 10
/** How often a process waiting for the lock looks at its holder (to take a dead or stale one's over). */
const OWNER_CHECK_MS = 100
/** A takeover is a few file operations: a turn directory older than this was left by a dead taker. */
const TAKEOVER_STALE_MS = 10_000

/**
 * This machine and pid namespace, in 12 hex digits: a pid means something only where both are
 * the same. Short, so the link's target fits in its inode (ext4 keeps up to 59 bytes there).
 */
const MACHINE = createHash('sha256')
  .update(`${hostname()}\0${pidNamespace() ?? ''}`)
  .digest('hex')
  .slice(0, 12)

function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return null
  }
}

/** Tells this process's holdings apart (random: a pid is reused), numbered within it. */
const PROCESS_NONCE = randomBytes(4).toString('hex')
let holdings = 0

/** The target of a lock link: who holds it, and which holding it is. */
export function lockTarget(pid: number, nonce = `${PROCESS_NONCE}${(holdings++).toString(16)}`): string {
  return `${pid}.${MACHINE}.${nonce}`
}

/** The holder a lock's target names; undefined for anything else. */
function holderOf(target: string): { pid: number; machine: string } | undefined {
  const m = /^(\d+)\.([0-9a-f]{12})\.[0-9a-f]+$/.exec(target)
  return m ? { pid: Number(m[1]), machine: m[2]! } : undefined
}

/** What is at the lock's name. */
type Seen =
  | { state: 'free' }
  | {
      state: 'held'
      /** The same for one lock and none other: its target (a link), or inode and mtime (a directory). */
      key: string
      target: string | undefined
      directory: boolean
      mtimeMs: number
    }

/** One holding of the lock. */
export interface Hold {
  /** Set once the lock is found taken from us (by the refresh, or by verify()). */
  compromised: Error | undefined
  /** Whether the lock is still ours, looked at now (one readlink): the reason it is not, if not. */
  verify(): Error | undefined
}

export interface EventLogLockOptions {
  /** The event log (the lock is `<path>.lock`). */
  path: string
  /** A lock not refreshed for this long is taken over; the holder refreshes it every staleMs / 2. */
  staleMs: number
  /** How long to wait for the lock before failing with STORE_LOCK_TIMEOUT. */
  timeoutMs: number
  log: Logger
  /**
   * Every pause between two tries when no release is seen, fixed; by default they grow from 1 to
   * 10 ms, jittered. Tests make it long, so that only the release can wake a waiter in time.
   */
  pollMs?: number
}

export class EventLogLock {
  readonly #path: string
  readonly #lockPath: string
  readonly #lockName: string
  readonly #staleMs: number
  readonly #timeoutMs: number
  readonly #pollMs: number | undefined
  readonly #log: Logger

  constructor(options: EventLogLockOptions) {
    this.#path = options.path
    this.#lockPath = `${options.path}.lock`
    this.#lockName = basename(this.#lockPath)
    this.#staleMs = options.staleMs
    this.#timeoutMs = options.timeoutMs
    this.#pollMs = options.pollMs
    this.#log = options.log
  }

  /**
   * Runs `fn` holding the lock, and lets go after, whatever `fn` did. Waits for the lock at most
   * timeoutMs (STORE_LOCK_TIMEOUT), or until `signal` aborts: then rejects with its reason, `fn`
   * not run. `meanwhile` runs after each wait, before the next try: work done there, rather than
   * under the lock, is not waited for by every other process.
   */
  async run<T>(
    fn: (hold: Hold) => Promise<T>,
    signal?: AbortSignal,
    meanwhile?: () => Promise<void>,
  ): Promise<T> {
    const holding = await this.#acquire(signal, meanwhile)
    try {
      return await fn(holding)
    } finally {
      holding.release()
    }
  }

  async #acquire(
    signal: AbortSignal | undefined,
    meanwhile: (() => Promise<void>) | undefined,
  ): Promise<Holding> {
    const deadline = performance.now() + this.#timeoutMs
    let checkedAt = -Infinity
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted()
      const holding = this.#tryLock()
      if (holding) return holding
      // The holder is looked at now and then, not at every try: a busy log is locked often.
      if (performance.now() - checkedAt >= OWNER_CHECK_MS) {
        checkedAt = performance.now()
        const seen = this.#look()
        if (seen.state === 'free' || (this.#removable(seen) && this.#takeOver(seen))) continue
      }
      if (performance.now() >= deadline) {
        throw new errors.STORE_LOCK_TIMEOUT(`could not lock ${this.#path} within ${this.#timeoutMs} ms`)
      }
      // Short, jittered polls (the lock is held for one write at a time), cut short by the release.
      const pause = this.#pollMs ?? Math.min(MAX_POLL_MS, 1.5 ** attempt) * (1 + Math.random())
      await this.#released(pause, signal)
      await meanwhile?.()
    }
  }

  /** Takes the lock if it is free; undefined when it is held. */
  #tryLock(): Holding | undefined {
    const target = lockTarget(process.pid)
    try {
      symlinkSync(target, this.#lockPath)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined
      throw new errors.STORE_WRITE_FAILED(`could not lock ${this.#path}: ${String(err)}`, { cause: err })
    }
    return new Holding(this.#path, target, this.#staleMs, this.#log)
  }

  /**
   * Resolves when something happens to the lock's name (its release, mostly), after `ms`, or when
   * `signal` aborts, whichever comes first. The folder is watched, not the link: a watch follows
   * links, and this one points nowhere.
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
        watcher = watch(dirname(this.#lockPath), { persistent: false }, (_event, name) => {
          if (name === null || name === this.#lockName) finish()
        })
        watcher.on('error', finish)
      } catch {
        // No watch here (a file system that cannot, no inotify watches left): the poll alone.
      }
      // Let go between the last try and the watch: no event will come for that.
      try {
        if (!lstatSync(this.#lockPath, { throwIfNoEntry: false })) finish()
      } catch {
        // Cannot look: the next try will say why.
      }
    })
  }

  /** What is at the lock's name now. */
  #look(): Seen {
    try {
      const info = lstatSync(this.#lockPath, { throwIfNoEntry: false })
      if (!info) return { state: 'free' }
      const target = info.isSymbolicLink() ? readlinkSync(this.#lockPath) : undefined
      return {
        state: 'held',
        key: target ?? `${info.ino}:${info.mtimeMs}`,
        target,
        directory: info.isDirectory(),
        mtimeMs: info.mtimeMs,
      }
    } catch (err) {
      // Removed between the lstat and the readlink: free.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'free' }
      throw new errors.STORE_WRITE_FAILED(`could not look at the lock ${this.#lockPath}: ${String(err)}`, {
        cause: err,
      })
    }
  }

  /** Stale, or its holder is provably dead: a lock that may be taken over. */
  #removable(seen: Extract<Seen, { state: 'held' }>): 'stale' | 'dead' | undefined {
    if (seen.mtimeMs < Date.now() - this.#staleMs) return 'stale'
    const holder = seen.target === undefined ? undefined : holderOf(seen.target)
    if (!holder || holder.machine !== MACHINE || holder.pid === process.pid) return undefined
    return isDead(holder.pid) ? 'dead' : undefined
  }

  /**
   * Removes the lock `seen` when it may still be taken over; true when it did. Takers go one at a
   * time (`<lock>.takeover`, made with mkdir, atomic) and look again inside: a taker that comes
   * second finds the lock gone or a new one, and never removes a live holder's.
   */
  #takeOver(seen: Extract<Seen, { state: 'held' }>): boolean {
    const turn = `${this.#lockPath}.takeover`
    try {
      mkdirSync(turn)
    } catch {
      // Another taker is at it; one that died mid-takeover leaves its directory, cleared when old.
      try {
        if (Date.now() - statSync(turn).mtimeMs > TAKEOVER_STALE_MS) rmdirSync(turn)
      } catch {
        // Gone meanwhile.
      }
      return false
    }
    try {
      const now = this.#look()
      if (now.state !== 'held' || now.key !== seen.key) return false
      const why = this.#removable(now)
      if (!why) return false
      if (now.directory) rmdirSync(this.#lockPath)
      else unlinkSync(this.#lockPath)
      const holder = now.target === undefined ? undefined : holderOf(now.target)
      this.#log.warn(
        { path: this.#path, holder: holder?.pid, age_ms: Math.round(Date.now() - now.mtimeMs) },
        why === 'dead'
          ? 'took over the event log lock of a process that died holding it'
          : 'took over a stale event log lock',
      )
      return true
    } catch (err) {
      this.#log.warn({ err, path: this.#path }, 'could not take over the event log lock')
      return false
    } finally {
      try {
        rmdirSync(turn)
      } catch {
        // Already cleared by someone who took it for a dead taker's: nothing to do.
      }
    }
  }
}

/** One holding: refreshed while held, checked before the write, removed at release if still ours. */
class Holding implements Hold {
  compromised: Error | undefined
  readonly #path: string
  readonly #lockPath: string
  readonly #target: string
  readonly #log: Logger
  readonly #refresh: NodeJS.Timeout

  constructor(path: string, target: string, staleMs: number, log: Logger) {
    this.#path = path
    this.#lockPath = `${path}.lock`
    this.#target = target
    this.#log = log
    // Unref'd: a process is not kept alive by a lock it holds; dead, its lock is taken over.
    this.#refresh = setInterval(() => this.#touch(), staleMs / 2).unref()
  }

  verify(): Error | undefined {
    if (this.compromised) return this.compromised
    let target: string | undefined
    try {
      target = readlinkSync(this.#lockPath)
    } catch {
      target = undefined
    }
    if (target !== this.#target) this.#lose(new Error(`the lock is not ours any more (${target ?? 'gone'})`))
    return this.compromised
  }

  /** Lets go: removes the link if it is still ours; taken from us, it is not ours to remove. */
  release(): void {
    clearInterval(this.#refresh)
    if (this.verify()) return
    try {
      unlinkSync(this.#lockPath)
    } catch (err) {
      this.#log.warn({ err, path: this.#path }, 'could not release the event log lock')
    }
  }

  #touch(): void {
    if (this.verify()) return
    try {
      const now = new Date()
      lutimesSync(this.#lockPath, now, now)
    } catch (err) {
      this.#lose(err instanceof Error ? err : new Error(String(err)))
    }
  }

  #lose(err: Error): void {
    if (this.compromised) return
    this.compromised = err
    clearInterval(this.#refresh)
    this.#log.error({ err, path: this.#path }, 'event log lock compromised')
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
