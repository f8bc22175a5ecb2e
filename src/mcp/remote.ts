// Remote MCP servers: the transports the SDK gives (Streamable HTTP, and the older HTTP+SSE one for
// servers that only speak that), and how their failures are read: which ones mean "try the older
// transport", which mean "the session is gone, start a new one".
import { setMaxListeners } from 'node:events'
import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js'
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { RemoteServerConfig } from '../config/types.js'

export function streamableHttpTransport(config: RemoteServerConfig): StreamableHTTPClientTransport {
  return new StreamableHTTPClientTransport(new URL(config.url), {
    requestInit: { headers: config.headers },
    fetch: sharedSignalFetch,
  })
}

export function sseTransport(config: RemoteServerConfig): SSEClientTransport {
  return new SSEClientTransport(new URL(config.url), {
    requestInit: { headers: config.headers },
    fetch: sharedSignalFetch,
  })
}

/**
 * fetch, for a transport that gives every request its one long-lived signal: each fetch listens on
 * it until the request is garbage-collected, so a busy session passes Node's default of 10
 * listeners and prints MaxListenersExceededWarning to stderr (not a leak, and not JSON).
 */
function sharedSignalFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  if (init?.signal) setMaxListeners(0, init.signal)
  return fetch(url, init)
}

/**
 * The Streamable HTTP attempt failed in a way that says "not this transport here": a 4xx to the
 * initialize POST (the MCP specification's backwards-compatibility rule). 401 and 403 are about
 * the credentials, not the transport: trying SSE would only hide the real problem.
 */
export function speaksOnlySse(err: unknown): boolean {
  return (
    err instanceof StreamableHTTPError &&
    err.code !== undefined &&
    err.code >= 400 &&
    err.code < 500 &&
    err.code !== 401 &&
    err.code !== 403
  )
}

/** The server no longer knows our session (it restarted, or dropped it): HTTP 404 to a request. */
export function isSessionExpired(err: unknown): boolean {
  return err instanceof StreamableHTTPError && err.code === 404
}

/** The legacy transport's event stream broke: its session is gone with it. */
export function isSseStreamError(err: unknown): boolean {
  return err instanceof SseError
}

/** The HTTP status of a remote transport's failure, for the log; undefined for other failures. */
export function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof StreamableHTTPError || err instanceof SseError) {
    return typeof err.code === 'number' && err.code > 0 ? err.code : undefined
  }
  return undefined
}
