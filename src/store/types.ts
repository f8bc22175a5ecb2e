// The chat store's record and interface (architecture.md, Events). One interface, several
// repositories: `memory` now; `jsonl` (one file shared by several processes) and `postgres` come
// behind the same methods, so every method is one atomic step a repository can do under one lock
// or in one transaction.
import type { ToolCall, Usage } from '../llm/types.js'

export type EventType =
  'user_message' | 'assistant_message' | 'tool_call' | 'tool_result' | 'system_update' | 'meta'
export type EventRole = 'system' | 'user' | 'assistant' | 'tool'
export type EventStatus = 'complete' | 'interrupted' | 'error'

export interface ChatEvent {
  id: string
  conversation_id: string
  /** 1, 2, … per conversation: no gaps, no duplicates. */
  seq: number
  /** UTC, ISO 8601 with milliseconds. */
  timestamp: string
  type: EventType
  role: EventRole
  content: string
  tool_calls?: ToolCall[]
  tool_call_id?: string
  request_id: string
  principal: string
  model?: string
  usage?: Usage
  token_count?: number
  status: EventStatus
}

/** What a caller gives; the store assigns id, seq and timestamp. */
export type NewEvent = Omit<ChatEvent, 'id' | 'seq' | 'timestamp'>

export interface ConversationSummary {
  id: string
  created: string
  updated: string
  /** The first user text, cut. */
  title: string
}

export type BeginTurnResult =
  | { outcome: 'started'; event: ChatEvent }
  /** This principal already used this request_id: the turn's events so far, in order. */
  | { outcome: 'duplicate'; events: ChatEvent[] }
  /** The conversation does not exist, or belongs to someone else (the two look the same). */
  | { outcome: 'not_found' }

export interface StoreStatus {
  ready: boolean
  type: string
  detail?: string
}

export interface ChatStore {
  /**
   * Atomically: unless this principal already has a turn with this request_id, append the user
   * message that starts it. `create` says whether the conversation is new (created by this event)
   * or must already exist and belong to the principal.
   */
  beginTurn(message: NewEvent, create: boolean): Promise<BeginTurnResult>
  /** Append events of one conversation in order; they get consecutive seqs. */
  append(events: NewEvent[]): Promise<ChatEvent[]>
  /** Events of a conversation in seq order; undefined when not found for this principal. */
  history(
    principal: string,
    conversationId: string,
    options?: { limit?: number; beforeSeq?: number },
  ): Promise<ChatEvent[] | undefined>
  listConversations(
    principal: string,
    options: { limit: number; before?: string },
  ): Promise<ConversationSummary[]>
  status(): StoreStatus
  close(): Promise<void>
}

export const TITLE_CHARS = 80

export function titleOf(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > TITLE_CHARS ? `${flat.slice(0, TITLE_CHARS - 1)}…` : flat
}
