// The words for a request in flight, shared by the service that owns them and the socket that
// frames their outcome. A request is anything that runs a while under a request_id: a chat turn,
// a prompt or resource read on an MCP server, a read of the store.
import type { ActionResult, ChatMetadata, RESULTS } from './server-frames.js'

/** Who stopped a request: the client, its socket closing, the shutdown, or a client that stopped reading. */
export type StopReason = 'cancel' | 'disconnect' | 'shutdown' | 'unread'

/** The reason given to a request's AbortController, and thrown out of its work once it fires. */
export class RequestStopped extends Error {
  constructor(readonly reason: StopReason) {
    super(`request stopped: ${reason}`)
    this.name = 'AbortError'
  }
}

/** What a request's `complete` frame carries: a chat's metadata, or an action's result. */
export type Completion = { metadata: ChatMetadata } | { result: ActionResult<keyof typeof RESULTS> }

/** How a request ended: the one terminal frame its client gets. */
export type RequestEnd =
  | ({ status: 'complete' } & Completion)
  | { status: 'cancelled'; conversationId?: string }
  | { status: 'error'; error: unknown }
