// The `memory` repository: everything in this process, gone at exit. For tests and trials.
// Each event is copied once, on the way in (the caller keeps its own object), and frozen: what it
// hands out is the stored event itself, which nobody can change.
import { errors } from '../errors.js'
import { randomUUID } from 'node:crypto'
import { eventProblem } from './event-schema.js'
import { RequestIndex, type TrackedRequest } from './request-index.js'
import {
  newestFirst,
  requestState,
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

interface Conversation {
  principal: string
  events: ChatEvent[]
  summary: ConversationSummary
}

export class MemoryStore implements ChatStore {
  readonly #isLive: (instance: string) => boolean
  readonly #conversations = new Map<string, Conversation>()
  readonly #requests = new RequestIndex()

  constructor(options: Partial<StoreOptions> = {}) {
    this.#isLive = options.isLive ?? (() => true)
  }

  beginTurn(message: NewEvent, create: boolean): Promise<BeginTurnResult> {
    return settle(() => this.#beginTurn(message, create))
  }

  peekRequest(principal: string, requestId: string): Promise<RequestPeek> {
    const request = this.#requests.get(principal, requestId)
    const state = requestState(request, this.#isLive)
    return Promise.resolve(
      state === 'finished' ? { state, events: this.#attemptEvents(request!, requestId) } : { state },
    )
  }

  #beginTurn(message: NewEvent, create: boolean): BeginTurnResult {
    const request = this.#requests.get(message.principal, message.request_id)
    const state = requestState(request, this.#isLive)
    if (state === 'running' || state === 'finished') {
      return { outcome: 'duplicate', events: this.#attemptEvents(request!, message.request_id) }
    }
    if (state === 'retry') {
      const [event] = this.#append([{ ...message, conversation_id: request!.conversation }])
      return { outcome: 'started', event: event!, retry: true }
    }
    const conversation = this.#conversations.get(message.conversation_id)
    if (create ? conversation !== undefined : conversation?.principal !== message.principal) {
      return { outcome: 'not_found' }
    }
    const [event] = this.#append([message])
    return { outcome: 'started', event: event!, retry: false }
  }

  append(events: NewEvent[]): Promise<ChatEvent[]> {
    return settle(() => this.#append(events))
  }

  history(
    principal: string,
    conversationId: string,
    options: { limit?: number; beforeSeq?: number } = {},
  ): Promise<ChatEvent[] | undefined> {
    const conversation = this.#conversations.get(conversationId)
    if (conversation?.principal !== principal) return Promise.resolve(undefined)
    let events = conversation.events
    if (options.beforeSeq !== undefined) events = events.slice(0, Math.max(0, options.beforeSeq - 1))
    if (options.limit !== undefined) events = events.slice(Math.max(0, events.length - options.limit))
    return Promise.resolve(events === conversation.events ? events.slice() : events)
  }

  listConversations(
    principal: string,
    options: { limit: number; before?: string },
  ): Promise<ConversationSummary[]> {
    const mine = [...this.#conversations.values()]
      .filter(
        (c) =>
          c.principal === principal && (options.before === undefined || c.summary.updated < options.before),
      )
      .map((c) => ({ ...c.summary }))
      .sort(newestFirst)
    return Promise.resolve(mine.slice(0, Math.max(0, options.limit)))
  }

  status(): StoreStatus {
    return { ready: true, type: 'memory' }
  }

  close(): Promise<void> {
    return Promise.resolve()
  }

  /** The events of a request's latest attempt, from its user_message on. */
  #attemptEvents(request: TrackedRequest, requestId: string): ChatEvent[] {
    const { events } = this.#conversations.get(request.conversation)!
    // Entry i of a conversation is its event of seq i + 1.
    return events.slice(request.attemptSeq - 1).filter((e) => e.request_id === requestId)
  }

  #append(events: NewEvent[]): ChatEvent[] {
    // All or nothing, as in the other repositories: check every event before storing any.
    for (const event of events) {
      const problem = eventProblem({ ...event, id: 'x', seq: 1, timestamp: new Date().toISOString() })
      if (problem) throw new errors.STORE_INVALID_EVENT(`the event does not fit the schema: ${problem}`)
    }
    return events.map((event) => {
      const timestamp = new Date().toISOString()
      let conversation = this.#conversations.get(event.conversation_id)
      if (!conversation) {
        conversation = {
          principal: event.principal,
          events: [],
          summary: { id: event.conversation_id, created: timestamp, updated: timestamp, title: '' },
        }
        this.#conversations.set(event.conversation_id, conversation)
      }
      // Fields the store assigns are never taken from the caller, even if present at runtime.
      const stored = frozenCopy({
        ...event,
        id: randomUUID(),
        seq: conversation.events.length + 1,
        timestamp,
      }) as ChatEvent
      conversation.events.push(stored)
      conversation.summary.updated = timestamp
      if (!conversation.summary.title && event.type === 'user_message')
        conversation.summary.title = titleOf(event.content)
      this.#requests.record(stored)
      return stored
    })
  }
}

/**
 * A deep copy, frozen, without undefined fields, so this store returns what a durable one would
 * (a JSON round trip drops them too). Strings are shared: they cannot change. The schema check
 * before it has made sure there is nothing but plain objects, arrays, strings, numbers, booleans.
 */
function frozenCopy(value: unknown): unknown {
  if (Array.isArray(value)) return Object.freeze(value.map(frozenCopy))
  if (value === null || typeof value !== 'object') return value
  const copy: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) if (field !== undefined) copy[key] = frozenCopy(field)
  return Object.freeze(copy)
}

/** A synchronous step as a promise: a refusal rejects rather than throws. */
function settle<T>(step: () => T): Promise<T> {
  try {
    return Promise.resolve(step())
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)))
  }
}
