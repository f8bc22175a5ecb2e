// The `memory` repository: everything in this process, gone at exit. For tests and trials.
import { randomUUID } from 'node:crypto'
import {
  titleOf,
  type BeginTurnResult,
  type ChatEvent,
  type ChatStore,
  type ConversationSummary,
  type NewEvent,
  type StoreStatus,
} from './types.js'

interface Conversation {
  principal: string
  events: ChatEvent[]
  summary: ConversationSummary
}

export class MemoryStore implements ChatStore {
  readonly #conversations = new Map<string, Conversation>()
  /** `principal \0 request_id` → conversation id. */
  readonly #requests = new Map<string, string>()

  beginTurn(message: NewEvent, create: boolean): Promise<BeginTurnResult> {
    const key = requestKey(message.principal, message.request_id)
    const existing = this.#requests.get(key)
    if (existing !== undefined) {
      const events = this.#conversations.get(existing)?.events ?? []
      return Promise.resolve({
        outcome: 'duplicate',
        events: events.filter((e) => e.request_id === message.request_id),
      })
    }
    const conversation = this.#conversations.get(message.conversation_id)
    if (create ? conversation !== undefined : conversation?.principal !== message.principal) {
      return Promise.resolve({ outcome: 'not_found' })
    }
    const [event] = this.#append([message])
    this.#requests.set(key, message.conversation_id)
    return Promise.resolve({ outcome: 'started', event: event! })
  }

  append(events: NewEvent[]): Promise<ChatEvent[]> {
    return Promise.resolve(this.#append(events))
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
    if (options.limit !== undefined) events = events.slice(-options.limit)
    return Promise.resolve(events.map((e) => ({ ...e })))
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
      .sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0))
    return Promise.resolve(mine.slice(0, options.limit))
  }

  status(): StoreStatus {
    return { ready: true, type: 'memory' }
  }

  close(): Promise<void> {
    return Promise.resolve()
  }

  #append(events: NewEvent[]): ChatEvent[] {
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
      const stored: ChatEvent = { ...event, id: randomUUID(), seq: conversation.events.length + 1, timestamp }
      conversation.events.push(stored)
      conversation.summary.updated = timestamp
      if (!conversation.summary.title && event.type === 'user_message')
        conversation.summary.title = titleOf(event.content)
      return { ...stored }
    })
  }
}

function requestKey(principal: string, requestId: string): string {
  return `${principal}\u0000${requestId}`
}
