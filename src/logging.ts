// pino JSON logs that never contain a secret: known secret values are cut out of every line
// just before it is written, whatever field or message they hide in, and credential-bearing
// fields are censored by path.
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino'
import { isPlatformError } from './errors.js'

export const REDACTED = '[redacted]'

/** Secret values to cut out of text; filled once the configuration is loaded. */
export class Redactor {
  #secrets: string[] = []
  #escaped: string[] = []

  add(values: Iterable<string>): void {
    for (const value of values) {
      if (value.length < 4 || this.#secrets.includes(value)) continue
      this.#secrets.push(value)
      // A secret inside a JSON string may appear with its special characters escaped.
      const escaped = JSON.stringify(value).slice(1, -1)
      if (escaped !== value) this.#escaped.push(escaped)
    }
  }

  redact(text: string): string {
    let out = text
    for (const secret of this.#secrets) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED)
    for (const secret of this.#escaped) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED)
    return out
  }
}

export interface LoggerOptions {
  level: string
  redactor: Redactor
  /** Where lines go; stdout when absent. */
  stream?: DestinationStream
}

export function createLogger(options: LoggerOptions): PinoLogger {
  const { redactor } = options
  return pino(
    {
      level: options.level,
      base: { service: 'mcp-platform' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["sec-websocket-protocol"]',
          'req.headers.cookie',
          'headers.authorization',
          '*.api_key',
          '*.apiKey',
        ],
        censor: REDACTED,
      },
      hooks: { streamWrite: (line) => redactor.redact(line) },
    },
    options.stream,
  )
}

/** What every part of the platform logs through: pino's shape, narrowed to what is used. */
export interface Logger {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** The `error` field of a log line: the stable type, and the message (never a stack for 4xx). */
export function describeError(err: unknown): Record<string, unknown> {
  if (isPlatformError(err)) {
    return { type: err.code, status: err.statusCode, message: err.message, data: err.data }
  }
  const e = err instanceof Error ? err : new Error(String(err))
  return { type: 'INTERNAL', status: 500, message: e.message, stack: e.stack }
}
