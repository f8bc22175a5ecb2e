// Problem wording, shared by both files and the environment: the field's dotted path, what is
// wrong, what would be right, what was got (`llm.providers.groq.temperature: must be between 0
// and 2, got 3`). Problems are collected, not thrown one by one, so one start shows them all.
import { ValueErrorType, type TypeCheck } from '@sinclair/typebox/compiler'
import type { ConfigProblem } from '../errors.js'
import { isObject } from '../util/values.js'
import type { TSchema } from './schema.js'

/** The problems one load finds, in the order found. */
export class Problems {
  readonly #list: ConfigProblem[] = []
  readonly #warnings: ConfigProblem[] = []

  add(path: string, message: string): void {
    this.#list.push({ path, message })
  }

  /** Something the platform works around but the user should know (check-config and the log say it). */
  warn(path: string, message: string): void {
    this.#warnings.push({ path, message })
  }

  warnings(): ConfigProblem[] {
    return [...this.#warnings]
  }

  get count(): number {
    return this.#list.length
  }

  all(): ConfigProblem[] {
    return [...this.#list]
  }

  /** True when no problem was found at `path`, inside it, or at a parent of it. */
  clean(path: string): boolean {
    return !this.#list.some((p) => p.path === path || isInside(p.path, path) || isInside(path, p.path))
  }
}

/** True when `inner` is a path below `outer` (`a.b.c` or `a.b["c.d"]` below `a.b`). */
function isInside(inner: string, outer: string): boolean {
  return inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`)
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/

/**
 * A field's path from its keys: `mcpServers.demo.url`. A key that is not plain is quoted, so a
 * server named `github.com/x/y` reads `mcpServers["github.com/x/y"].url`, not as more levels.
 */
export function pathOf(...keys: (string | number)[]): string {
  return keys
    .map((key, i) => {
      const text = String(key)
      if (!PLAIN_KEY.test(text)) return `[${JSON.stringify(text)}]`
      return i === 0 ? text : `.${text}`
    })
    .join('')
}

// Values under these paths are secrets: a problem says what type was got, never the value.
const SECRET_PATHS = [
  /^llm\.providers\.[^.]+\.api_key$/,
  /^store\.url$/,
  /^auth\.api_keys\.\d+\.key$/,
  // A server's url (under any of its names), headers and env; the server name may be quoted.
  /^(?:mcpServers|servers)[.[].*(?:\.(?:url|serverUrl|httpUrl)$|\.(?:headers|env)[.[])/,
]

/** Adds a problem per wrong path; true when the value fits the schema. */
export function checkSchema<T extends TSchema>(
  problems: Problems,
  check: TypeCheck<T>,
  value: unknown,
  fileName: string,
): boolean {
  if (check.Check(value)) return true
  const seen = new Set<string>()
  for (const error of check.Errors(value)) {
    const path = dottedPath(error.path) || fileName
    // TypeBox reports a missing field twice (required, then wrong type): one line per path.
    if (seen.has(path)) continue
    seen.add(path)
    if (error.type === ValueErrorType.ObjectAdditionalProperties) {
      problems.add(path, unknownKey(error.schema))
    } else {
      problems.add(path, valueProblem(error.schema, error.value, isSecretPath(path)))
    }
  }
  return false
}

/** `/llm/providers/groq/temperature` (JSON Pointer) -> `llm.providers.groq.temperature`. */
export function dottedPath(pointer: string): string {
  return pathOf(
    ...pointer
      .split('/')
      .slice(1)
      .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~')),
  )
}

function isSecretPath(path: string): boolean {
  return SECRET_PATHS.some((pattern) => pattern.test(path))
}

function unknownKey(parent: TSchema): string {
  const keys = Object.keys((parent.properties as Record<string, unknown> | undefined) ?? {})
  return `unknown key (expected one of: ${keys.join(', ')})`
}

/**
 * The message for a value that does not fit `schema` (undefined: a missing required field).
 * Exported for the environment check, which gets its failures from ajv but words them the same.
 */
export function valueProblem(schema: TSchema, value: unknown, secret = false): string {
  if (value === undefined) return `is required (${expectation(schema)})`
  const got = `, got ${show(value, secret)}`
  if (literals(schema)) return `must be ${expectation(schema)}${got}`
  if (!hasType(schema, value)) return `must be ${expectation(schema)}${got}`
  // Right type, a constraint broken: say only the constraint.
  if (schema.type === 'integer' || schema.type === 'number') return `must be${range(schema)}${got}`
  if (schema.type === 'string') {
    if (typeof schema.minLength === 'number' && (value as string).length < schema.minLength) {
      return 'must not be empty'
    }
    if (typeof schema.pattern === 'string') return `must match ${schema.pattern}${got}`
  }
  if (schema.type === 'array' && typeof schema.minItems === 'number') {
    return `must have at least ${schema.minItems} ${schema.minItems === 1 ? 'entry' : 'entries'}`
  }
  return `must be ${expectation(schema)}${got}`
}

/** What a value of `schema` looks like, as a noun phrase. */
function expectation(schema: TSchema): string {
  const values = literals(schema)
  if (values) return `one of ${values.join(', ')}`
  switch (schema.type) {
    case 'integer':
      return `an integer${range(schema)}`
    case 'number':
      return `a number${range(schema)}`
    case 'string':
      if (typeof schema.pattern === 'string') return `a string matching ${schema.pattern}`
      return typeof schema.minLength === 'number' && schema.minLength > 0 ? 'a non-empty string' : 'a string'
    case 'boolean':
      return 'true or false'
    case 'array':
      return 'a list'
    case 'object': {
      const keys = Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {})
      return keys.length > 0 ? `an object with ${keys.join(', ')}` : 'an object'
    }
    default:
      return 'a value of another type'
  }
}

function range(schema: TSchema): string {
  const { minimum, maximum, exclusiveMinimum } = schema as {
    minimum?: number
    maximum?: number
    exclusiveMinimum?: number
  }
  if (minimum !== undefined && maximum !== undefined) return ` between ${minimum} and ${maximum}`
  if (exclusiveMinimum !== undefined) return ` > ${exclusiveMinimum}`
  if (minimum !== undefined) return ` >= ${minimum}`
  if (maximum !== undefined) return ` <= ${maximum}`
  return ''
}

/** The allowed values of a union of literals (`Literals([...])` in schema.ts), else undefined. */
function literals(schema: TSchema): string[] | undefined {
  const options = schema.anyOf as TSchema[] | undefined
  if (!Array.isArray(options) || !options.every((o) => typeof o.const === 'string')) return undefined
  return options.map((o) => o.const as string)
}

function hasType(schema: TSchema, value: unknown): boolean {
  switch (schema.type) {
    case 'integer':
      return Number.isInteger(value)
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'string':
    case 'boolean':
      return typeof value === schema.type
    case 'array':
      return Array.isArray(value)
    case 'object':
      return isObject(value)
    default:
      return true
  }
}

function show(value: unknown, secret: boolean): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (isObject(value)) return 'an object'
  if (secret) return `a ${typeof value}`
  if (typeof value === 'string') return `'${value.length > 60 ? `${value.slice(0, 57)}...` : value}'`
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value
}

/**
 * An http(s) URL without trailing slash, or undefined (and a problem). `shown` is what the problem
 * may quote: undefined when the URL came from a secret.
 */
export function httpUrl(
  problems: Problems,
  path: string,
  value: string,
  shown: string | undefined,
): string | undefined {
  let protocol: string | undefined
  try {
    protocol = new URL(value).protocol
  } catch {
    protocol = undefined
  }
  if (protocol === 'http:' || protocol === 'https:') return value.replace(/\/+$/, '')
  problems.add(path, `must be an http(s) URL${shown === undefined ? '' : `, got '${shown}'`}`)
  return undefined
}
