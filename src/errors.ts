// Every error the platform reports, in one place. The code (also sent as `error.type` in error
// frames and logged as `error.type`) is stable: documented in README, never reused. The status is
// the protocol's HTTP-style number (protocol.md, Errors).
import createError from '@fastify/error'

export const InvalidFrameError = createError<[string]>('INVALID_FRAME', 'Invalid frame: %s', 400)
export const ValidationFailedError = createError('VALIDATION_FAILED', 'Parameter validation failed', 400)
export const ConversationNotFoundError = createError<[string]>(
  'CONVERSATION_NOT_FOUND',
  "Conversation '%s' not found",
  404,
)
export const RequestNotFoundError = createError<[string]>(
  'REQUEST_NOT_FOUND',
  "No running request '%s' on this connection",
  404,
)
export const RequestInProgressError = createError<[string]>(
  'REQUEST_IN_PROGRESS',
  "A request with request_id '%s' is still running",
  409,
)
export const ConversationBusyError = createError<[string]>(
  'CONVERSATION_BUSY',
  "Conversation '%s' already has a turn running; wait for it to finish",
  409,
)
export const InputTooLargeError = createError<[number, number]>(
  'INPUT_TOO_LARGE',
  'The text has %d characters; the limit is %d',
  413,
)
export const ContextTooLargeError = createError<[number, number, number]>(
  'CONTEXT_TOO_LARGE',
  'The message takes %d tokens; with the system prompt and tool schemas (%d more) that exceeds the context budget of %d tokens',
  413,
)
export const AttachmentsTooLargeError = createError<[number, number]>(
  'ATTACHMENTS_TOO_LARGE',
  'The attached prompt and resources have %d characters; a context budget of %d tokens cannot hold them',
  413,
)
export const AttachmentsNotFetchedError = createError<[string]>(
  'ATTACHMENTS_NOT_FETCHED',
  "The request '%s' was still running when it was sent again, so its prompt and resources were not fetched; that attempt has ended unfinished since: send it again",
  503,
)
export const InternalError = createError('INTERNAL', 'Internal error', 500)
export const LlmUpstreamError = createError<[string]>(
  'LLM_UPSTREAM_ERROR',
  'The LLM provider answered with an error: %s',
  502,
)
export const LlmStreamBrokenError = createError<[string]>(
  'LLM_STREAM_BROKEN',
  'The LLM provider broke off the answer: %s',
  502,
)
export const LlmBadResponseError = createError<[string]>(
  'LLM_BAD_RESPONSE',
  'The LLM provider sent a reply that could not be read: %s',
  502,
)
export const LlmTimeoutError = createError<[number]>(
  'LLM_TIMEOUT',
  'The LLM provider sent nothing for %d seconds',
  504,
)
export const McpServerNotFoundError = createError<[string]>(
  'MCP_SERVER_NOT_FOUND',
  "No MCP server named '%s' is configured",
  404,
)
export const PromptNotFoundError = createError<[string, string]>(
  'PROMPT_NOT_FOUND',
  "The MCP server '%s' has no prompt '%s'",
  404,
)
export const ResourceNotFoundError = createError<[string]>(
  'RESOURCE_NOT_FOUND',
  "No connected MCP server has the resource '%s'",
  404,
)
export const ResourceAmbiguousError = createError<[string, string]>(
  'RESOURCE_AMBIGUOUS',
  "The resource '%s' is offered by several MCP servers (%s); name one with `server`",
  400,
)
export const McpRequestRefusedError = createError<[string, string]>(
  'MCP_REQUEST_REFUSED',
  "The MCP server '%s' refused the request: %s",
  400,
)
export const McpRequestFailedError = createError<[string, string]>(
  'MCP_REQUEST_FAILED',
  "The MCP server '%s' answered with an error: %s",
  502,
)
export const McpServerUnavailableError = createError<[string, string]>(
  'MCP_SERVER_UNAVAILABLE',
  "The MCP server '%s' is not connected (%s); try again later",
  503,
)
export const McpTimeoutError = createError<[string, number]>(
  'MCP_TIMEOUT',
  "The MCP server '%s' did not answer within %d seconds",
  504,
)
export const ShuttingDownError = createError(
  'SHUTTING_DOWN',
  'The server is shutting down; reconnect shortly',
  503,
)

