// The lock on the event log (architecture.md, jsonl): a proper-lockfile lock directory next to the
// file, refreshed while held, taken over once a dead holder left it stale. A batch holds it for one
// catch-up, one write and one fsync.
import lockfile from 'proper-lockfile'
import { StoreError, type StoreLogger } from './types.js'

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
  log: StoreLogger
}

export class EventLogLock {
  readonly #path: string
  readonly #staleMs: number
  readonly #timeoutMs: number
  readonly #log: StoreLogger

  constructor(options: EventLogLockOptions) {
    this.#path = options.path
    this.#staleMs = options.staleMs
    this.#timeoutMs = options.timeoutMs
    this.#log = options.log
  }

  /** Runs `fn` holding the lock, and lets go after, whatever `fn` did. */
  async run<T>(fn: (hold: Hold) => Promise<T>): Promise<T> {
    const hold: Hold = { compromised: undefined }
    const release = await this.#acquire(hold)
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

  async #acquire(hold: Hold): Promise<() => Promise<void>> {
    try {
      return await lockfile.lock(this.#path, {
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
          maxRetryTime: this.#timeoutMs,
        },
        onCompromised: (err) => {
          hold.compromised = err
          this.#log.error({ err, path: this.#path }, 'event log lock compromised')
        },
      })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw code === 'ELOCKED'
        ? new StoreError('STORE_LOCK_TIMEOUT', `could not lock ${this.#path} within ${this.#timeoutMs} ms`, {
            cause: err,
          })
        : new StoreError('STORE_WRITE_FAILED', `could not lock ${this.#path}: ${String(err)}`, { cause: err })
    }
  }
}
