// pino JSON logs that never contain a secret: known secret values are cut out of the string
// values of every line just before it is written, whatever field or message they hide in, and
// credential-bearing fields are censored by path. Redaction works on values, never on JSON syntax:
// keys, numbers, booleans and punctuation are left alone, so every line stays valid JSON.
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino'
import { isPlatformError } from './errors.js'

export const REDACTED = '[redacted]'

/** A JSON string token, quotes included (escapes skipped without backtracking). */
const JSON_STRING = /"[^"\\]*(?:\\.[^"\\]*)*"/g

/** Secret values to cut out of text; filled once the configuration is loaded. */
export class Redactor {
  #secrets: string[] = []
  #escaped: string[] = []

  add(values: Iterable<string>): void {
    for (const value of values) {
      if (value.length < 4 || this.#secrets.includes(value)) continue
      this.#secrets.push(value)
      // A secret inside a JSON text (a line, or a body quoted in a string) has its special
      // characters escaped.
      const escaped = JSON.stringify(value).slice(1, -1)
      if (escaped !== value) this.#escaped.push(escaped)
    }
  }

  /** One string with every secret in it cut out. */
  redact(text: string): string {
    let out = text
    for (const secret of this.#secrets) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED)
    for (const secret of this.#escaped) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED)
    return out
  }

  /**
   * A compact JSON text (a pino line) with secrets cut out of its string values: each string is
   * decoded, redacted and encoded again, so no escape is split and no key or number is touched.
   */
  redactJson(json: string): string {
    // Most lines hold no secret at all: they are written as they are.
    if (!this.#mayHold(json)) return json
    return json.replace(JSON_STRING, (token: string, offset: number) => {
      // A key (compact JSON: followed by its colon) is kept; so is a string without a secret.
      if (json[offset + token.length] === ':' || !this.#mayHold(token)) return token
      const value = JSON.parse(token) as string
      const redacted = this.redact(value)
      return redacted === value ? token : JSON.stringify(redacted)
    })
  }

  /** True when the text may contain a secret, raw or escaped. */
  #mayHold(text: string): boolean {
    return this.#secrets.some((s) => text.includes(s)) || this.#escaped.some((s) => text.includes(s))
  }
}

/**
 * A copy of a JSON-ready value with `redact` applied to each string in it; keys, numbers, booleans
 * and null are kept. Serialize the result: redacting serialized text could break its syntax.
 */
export function redactStrings<T>(value: T, redact: (text: string) => string): T {
  const ancestors = new Set<object>()
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redact(v)
    if (typeof v !== 'object' || v === null) return v
    // What JSON.stringify would write for it (a Date's string, …).
    const json = (v as { toJSON?: unknown }).toJSON
    if (typeof json === 'function') return walk((json as () => unknown).call(v))
    if (ancestors.has(v)) return '[circular]'
    ancestors.add(v)
    try {
      if (Array.isArray(v)) return v.map(walk)
      const copy: Record<string, unknown> = {}
      for (const [key, item] of Object.entries(v)) copy[key] = walk(item)
      return copy
    } finally {
      ancestors.delete(v)
    }
  }
  return walk(value) as T
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
      hooks: { streamWrite: (line) => redactor.redactJson(line) },
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
