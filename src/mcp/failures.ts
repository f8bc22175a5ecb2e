// How MCP failures are worded: for the LLM (a tool's result it can act on), for clients (the
// platform's errors), and for /ready and the logs (why a server is down). A server's own text is
// repeated without secrets and cut short: a remote server may answer with a whole page.
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { errors, isPlatformError, type McpServerErrorCode, withData } from '../errors.js'
import { httpStatusOf } from './remote.js'
import { MESSAGE_TOO_LARGE, StdioTransport } from './stdio-transport.js'
import type { ServerState, ToolOutcome } from './types.js'

/** An error text from a server is cut to this length. */
export const MAX_ERROR_CHARS = 300

/** The error of a state line in the log: a stable code and the reason. */
export interface ServerError {
  type: McpServerErrorCode
  message: string
}

export function serverError(type: McpServerErrorCode, message: string): ServerError {
  return { type, message }
}

/** A server's text as we repeat it (in /ready, logs, tool results): no secret, and not too long. */
export function textCleaner(redact: (text: string) => string): (text: string) => string {
  return (text) => {
    const redacted = redact(text)
    return redacted.length > MAX_ERROR_CHARS ? `${redacted.slice(0, MAX_ERROR_CHARS)}…` : redacted
  }
}

export function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  // fetch only says "fetch failed": the cause says why (ECONNREFUSED, a DNS failure, …).
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined
  const why =
    typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : ''
  return why && !err.message.includes(why) ? `${err.message} (${why})` : err.message
}

/** Why a connection attempt failed: its first cause, not what followed it. */
export function connectFailure(err: unknown, transport: Transport | undefined): string {
  // The SDK only says "Connection closed" when the child died: its exit status and stderr say why.
  // Any other error came first, and the child's exit (once we closed it) only followed.
  if (transport instanceof StdioTransport && transport.exitDescription && lostChild(err))
    return withStderr(`the server process ${transport.exitDescription}`, transport)
  const status = httpStatusOf(err)
  return status === undefined ? errorMessage(err) : `HTTP ${status}: ${errorMessage(err)}`
}

/** Both remote transports failed: the Streamable HTTP answer is often the one that says what is wrong. */
export function bothTransportsFailed(httpErr: unknown, sseErr: unknown): Error {
  return new Error(
    `Streamable HTTP answered HTTP ${httpStatusOf(httpErr)}, and HTTP+SSE failed: ${errorMessage(sseErr)}`,
    { cause: sseErr },
  )
}

/** Why a ready connection closed: the child's exit and last stderr lines, when it was a child. */
export function closedReason(transport: Transport | undefined): string {
  return transport instanceof StdioTransport && transport.exitDescription
    ? withStderr(`the server process ${transport.exitDescription}`, transport)
    : 'the connection to the server closed'
}

/** The error is the child's going away (it died, its pipe broke), not a cause of its own. */
function lostChild(err: unknown): boolean {
  if (isConnectionClosed(err)) return true
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown }
  if (typeof code === 'string' && LOST_PIPE_CODES.has(code)) return true
  // What StdioTransport.send answers once its child is gone.
  return message === 'the server process is not running'
}
const LOST_PIPE_CODES = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END'])

function withStderr(reason: string, transport: StdioTransport): string {
  const tail = transport.stderrTail.slice(-3).join(' | ')
  return tail ? `${reason}: ${tail}` : reason
}

export function toolError(content: string): ToolOutcome {
  return { content, is_error: true }
}

export function unavailable(server: string, state: ServerState, error: string | undefined): string {
  const why = error ? `: ${error}` : ''
  return `The server "${server}" is not available right now (${state}${why}). Try again later.`
}

export function wentAway(server: string, error: string | undefined): string {
  return `The server "${server}" went away during the call${error ? ` (${error})` : ''}.`
}

/** The answer stood in for by the stdio transport: the server's own was over the size limit. */
export function tooLargeAnswer(err: unknown): string | undefined {
  if (!(err instanceof McpError) || err.code !== MESSAGE_TOO_LARGE) return undefined
  const data = err.data as { message_bytes?: unknown; max_message_bytes?: unknown } | undefined
  if (typeof data?.message_bytes !== 'number' || typeof data.max_message_bytes !== 'number') return undefined
  return (
    `The tool's answer was too large: ${data.message_bytes} bytes, over the limit of ` +
    `${data.max_message_bytes} bytes (mcp.max_message_bytes).`
  )
}

export function isConnectionClosed(err: unknown): boolean {
  return err instanceof McpError && err.code === Number(ErrorCode.ConnectionClosed)
}

/** A failed request of a client's action as the platform's error; MCP errors travel in `data`. */
export function requestError(server: string, err: unknown, clean: (text: string) => string): Error {
  if (isPlatformError(err)) return err
  if (err instanceof McpError) {
    if (err.code === Number(ErrorCode.ConnectionClosed)) {
      return new errors.MCP_SERVER_UNAVAILABLE(server, 'it went away during the request')
    }
    const message = clean(err.message.replace(/^MCP error -?\d+: /, ''))
    const mcp_error = { code: err.code, message, ...(err.data === undefined ? {} : { data: err.data }) }
    const refused = err.code === Number(ErrorCode.InvalidParams)
    return withData(
      refused
        ? new errors.MCP_REQUEST_REFUSED(server, message)
        : new errors.MCP_REQUEST_FAILED(server, message),
      { mcp_error },
    )
  }
  // The request never got an answer: the server is unreachable or answered HTTP with an error.
  return new errors.MCP_SERVER_UNAVAILABLE(server, clean(errorMessage(err)))
}
