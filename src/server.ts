#!/usr/bin/env node
// The one file that listens and touches `process`: arguments, environment, signals, exit codes.
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import { buildApp, buildMcpApp, checkConfig, type AppOptions } from './app.js'
import { parseCli, USAGE, type CliArgs } from './cli.js'
import { ConfigError, EXIT_CONFIG, formatProblem } from './errors.js'
import { toolsReport } from './mcp/report.js'
import { START_BUDGET_FACTOR } from './mcp/server-connection.js'

/** EX_USAGE from sysexits.h. */
const EXIT_USAGE = 64
/** EX_UNAVAILABLE from sysexits.h: `tools` found a server that is not ready. */
const EXIT_UNAVAILABLE = 69
/** `tools` waits this long past the longest first attempt (a stdio server's start budget). */
const TOOLS_MARGIN_S = 5
/** close-with-grace's budget: past it the process exits anyway. */
const SHUTDOWN_DELAY_MS = 5000

async function main(): Promise<void> {
  let args: CliArgs
  try {
    args = parseCli(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`mcp-platform: ${(err as Error).message}\n\n${USAGE}`)
    process.exit(EXIT_USAGE)
  }
  const options = { env: process.env, cwd: process.cwd(), configPath: args.config, serversPath: args.servers }
  if (args.command === 'help') {
    process.stdout.write(USAGE)
    return
  }
  if (args.command === 'check-config') {
    const config = await configOrExit(() => checkConfig(options))
    for (const w of config.warnings) process.stdout.write(`warning: ${formatProblem(w)}\n`)
    process.stdout.write('OK\n')
    return
  }
  if (args.command === 'tools') {
    process.exitCode = await tools(options)
    return
  }

  const app = await configOrExit(() => buildApp(options))
  closeWithGrace(
    {
      delay: SHUTDOWN_DELAY_MS,
      logger: {
        error: (msg: unknown) =>
          app.log.error({ error: { type: 'SHUTDOWN' }, detail: String(msg) }, 'shutdown'),
      },
    },
    async ({ signal, err }) => {
      if (err)
        app.log.error({ error: { type: 'FATAL', message: err.message, stack: err.stack } }, 'fatal error')
      else app.log.info({ signal }, 'shutting down')
      await app.close()
    },
  )
  const { host, port } = app.platformConfig.websocket
  await app.listen({ host, port })
}

/**
 * Connects to every configured server, waits for each one's first attempt to end, prints what
 * each offers the LLM, closes them all; the exit code says whether every one was ready.
 */
async function tools(options: AppOptions): Promise<number> {
  const app = await configOrExit(() => buildMcpApp({ ...options, logStream: process.stderr }))
  // The servers run in process groups of their own, out of reach of a terminal's Ctrl-C: ended here.
  const interrupted = () => void app.close().finally(() => process.exit(1))
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted)
  const config = app.platformConfig
  for (const w of config.warnings) process.stdout.write(`warning: ${formatProblem(w)}\n`)
  // Each first attempt is bounded already; this only keeps a fault of ours from hanging the command.
  const bound =
    Date.now() + (config.mcp.connection.connection_timeout * START_BUDGET_FACTOR + TOOLS_MARGIN_S) * 1000
  while (!app.mcp.settled() && Date.now() < bound) await sleep(50)
  const servers = app.mcp.status()
  process.stdout.write(toolsReport(servers, app.mcp.list()))
  await app.close()
  return servers.every((s) => s.state === 'ready') ? 0 : EXIT_UNAVAILABLE
}

async function configOrExit<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    // One line per problem, no stack: a configuration error is the user's to fix, not a bug.
    process.stderr.write(`mcp-platform: invalid configuration\n${err.message}\n`)
    process.exit(EXIT_CONFIG)
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`mcp-platform: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
