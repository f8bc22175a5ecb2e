// pino JSON logs that never contain a secret: known secret values are cut out of every line
// just before it is written, whatever field or message they hide in, and credential-bearing
// fields are censored by path.
import { pino, type DestinationStream, type Logger } from 'pino'

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

export function createLogger(options: LoggerOptions): Logger {
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
