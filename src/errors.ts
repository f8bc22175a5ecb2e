// Every code the platform emits, in one table: the key is the code (sent as `error.type` in error
// frames and logged as `error.type`), each entry made with @fastify/error (code, message template,
// status) and documented in one line. Codes are stable and never reused; docs/protocol.md lists
// them, rendered from this table (test/errors.test.ts pins the count and checks each is documented).
import createError, { type FastifyErrorConstructor } from '@fastify/error'

/**
 * Where an error shows: in an `error` frame to the client, as the HTTP refusal of a WebSocket
 * upgrade, only in log lines, or as the process's exit.
 */
export type Seen = 'frame' | 'upgrade' | 'log' | 'exit'

/** A table entry: `new errors.X(...args)` makes the error; `seen` and `doc` document it. */
export type PlatformErrorConstructor<A extends unknown[] = unknown[]> = FastifyErrorConstructor<
  ErrorFields,
  A
> & { readonly seen: Seen; readonly doc: string }

/** What every error of the table carries besides a message (see PlatformError). */
interface ErrorFields {
  code: string
  statusCode: number
  data?: Record<string, unknown>
}

/** One entry: `status` is the protocol's HTTP-style number (protocol.md, Errors). */
function define<A extends unknown[] = []>(
  code: string,
  message: string,
  status: number,
  seen: Seen,
  doc: string,
): PlatformErrorConstructor<A> {
  const constructor = createError<A>(code, message, status) as FastifyErrorConstructor<ErrorFields, A>
  return Object.assign(constructor, { seen, doc })
}

/** A store error's detail, and what caused it (@fastify/error takes a last `{ cause }` argument). */
type StoreErrorArgs = [detail: string, options?: { cause: unknown }]

