// One group commit of the jsonl repository being prepared (architecture.md, jsonl): each queued
// operation decided under the lock, against the index and what the batch already holds, its events
// numbered and made lines. Nothing is written here, and the index is not touched until the write.
import { randomUUID } from 'node:crypto'
import { eventProblem } from './event-schema.js'
import type { LogIndex } from './log-index.js'
import { RequestIndex, type TrackedRequest } from './request-index.js'
import { errors } from '../errors.js'
import { requestState, type ChatEvent, type NewEvent } from './types.js'

/** An operation as a caller queued it. */
export type Operation =
  { kind: 'begin'; message: NewEvent; create: boolean } | { kind: 'append'; events: NewEvent[] }

/** What an operation of a batch came to, before the batch is written. */
export type Staged =
  | { kind: 'started'; event: ChatEvent; retry: boolean }
  | { kind: 'duplicate'; request: TrackedRequest; requestId: string }
  | { kind: 'not_found' }
  | { kind: 'appended'; events: ChatEvent[] }
  | { kind: 'refused'; error: unknown }

export class Batch {
  readonly #index: LogIndex
  readonly #isLive: (instance: string) => boolean
  readonly #lines: string[] = []
  readonly #events: ChatEvent[] = []
  readonly #lastSeq = new Map<string, number>()
  readonly #owners = new Map<string, string>()
  /** The requests of the batch's events, over the index's. */
  readonly #requests: RequestIndex

  constructor(index: LogIndex, isLive: (instance: string) => boolean) {
    this.#index = index
    this.#isLive = isLive
    this.#requests = new RequestIndex(index.requests)
  }

  /** The lines to write, one per event, in order. */
  get lines(): readonly string[] {
    return this.#lines
  }

  get events(): readonly ChatEvent[] {
    return this.#events
  }

  /** Decides one operation; a refused one stages nothing. */
  stage(op: Operation): Staged {
    try {
      if (op.kind === 'append') return { kind: 'appended', events: this.#stageEvents(op.events) }
      const { message, create } = op
      const request = this.#requests.get(message.principal, message.request_id)
      const state = requestState(request, this.#isLive)
      if (state === 'running' || state === 'finished') {
        return { kind: 'duplicate', request: request!, requestId: message.request_id }
      }
      if (state === 'retry') {
        const [event] = this.#stageEvents([{ ...message, conversation_id: request!.conversation }])
        return { kind: 'started', event: event!, retry: true }
      }
      const owner = this.#owner(message.conversation_id)
      if (create ? owner !== undefined : owner !== message.principal) return { kind: 'not_found' }
      const [event] = this.#stageEvents([message])
      return { kind: 'started', event: event!, retry: false }
    } catch (error) {
      return { kind: 'refused', error }
    }
  }

  #owner(conversationId: string): string | undefined {
    return this.#index.owner(conversationId) ?? this.#owners.get(conversationId)
  }

  /** Builds and checks all events of one operation first, so a refused one stages nothing. */
  #stageEvents(inputs: NewEvent[]): ChatEvent[] {
    const nextSeq = new Map<string, number>()
    const built = inputs.map((input) => {
      const conversation = input.conversation_id
      const last =
        nextSeq.get(conversation) ?? this.#lastSeq.get(conversation) ?? this.#index.lastSeq(conversation)
      nextSeq.set(conversation, last + 1)
      return buildEvent(input, last + 1)
    })
    for (const { event, line } of built) {
      if (this.#owner(event.conversation_id) === undefined) {
        this.#owners.set(event.conversation_id, event.principal)
      }
      this.#lines.push(line)
      this.#events.push(event)
      this.#lastSeq.set(event.conversation_id, event.seq)
      this.#requests.record(event)
    }
    return built.map((b) => b.event)
  }
}

/** The stored form of an event; the JSON round trip gives the caller exactly what reads return. */
function buildEvent(input: NewEvent, seq: number): { event: ChatEvent; line: string } {
  // Fields the store assigns are never taken from the caller, even if present at runtime.
  const {
    id: _id,
    seq: _seq,
    timestamp: _timestamp,
    conversation_id,
    ...rest
  } = input as Partial<ChatEvent> & NewEvent
  const draft = { id: randomUUID(), conversation_id, seq, timestamp: new Date().toISOString(), ...rest }
  const line = JSON.stringify(draft)
  const event: unknown = JSON.parse(line)
  const problem = eventProblem(event)
  if (problem) throw new errors.STORE_INVALID_EVENT(`the event does not fit the schema: ${problem}`)
  return { event: event as ChatEvent, line: `${line}\n` }
}
