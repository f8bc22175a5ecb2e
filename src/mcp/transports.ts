// The transports the registry opens by default: a child process over stdio, or a remote server
// over Streamable HTTP or the legacy HTTP+SSE transport (their modules loaded with the first remote
// server: remote.ts). A registry may be given its own opener (tests link it to an in-memory server).
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ServerConfig } from '../config/types.js'
import type { Logger } from '../logging.js'
import { sseTransport, streamableHttpTransport } from './remote.js'
import { childEnv, StdioTransport } from './stdio-transport.js'

/**
 * Opens a transport (not started) to a server for one connection attempt. A server configured
 * for Streamable HTTP without an explicit type may be asked again with `transport: 'sse'`.
 */
export type TransportOpener = (server: string, config: ServerConfig) => Transport | Promise<Transport>

export interface RealTransportOptions {
  /** The parent environment the children's environments are made from. */
  env: Record<string, string | undefined>
  /** Secret values: a variable holding one of them is not passed to a child. */
  secrets: readonly string[]
  /** The largest message read from a stdio server (`mcp.max_message_bytes`). */
  maxMessageBytes: number
  log: Logger
}

export function realTransports({
  env,
  secrets,
  maxMessageBytes,
  log,
}: RealTransportOptions): TransportOpener {
  return (server, config) => {
    if (config.transport !== 'stdio') {
      return config.transport === 'http' ? streamableHttpTransport(config) : sseTransport(config)
    }
    return new StdioTransport({
      command: config.command,
      args: config.args,
      env: childEnv(env, secrets, config.env),
      onStderr: (line) => log.debug({ server, stderr: line }, 'mcp server stderr'),
      maxMessageBytes,
      onOversized: ({ bytes, limit, id }) =>
        log.warn({ server, bytes, limit, id }, 'mcp message over mcp.max_message_bytes dropped'),
      ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
    })
  }
}