export const errors = {
  // ---- the client's frame ----
  INVALID_FRAME: define<[string]>(
    'INVALID_FRAME',
    'Invalid frame: %s',
    400,
    'frame',
    'The frame is binary, not JSON, or not a JSON object; its `request_id` cannot be read, so the error carries `"request_id": null`.',
  ),
  VALIDATION_FAILED: define(
    'VALIDATION_FAILED',
    'Parameter validation failed',
    400,
    'frame',
    "The frame or its payload does not fit the action's schema (or a prompt lacks a required argument); `data.validation_errors` lists every offending field.",
  ),
  REQUEST_NOT_FOUND: define<[string]>(
    'REQUEST_NOT_FOUND',
    "No running request '%s' of yours",
    404,
    'frame',
    '`cancel` names a `target_request_id` that no request of this principal is running under (in this process).',
  ),
  REQUEST_IN_PROGRESS: define<[string]>(
    'REQUEST_IN_PROGRESS',
    "A request with request_id '%s' is still running",
    409,
    'frame',
    'A request with this `request_id` is still running, on this or another connection or process.',
  ),
  TOO_MANY_REQUESTS: define<[number]>(
    'TOO_MANY_REQUESTS',
    'This connection already runs %d requests; send this one again once one has ended',
    429,
    'frame',
    'The connection already runs `websocket.max_concurrent_requests` requests; `data.retry_after_ms` says when to try again.',
  ),
  // ---- conversations and chat turns ----
  CONVERSATION_NOT_FOUND: define<[string]>(
    'CONVERSATION_NOT_FOUND',
    "Conversation '%s' not found",
    404,
    'frame',
    'The conversation does not exist, or belongs to another principal (the two are not told apart).',
  ),
  CONVERSATION_BUSY: define<[string]>(
    'CONVERSATION_BUSY',
    "Conversation '%s' already has a turn running; wait for it to finish",
    409,
    'frame',
    'The conversation already has a turn running: one turn at a time per conversation.',
  ),
  INPUT_TOO_LARGE: define<[number, number]>(
    'INPUT_TOO_LARGE',
    'The text has %d characters; the limit is %d',
    413,
    'frame',
    'The chat `text` is longer than `chat.service.max_input_chars`.',
  ),
  CONTEXT_TOO_LARGE: define<[number, number, number]>(
    'CONTEXT_TOO_LARGE',
    'The message takes %d tokens; with the system prompt and tool schemas (%d more) that exceeds the context budget of %d tokens',
    413,
    'frame',
    'The message with the system prompt and tool schemas cannot fit the context budget whatever the history; `data` has the token counts.',
  ),
  ATTACHMENTS_TOO_LARGE: define<[number, number]>(
    'ATTACHMENTS_TOO_LARGE',
    'The attached prompt and resources have %d characters; a context budget of %d tokens cannot hold them',
    413,
    'frame',
    "The chat's attached prompt and resources are too large for the context budget.",
  ),
  TURN_TIMEOUT: define<[number]>(
    'TURN_TIMEOUT',
    'The turn was still running after %d seconds',
    504,
    'frame',
    'The turn was still running `chat.service.turn_timeout` seconds after it started, whatever it waited on (LLM, tools, a slow client); what it had said is stored as interrupted.',
  ),
  // ---- the LLM provider ----
  LLM_UPSTREAM_ERROR: define<[string]>(
    'LLM_UPSTREAM_ERROR',
    'The LLM provider answered with an error: %s',
    502,
    'frame',
    'The LLM provider answered with an error status, or could not be reached; `data` has `upstream_status`, `upstream_message`.',
  ),
  LLM_STREAM_BROKEN: define<[string]>(
    'LLM_STREAM_BROKEN',
    'The LLM provider broke off the answer: %s',
    502,
    'frame',
    'The LLM provider broke off mid-answer (connection lost, or an error event in the stream).',
  ),
  LLM_BAD_RESPONSE: define<[string]>(
    'LLM_BAD_RESPONSE',
    'The LLM provider sent a reply that could not be read: %s',
    502,
    'frame',
    'The LLM provider sent a reply the platform could not read (a web page answered 2xx, e.g. by a captive portal or a wrong `base_url`, included).',
  ),
  LLM_TIMEOUT: define<[number]>(
    'LLM_TIMEOUT',
    'The LLM provider sent nothing for %d seconds',
    504,
    'frame',
    'The LLM provider sent nothing for `llm.request.timeout` seconds.',
  ),
  LLM_RESPONSE_TOO_LARGE: define<[number]>(
    'LLM_RESPONSE_TOO_LARGE',
    'The LLM provider sent an answer larger than %d bytes',
    502,
    'frame',
    'One answer of the LLM provider grew past `llm.request.max_response_bytes`; it is cut off there, and the text already sent is stored as interrupted.',
  ),
  // ---- MCP servers, asked on the client's behalf ----
  MCP_SERVER_NOT_FOUND: define<[string]>(
    'MCP_SERVER_NOT_FOUND',
    "No MCP server named '%s' is configured",
    404,
    'frame',
    'The request names an MCP server that is not configured.',
  ),
  PROMPT_NOT_FOUND: define<[string, string]>(
    'PROMPT_NOT_FOUND',
    "The MCP server '%s' has no prompt '%s'",
    404,
    'frame',
    'The MCP server has no prompt of that name.',
  ),
  RESOURCE_NOT_FOUND: define<[string]>(
    'RESOURCE_NOT_FOUND',
    "No connected MCP server has the resource '%s'",
    404,
    'frame',
    'No connected MCP server lists the resource or has a template matching it.',
  ),
  RESOURCE_AMBIGUOUS: define<[string, string]>(
    'RESOURCE_AMBIGUOUS',
    "The resource '%s' is offered by several MCP servers (%s); name one with `server`",
    400,
    'frame',
    'Several MCP servers offer the resource and the request names none.',
  ),
  MCP_REQUEST_REFUSED: define<[string, string]>(
    'MCP_REQUEST_REFUSED',
    "The MCP server '%s' refused the request: %s",
    400,
    'frame',
    'The MCP server refused the request as invalid (JSON-RPC invalid params); `data` has its error.',
  ),
  MCP_REQUEST_FAILED: define<[string, string]>(
    'MCP_REQUEST_FAILED',
    "The MCP server '%s' answered with an error: %s",
    502,
    'frame',
    'The MCP server answered with an error; `data` has its JSON-RPC error.',
  ),
  MCP_SERVER_UNAVAILABLE: define<[string, string]>(
    'MCP_SERVER_UNAVAILABLE',
    "The MCP server '%s' is not connected (%s); try again later",
    503,
    'frame',
    'The MCP server the request needs is not connected, or went away during the request.',
  ),
  MCP_TIMEOUT: define<[string, number]>(
    'MCP_TIMEOUT',
    "The MCP server '%s' did not answer within %d seconds",
    504,
    'frame',
    'The MCP server did not answer in time.',
  ),
  // ---- the conversation store (reach the client as the error of the request that hit them) ----
  STORE_CLOSED: define<StoreErrorArgs>(
    'STORE_CLOSED',
    'The conversation store failed: %s',
    503,
    'frame',
    'The store is closed: the server is shutting down.',
  ),
  STORE_LOCK_TIMEOUT: define<StoreErrorArgs>(
    'STORE_LOCK_TIMEOUT',
    'The conversation store failed: %s',
    503,
    'frame',
    'The event log stayed locked by another process for too long.',
  ),
  STORE_LOCK_COMPROMISED: define<StoreErrorArgs>(
    'STORE_LOCK_COMPROMISED',
    'The conversation store failed: %s',
    503,
    'frame',
    'The event log lock was lost mid-write; nothing was written.',
  ),
  STORE_WRITE_FAILED: define<StoreErrorArgs>(
    'STORE_WRITE_FAILED',
    'The conversation store failed: %s',
    503,
    'frame',
    'The event log could not be written or synced.',
  ),
  STORE_INVALID_EVENT: define<StoreErrorArgs>(
    'STORE_INVALID_EVENT',
    'The conversation store failed: %s',
    500,
    'frame',
    'An event did not fit the event schema: a bug.',
  ),
  // ---- the process ----
  SHUTTING_DOWN: define(
    'SHUTTING_DOWN',
    'The server is shutting down; reconnect shortly',
    503,
    'frame',
    'The server is shutting down: running requests end with it, new ones are refused (an upgrade then gets a plain HTTP 503).',
  ),
  INTERNAL: define(
    'INTERNAL',
    'Internal error',
    500,
    'frame',
    'A bug: logged with its stack under this code, answered without one.',
  ),
  // ---- the upgrade (a plain HTTP refusal; logged as `upgrade refused`) ----
  UNAUTHENTICATED: define<['Missing' | 'Invalid']>(
    'UNAUTHENTICATED',
    '%s API key (Authorization: Bearer KEY, or subprotocol bearer.KEY)',
    401,
    'upgrade',
    'With `auth` configured, the upgrade carries no API key, or one that matches no configured key.',
  ),
  ORIGIN_NOT_ALLOWED: define<[string]>(
    'ORIGIN_NOT_ALLOWED',
    "Origin '%s' is not allowed",
    403,
    'upgrade',
    "The browser's `Origin` is not in `websocket.allowed_origins`.",
  ),
  // ---- an MCP server's connection (the registry's log lines; /ready shows the state) ----
  MCP_CONNECT_FAILED: define<[string, string]>(
    'MCP_CONNECT_FAILED',
    "Could not connect to the MCP server '%s': %s",
    503,
    'log',
    'An attempt to connect (spawn or reach, initialize, list tools) failed; retried up to `mcp.connection.max_reconnect_attempts` times, with backoff.',
  ),
  MCP_SERVER_LOST: define<[string, string]>(
    'MCP_SERVER_LOST',
    "The MCP server '%s' went away: %s",
    503,
    'log',
    'A connected server went away: its process ended, or a remote one stopped answering; reconnected as after a failed attempt.',
  ),
  MCP_SESSION_EXPIRED: define<[string]>(
    'MCP_SESSION_EXPIRED',
    "The MCP server '%s' no longer knows our session",
    503,
    'log',
    'A remote server no longer knows our session (HTTP 404); a new one is started.',
  ),
  MCP_LIST_REFRESH_FAILED: define<[string, string]>(
    'MCP_LIST_REFRESH_FAILED',
    "The MCP server '%s' could not list its tools, prompts or resources: %s",
    502,
    'log',
    "A server's prompts or resources (or, on `list_changed`, tools) could not be listed: at connect they count as none; on a refresh the previous list stays.",
  ),
  CLIENT_NOT_READING: define<[number]>(
    'CLIENT_NOT_READING',
    'A client left %d bytes of replies unread',
    400,
    'log',
    'A client left more than `websocket.max_buffered_bytes` of replies unread: its socket is closed (1008) and its requests end as a closed socket ends them; a chat whose client reads nothing for `llm.request.timeout` seconds is stopped.',
  ),
  WEBSOCKET_ERROR: define<[string]>(
    'WEBSOCKET_ERROR',
    'WebSocket error: %s',
    400,
    'log',
    "A client's socket failed (a frame over `websocket.max_message_bytes`, a broken frame or connection); ws has already closed it with the matching code (1009, 1002, …), and its requests end as a closed socket ends them.",
  ),
  SHUTDOWN: define<[string]>(
    'SHUTDOWN',
    'Shutdown: %s',
    500,
    'log',
    'The graceful shutdown was cut short: a second signal or error, or it took longer than its 5 s budget; the process exits 1.',
  ),
  FATAL: define<[string]>(
    'FATAL',
    'Fatal error: %s',
    500,
    'log',
    'An uncaught exception or unhandled rejection: logged with its stack, then the server shuts down.',
  ),
  // ---- configuration ----
  CONFIG_INVALID: define<[string]>(
    'CONFIG_INVALID',
    '%s',
    500,
    'exit',
    'The configuration (config.yaml, servers_config.json, environment) is invalid: one line per problem on stderr, then exit 78 (EX_CONFIG).',
  ),
}

export type ErrorCode = keyof typeof errors

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

/** Raised when configuration is invalid (CONFIG_INVALID); the CLI prints each problem on one line and exits 78. */
export class ConfigError extends errors.CONFIG_INVALID {
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

/** `error.type` of the MCP registry's log lines about a server's connection (not sent to clients). */
export type McpServerErrorCode =
  'MCP_CONNECT_FAILED' | 'MCP_SERVER_LOST' | 'MCP_SESSION_EXPIRED' | 'MCP_LIST_REFRESH_FAILED'
