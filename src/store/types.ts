// The chat store's record and interface (architecture.md, Events). One interface, several
// repositories: `memory` (one process), `jsonl` (one file shared by several processes), `postgres`
// later; every method is one atomic step a repository can do under one lock or in one
// transaction, so the contract (test/store-contract.test.ts) holds across processes.
import type { ReasoningPart, ToolCall, Usage } from '../llm/types.js'

export type EventType =
  'user_message' | 'assistant_message' | 'tool_call' | 'tool_result' | 'system_update' | 'meta'
export type EventRole = 'system' | 'user' | 'assistant' | 'tool'
export type EventStatus = 'complete' | 'interrupted' | 'error'
/** Why a turn's final assistant_message ended, kept so a replay says the same. */
export type EventFinishReason = 'stop' | 'length' | 'content_filter' | 'tool_limit_reached'

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
  /** On the final assistant_message of a turn: why it ended. */
  finish_reason?: EventFinishReason
  /** On an assistant_message or tool_call: the reasoning text the model showed for that reply. */
  reasoning?: string
  /**
   * On a tool_call: the reply's reasoning as the provider needs it back to go on from those calls
   * (Anthropic's signed thinking blocks, a `reasoning_content`).
   */
  reasoning_parts?: ReasoningPart[]
  /** On a user_message: the platform process running the turn (see src/chat/instance.ts). */
  instance?: string
  /** On a user_message: the MCP prompt and resources sent with the text, as they were then. */
  attachments?: Attachments
}

export interface Attachments {
  prompt?: {
    server: string
    name: string
    arguments: Record<string, string>
    /** The prompt's messages, each content as text (binary parts described, not inlined). */
    messages: { role: 'user' | 'assistant'; content: string }[]
  }
  /** One entry per content a resource read returned. */
  resources?: ResourceAttachment[]
}

export interface ResourceAttachment {
  server: string
  uri: string
  mime_type?: string
  /** Text contents. */
  text?: string
  /** Binary contents: their size; the bytes themselves are not kept. */
  bytes?: number
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
  /**
   * The user message is appended. `retry`: this request_id ran before and its latest attempt
   * ended unfinished or died with its process; the event then lands in that attempt's
   * conversation, whatever conversation the caller named (`event.conversation_id` tells).
   */
  | { outcome: 'started'; event: ChatEvent; retry: boolean }
  /**
   * This principal's request_id is finished (the last event is a complete assistant_message) or
   * still running in a live instance: the events of its latest attempt, from its user_message on.
   */
  | { outcome: 'duplicate'; events: ChatEvent[] }
  /**
   * create=false: the conversation does not exist or belongs to someone else (the two look the
   * same); create=true: the id is already taken.
   */
  | { outcome: 'not_found' }

/** Where a request stands, as peekRequest reads it (see ChatStore.peekRequest). */
export type RequestPeek =
  /** This principal never sent this request_id. */
  | { state: 'new' }
  /** Its latest attempt ended unfinished, or its instance is gone: beginTurn would start it again. */
  | { state: 'retry' }
  /** Its latest attempt is open in a live instance: beginTurn would answer it as a duplicate. */
  | { state: 'running' }
  /**
   * Its latest attempt ended with a complete answer: that attempt's events, from its user_message
   * on, to replay.
   */
  | { state: 'finished'; events: ChatEvent[] }

export interface StoreStatus {
  ready: boolean
  type: string
  detail?: string
  /** Repository details for /ready (the jsonl path and event count, …). */
  [detail: string]: unknown
}

/** What every repository takes besides its own settings. */
export interface StoreOptions {
  /** Whether the platform instance that began a turn still runs (src/chat/instance.ts). */
  isLive: (instance: string) => boolean
}

export interface ChatStore {
  /**
   * The one atomic "start this turn unless it already ran" step, across every process sharing the
   * store. Started (the message appended) when this principal has no event with this
   * request_id, or its latest attempt ended unfinished (the request's last event is an
   * interrupted or error assistant_message), or that attempt's user_message names an instance
   * that `isLive` says is gone. A duplicate otherwise (finished, or running in a live instance).
   * `create` says whether the conversation is new (created by this event) or must already
   * exist and belong to the principal; a retry ignores it (see BeginTurnResult).
   */
  beginTurn(message: NewEvent, create: boolean): Promise<BeginTurnResult>
  /**
   * Where this principal's request_id stands, as far as this process knows now: a cheap read under
   * no lock, with beginTurn's rule (`requestState`), and for a finished request the events to
   * replay. It may be stale by the time beginTurn runs (a running attempt may end unfinished, or
   * its process die), so beginTurn stays the one atomic check; callers use this to answer a
   * finished request and to skip work a duplicate does not need (fetching attachments).
   */
  peekRequest(principal: string, requestId: string): Promise<RequestPeek>
  /** Append events in order; each gets the next seq of its conversation. */
  append(events: NewEvent[]): Promise<ChatEvent[]>
  /**
   * Events of a conversation ascending by seq: of those with seq < beforeSeq, the last `limit`.
   * Undefined when it does not exist or belongs to someone else.
   */
  history(
    principal: string,
    conversationId: string,
    options?: { limit?: number; beforeSeq?: number },
  ): Promise<ChatEvent[] | undefined>
  /** The principal's conversations, newest `updated` first; `before`: strictly older than it. */
  listConversations(
    principal: string,
    options: { limit: number; before?: string },
  ): Promise<ConversationSummary[]>
  status(): StoreStatus
  /** Flushes pending appends, then releases everything (files, locks, connections). */
  close(): Promise<void>
}

/** What the rule needs to know of a request's latest attempt. */
export interface Attempt {
  /** The `instance` of the attempt's user_message. */
  instance: string | undefined
  /** The request's last event. */
  last: Pick<ChatEvent, 'type' | 'status'>
}

/**
 * Where a request stands, given its latest attempt (undefined: the principal never sent this
 * request_id). The one rule of beginTurn and peekRequest in every repository: beginTurn starts a
 * `new` or `retry` request and answers `running` or `finished` as a duplicate.
 */
export function requestState(
  attempt: Attempt | undefined,
  isLive: (instance: string) => boolean,
): RequestPeek['state'] {
  if (attempt === undefined) return 'new'
  const { last, instance } = attempt
  if (last.type === 'assistant_message') return last.status === 'complete' ? 'finished' : 'retry'
  // Still open: it runs unless its process is known to be gone. Without an instance nothing says
  // so, and running a turn twice is worse than a 409.
  return instance !== undefined && !isLive(instance) ? 'retry' : 'running'
}

/** Newest `updated` first; equal times by id, so every repository pages the same way. */
export function newestFirst(a: ConversationSummary, b: ConversationSummary): number {
  if (a.updated !== b.updated) return a.updated < b.updated ? 1 : -1
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

export const TITLE_CHARS = 80

export function titleOf(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > TITLE_CHARS ? `${flat.slice(0, TITLE_CHARS - 1)}…` : flat
}
