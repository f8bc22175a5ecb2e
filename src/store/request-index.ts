// What the memory and jsonl repositories know of each request without reading its events: where
// it runs and how its latest attempt stands, so beginTurn and peekRequest decide from memory
// (`requestState` in types.ts). A database repository asks its table instead.
import type { Attempt, ChatEvent } from './types.js'

export interface TrackedRequest extends Attempt {
  /** The conversation of the request's first event: a retry lands there. */
  conversation: string
  /** The seq of the latest attempt's user_message (the request's first event if it has none). */
  attemptSeq: number
}

export class RequestIndex {
  /** `principal \0 request_id` → its state. */
  readonly #requests = new Map<string, TrackedRequest>()
  readonly #under: RequestIndex | undefined

  /**
   * `under`: an index this one adds to without changing it, as a batch does until it is written
   * (what it records is seen here only).
   */
  constructor(under?: RequestIndex) {
    this.#under = under
  }

  get(principal: string, requestId: string): TrackedRequest | undefined {
    return this.#requests.get(requestKey(principal, requestId)) ?? this.#under?.get(principal, requestId)
  }

  /** One more event of its request; a request's events come in seq order. */
  record(event: ChatEvent): void {
    const known = this.get(event.principal, event.request_id)
    this.#requests.set(requestKey(event.principal, event.request_id), advance(known, event))
  }

  clear(): void {
    this.#requests.clear()
  }
}

/** A request's state after one more of its events (a new object: `known` may be the index under). */
function advance(known: TrackedRequest | undefined, event: ChatEvent): TrackedRequest {
  const last = { type: event.type, status: event.status }
  if (!known || event.type === 'user_message') {
    return {
      conversation: known?.conversation ?? event.conversation_id,
      attemptSeq: event.seq,
      instance: event.instance,
      last,
    }
  }
  return { ...known, last }
}

function requestKey(principal: string, requestId: string): string {
  return `${principal}\u0000${requestId}`
}
