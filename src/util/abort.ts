// Deadlines and aborts, for every layer that waits on something outside the process: one place for
// the rules that are easy to get wrong (a listener left on a long-lived signal, a finished request
// cancelled late because its signal fired afterwards).

export interface Deadline {
  /** Fires when the outer signal does, or when the time is up. */
  signal: AbortSignal
  /** Whether it fired because the time was up (not because of the outer signal). */
  expired(): boolean
  /** Stops the clock and forgets the outer signal: the signal never fires after this. */
  dispose(): void
}

/** The longest delay setTimeout keeps (about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * A signal that fires when `outer` does or after `ms`, and no more once disposed: the MCP SDK keeps
 * listening to a request's signal after it is answered, and would cancel a finished request.
 * `reason` makes the signal's reason when the time is up (default: an Error saying so).
 */
export function deadline(ms: number, outer?: AbortSignal, reason?: () => unknown): Deadline {
  const controller = new AbortController()
  let expired = false
  const timer = setTimeout(
    () => {
      expired = true
      controller.abort(reason ? reason() : new Error(`timed out after ${ms} ms`))
    },
    Math.min(ms, MAX_TIMER_MS),
  )
  timer.unref()
  const forward = () => controller.abort(outer?.reason)
  if (outer?.aborted) forward()
  else outer?.addEventListener('abort', forward, { once: true })
  return {
    signal: controller.signal,
    expired: () => expired,
    dispose: () => {
      clearTimeout(timer)
      outer?.removeEventListener('abort', forward)
    },
  }
}

/** `promise`, or the signal's reason once it fires first (for what takes no signal of its own). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  // A signal's reason is whatever abort() was given: an Error in practice.
  const reason = (): Error => abortReason(signal) as Error
  if (signal.aborted) return Promise.reject(reason())
  return new Promise((resolve, reject) => {
    const abort = () => reject(reason())
    signal.addEventListener('abort', abort, { once: true })
    // The listener goes with the promise: a long-lived signal does not collect one per call.
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort))
  })
}

/** Why the signal fired: its reason, or the standard AbortError when it was given none. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError')
}

/** Waits for conditions that change only when wake() is called; a wait ends early on abort. */
export class Waiters {
  readonly #waiting = new Set<() => void>()

  /** Resolves once `done()` holds (checked now and at each wake()), or when the signal fires. */
  until(done: () => boolean, signal?: AbortSignal): Promise<void> {
    if (done() || signal?.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => {
        if (!done() && !signal?.aborted) return
        this.#waiting.delete(check)
        signal?.removeEventListener('abort', check)
        resolve()
      }
      this.#waiting.add(check)
      signal?.addEventListener('abort', check, { once: true })
    })
  }

  wake(): void {
    for (const check of [...this.#waiting]) check()
  }
}
