// The command line of `mcp-platform`, parsed without touching `process` (server.ts does that).
import { parseArgs } from 'node:util'

export type Command = 'start' | 'check-config' | 'tools' | 'help'

export interface CliArgs {
  command: Command
  config?: string
  servers?: string
}

export const USAGE = `Usage: mcp-platform [start|check-config|tools] [--config PATH] [--servers PATH]

  start          serve ws://HOST:PORT/ws/chat (the default)
  check-config   validate config.yaml, servers_config.json and the environment;
                 print OK, or every problem and exit 78
  tools          connect to the MCP servers once and print each one's state (or why it
                 failed) and its tools as the LLM sees them; exit 0 when every server is
                 ready, 69 when one is not, 78 for a configuration error
  --config PATH  config.yaml (default ./config.yaml, or MCP_CONFIG_PATH)
  --servers PATH servers_config.json (default ./servers_config.json, or MCP_SERVERS_CONFIG_PATH)
`

/** Throws an Error with a message fit for the user when the arguments are wrong. */
export function parseCli(argv: string[]): CliArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      servers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return { command: 'help' }
  if (positionals.length > 1) throw new Error(`unexpected argument '${positionals[1]}'`)
  const command = positionals[0] ?? 'start'
  if (command !== 'start' && command !== 'check-config' && command !== 'tools') {
    throw new Error(`unknown command '${command}'`)
  }
  return { command, config: values.config, servers: values.servers }
}