/** Failures of the conversation store, by code: the store is unavailable (503) or was handed an invalid event (500, a bug). */
export const STORE_ERRORS = {
  STORE_CLOSED: { status: 503, meaning: 'the store is closed (the server is shutting down)' },
  STORE_LOCK_TIMEOUT: { status: 503, meaning: 'the event log stayed locked by another process for too long' },
  STORE_LOCK_COMPROMISED: {
    status: 503,
    meaning: 'the event log lock was lost mid-write; nothing was written',
  },
  STORE_WRITE_FAILED: { status: 503, meaning: 'the event log could not be written or synced' },
  STORE_INVALID_EVENT: { status: 500, meaning: 'an event did not fit the event schema (a bug)' },
} as const
export type StoreErrorCode = keyof typeof STORE_ERRORS

export class StoreError extends Error implements PlatformError {
  readonly statusCode: number
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'StoreError'
    this.statusCode = STORE_ERRORS[code].status
  }
}

/** `error.type` of the MCP registry's log lines about a server's connection (not sent to clients). */
export const MCP_SERVER_ERRORS = {
  MCP_CONNECT_FAILED: 'an attempt to connect (spawn or reach, initialize, list tools) failed',
  MCP_SERVER_LOST: 'a connected server went away: its process ended, or a remote one stopped answering',
  MCP_SESSION_EXPIRED: 'a remote server no longer knows our session (HTTP 404); a new one is started',
  MCP_LIST_REFRESH_FAILED: "a server's tools, prompts or resources could not be listed",
} as const
export type McpServerErrorCode = keyof typeof MCP_SERVER_ERRORS

/** Every error a client can receive, in the order the docs list them. */
export const CLIENT_ERRORS = [
  InvalidFrameError,
  ValidationFailedError,
  ConversationNotFoundError,
  RequestNotFoundError,
  RequestInProgressError,
  ConversationBusyError,
  InputTooLargeError,
  InternalError,
  LlmUpstreamError,
  LlmStreamBrokenError,
  LlmBadResponseError,
  ShuttingDownError,
  LlmTimeoutError,
  ContextTooLargeError,
  AttachmentsTooLargeError,
  AttachmentsNotFetchedError,
  McpServerNotFoundError,
  PromptNotFoundError,
  ResourceNotFoundError,
  ResourceAmbiguousError,
  McpRequestRefusedError,
  McpRequestFailedError,
  McpServerUnavailableError,
  McpTimeoutError,
] as const

/** Shape shared by every error above: `code` is the stable name, `statusCode` the protocol number. */
export interface PlatformError extends Error {
  code: string
  statusCode: number
  /** Details for the client (`error.data`): validation errors, upstream status, … */
  data?: Record<string, unknown>
}

export function isPlatformError(err: unknown): err is PlatformError {
  return (
    err instanceof Error &&
    typeof (err as PlatformError).code === 'string' &&
    typeof (err as PlatformError).statusCode === 'number'
  )
}

/** Attach client-facing details to an error and return it (for `throw withData(new X(), {...})`). */
export function withData<E extends Error>(
  err: E,
  data: Record<string, unknown>,
): E & { data: Record<string, unknown> } {
  return Object.assign(err, { data })
}

/** A configuration problem: the field's full path and what is wrong with it. */
export interface ConfigProblem {
  path: string
  message: string
}

/** Raised when configuration is invalid; the CLI prints each problem on one line and exits 78. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'))
    this.name = 'ConfigError'
  }
}

export function formatProblem(p: ConfigProblem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message
}

/** EX_CONFIG from sysexits.h: the exit code for a configuration error. */
export const EXIT_CONFIG = 78
