// At most `limit` LLM requests in flight in this process; the rest wait their turn, served round
// robin between principals, so one principal with many turns cannot starve the others.

/** LLM requests in flight per process unless chat-route is told otherwise (`maxLlmRequests`). */
export const DEFAULT_MAX_LLM_REQUESTS = 64

interface Waiter {
  admit: () => void
  signal: AbortSignal
  onAbort: () => void
}

export class FairGate {
  readonly #limit: number
  #running = 0
  /** Waiting turns by principal; the map's order is the rotation: served first, moved last. */
  readonly #queues = new Map<string, Waiter[]>()

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new TypeError('FairGate: limit must be a positive integer')
    this.#limit = limit
  }

  /** Requests holding a slot, and requests waiting for one. */
  get load(): { running: number; waiting: number } {
    let waiting = 0
    for (const queue of this.#queues.values()) waiting += queue.length
    return { running: this.#running, waiting }
  }

  /**
   * Resolves with the function that gives the slot back, once this principal's turn comes; rejects
   * with the signal's reason if it fires first.
   */
  acquire(principal: string, signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted()
    if (this.#running < this.#limit && this.#queues.size === 0) return Promise.resolve(this.#take())
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => resolve(this.#take()),
        signal,
        onAbort: () => {
          this.#remove(principal, waiter)
          reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
        },
      }
      signal.addEventListener('abort', waiter.onAbort, { once: true })
      const queue = this.#queues.get(principal)
      if (queue) queue.push(waiter)
      else this.#queues.set(principal, [waiter])
    })
  }

  #take(): () => void {
    this.#running++
    let given = false
    return () => {
      if (given) return
      given = true
      this.#running--
      this.#next()
    }
  }

  /** Admits waiters while there is room, one principal after the other. */
  #next(): void {
    while (this.#running < this.#limit) {
      const first = this.#queues.entries().next()
      if (first.done) return
      const [principal, queue] = first.value
      const waiter = queue.shift()!
      this.#queues.delete(principal)
      if (queue.length > 0) this.#queues.set(principal, queue)
      waiter.signal.removeEventListener('abort', waiter.onAbort)
      waiter.admit()
    }
  }

  #remove(principal: string, waiter: Waiter): void {
    const queue = this.#queues.get(principal)
    if (!queue) return
    const at = queue.indexOf(waiter)
    if (at >= 0) queue.splice(at, 1)
    if (queue.length === 0) this.#queues.delete(principal)
  }
}
