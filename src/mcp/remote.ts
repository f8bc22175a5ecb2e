// Remote MCP servers: the transports the SDK gives (Streamable HTTP, and the older HTTP+SSE one for
// servers that only speak that), and how their failures are read: which ones mean "try the older
// transport", which mean "the session is gone, start a new one".
// The SDK's modules for them (with the OAuth client, eventsource, pkce-challenge) are loaded before
// a remote server's first connection attempt (loadRemoteTransports), not at start: a platform of
// stdio servers never loads them. No error of theirs can exist before, so each check below is
// false for everything until then.
import { setMaxListeners } from 'node:events'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { RemoteServerConfig } from '../config/types.js'

type StreamableHttpModule = typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js')
type SseModule = typeof import('@modelcontextprotocol/sdk/client/sse.js')

interface RemoteModules {
  streamableHttp: StreamableHttpModule
  sse: SseModule
}

let loading: Promise<RemoteModules> | undefined
/** Set once loaded: what the checks below read. */
let loaded: RemoteModules | undefined

/** Both remote transports, loaded once (a server configured for one may fall back to the other). */
export function loadRemoteTransports(): Promise<RemoteModules> {
  loading ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/client/sse.js'),
  ]).then(([streamableHttp, sse]) => (loaded = { streamableHttp, sse }))
  return loading
}

export async function streamableHttpTransport(
  config: RemoteServerConfig,
): Promise<StreamableHTTPClientTransport> {
  const { streamableHttp } = await loadRemoteTransports()
  return new streamableHttp.StreamableHTTPClientTransport(new URL(config.url), {
    requestInit: { headers: config.headers },
    fetch: sharedSignalFetch,
  })
}

export async function sseTransport(config: RemoteServerConfig): Promise<SSEClientTransport> {
  const { sse } = await loadRemoteTransports()
  return new sse.SSEClientTransport(new URL(config.url), {
    requestInit: { headers: config.headers },
    fetch: sharedSignalFetch,
  })
}

/** The transport is a Streamable HTTP one (it has a session to end politely). */
export function isStreamableHttp(
  transport: Transport | undefined,
): transport is StreamableHTTPClientTransport {
  return loaded !== undefined && transport instanceof loaded.streamableHttp.StreamableHTTPClientTransport
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

/** An error of the Streamable HTTP transport, with its HTTP status as `code`. */
function streamableHttpError(err: unknown): { code?: number } | undefined {
  return loaded !== undefined && err instanceof loaded.streamableHttp.StreamableHTTPError ? err : undefined
}

/**
 * The Streamable HTTP attempt failed in a way that says "not this transport here": a 4xx to the
 * initialize POST (the MCP specification's backwards-compatibility rule). 401 and 403 are about
 * the credentials, not the transport: trying SSE would only hide the real problem.
 */
export function speaksOnlySse(err: unknown): boolean {
  const code = streamableHttpError(err)?.code
  return code !== undefined && code >= 400 && code < 500 && code !== 401 && code !== 403
}

/** The server no longer knows our session (it restarted, or dropped it): HTTP 404 to a request. */
export function isSessionExpired(err: unknown): boolean {
  return streamableHttpError(err)?.code === 404
}

/** The legacy transport's event stream broke: its session is gone with it. */
export function isSseStreamError(err: unknown): boolean {
  return loaded !== undefined && err instanceof loaded.sse.SseError
}

/** The HTTP status of a remote transport's failure, for the log; undefined for other failures. */
export function httpStatusOf(err: unknown): number | undefined {
  const failure = streamableHttpError(err) ?? (isSseStreamError(err) ? (err as { code?: number }) : undefined)
  if (failure === undefined) return undefined
  return typeof failure.code === 'number' && failure.code > 0 ? failure.code : undefined
}
