#!/usr/bin/env node
// The one file that listens and touches `process`: arguments, environment, signals, exit codes.
import closeWithGrace from 'close-with-grace'
import { buildApp, checkConfig } from './app.js'
import { parseCli, USAGE, type CliArgs } from './cli.js'
import { ConfigError, EXIT_CONFIG, formatProblem } from './errors.js'

/** EX_USAGE from sysexits.h. */
const EXIT_USAGE = 64
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
