// The lock on the event log (architecture.md, jsonl): a proper-lockfile lock directory next to the
// file, refreshed while held, taken over once a dead holder left it stale. A batch holds it for one
// catch-up, one write and one fsync.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import lockfile from 'proper-lockfile'
import type { Logger } from '../logging.js'
import { errors } from '../errors.js'

/** The longest pause between two tries of a busy lock (before jitter). */
const MAX_POLL_MS = 10

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
  readonly #staleMs: number
  readonly #timeoutMs: number
  readonly #log: Logger

  constructor(options: EventLogLockOptions) {
    this.#path = options.path
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

  async #acquire(hold: Hold, signal: AbortSignal | undefined): Promise<() => Promise<void>> {
    const deadline = performance.now() + this.#timeoutMs
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
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
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
      // Short, jittered polls: the lock is held for one write and one fsync at a time.
      const pause = Math.min(MAX_POLL_MS, 1.5 ** attempt) * (1 + Math.random())
      await sleep(pause, undefined, { signal }).catch((err: unknown) => {
        signal?.throwIfAborted()
        throw err
      })
    }
  }
}
