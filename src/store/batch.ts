// One group commit of the jsonl repository being prepared (architecture.md, jsonl): each queued
// operation decided under the lock, against the index and what the batch already holds, its events
// numbered and made lines. Nothing is written here, and the index is not touched until the write.
// What does not depend on the log (serializing an event, checking it against the schema) is done
// before the lock, by `prepare`: under it, an event only gets its id, seq and time.
import { randomUUID } from 'node:crypto'
import { eventProblem } from './event-schema.js'
import type { LogIndex } from './log-index.js'
import { RequestIndex, type TrackedRequest } from './request-index.js'
import { errors } from '../errors.js'
import { requestState, type ChatEvent, type NewEvent } from './types.js'

/** An event as a caller gave it, serialized and checked, waiting for its id, seq and time. */
export interface Prepared {
  conversation_id: string
  /** Its other fields as they will be read back (the JSON round trip drops what JSON cannot hold). */
  fields: Omit<NewEvent, 'conversation_id'>
  /** Those fields as JSON, braces included. */
  json: string
}

/** What a line's head looks like to the schema check, before the real one is known. */
const PLACEHOLDER = { id: 'id', seq: 1, timestamp: '1970-01-01T00:00:00.000Z' }

/** Serializes and checks an event; STORE_INVALID_EVENT when it does not fit the schema. */
export function prepare(input: NewEvent): Prepared {
  // Fields the store assigns are never taken from the caller, even if present at runtime.
  const {
    id: _id,
    seq: _seq,
    timestamp: _timestamp,
    conversation_id,
    ...rest
  } = input as Partial<ChatEvent> & NewEvent
  const json = JSON.stringify(rest)
  const fields = JSON.parse(json) as Prepared['fields']
  const problem = eventProblem({ ...PLACEHOLDER, conversation_id, ...fields })
  if (problem) throw new errors.STORE_INVALID_EVENT(`the event does not fit the schema: ${problem}`)
  return { conversation_id, fields, json }
}

/** An operation as a caller queued it, its events prepared. */
export type Operation =
  { kind: 'begin'; message: Prepared; create: boolean } | { kind: 'append'; events: Prepared[] }

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
      const { principal, request_id } = message.fields
      const request = this.#requests.get(principal, request_id)
      const state = requestState(request, this.#isLive)
      if (state === 'running' || state === 'finished') {
        return { kind: 'duplicate', request: request!, requestId: request_id }
      }
      if (state === 'retry') {
        const [event] = this.#stageEvents([{ ...message, conversation_id: request!.conversation }])
        return { kind: 'started', event: event!, retry: true }
      }
      const owner = this.#owner(message.conversation_id)
      if (create ? owner !== undefined : owner !== principal) return { kind: 'not_found' }
      const [event] = this.#stageEvents([message])
      return { kind: 'started', event: event!, retry: false }
    } catch (error) {
      return { kind: 'refused', error }
    }
  }

  #owner(conversationId: string): string | undefined {
    return this.#index.owner(conversationId) ?? this.#owners.get(conversationId)
  }

  /** Numbers the events of one operation and makes them lines. */
  #stageEvents(inputs: Prepared[]): ChatEvent[] {
    return inputs.map((input) => {
      const seq = (this.#lastSeq.get(input.conversation_id) ?? this.#index.lastSeq(input.conversation_id)) + 1
      const { event, line } = finish(input, seq)
      if (this.#owner(event.conversation_id) === undefined) {
        this.#owners.set(event.conversation_id, event.principal)
      }
      this.#lines.push(line)
      this.#events.push(event)
      this.#lastSeq.set(event.conversation_id, seq)
      this.#requests.record(event)
      return event
    })
  }
}

/**
 * The stored form of a prepared event: the line `JSON.stringify` would make of it with its id,
 * conversation, seq and time first, and the event a read of that line gives back.
 */
function finish(prepared: Prepared, seq: number): { event: ChatEvent; line: string } {
  const { conversation_id, fields, json } = prepared
  const id = randomUUID()
  const timestamp = new Date().toISOString()
  const head = `{"id":"${id}","conversation_id":${JSON.stringify(conversation_id)},"seq":${seq},"timestamp":"${timestamp}"`
  const line = json === '{}' ? `${head}}\n` : `${head},${json.slice(1)}\n`
  return { event: { id, conversation_id, seq, timestamp, ...fields }, line }
}
