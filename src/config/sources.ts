// The two files as sources: where they are, reading them, and parsing them into plain values; and
// the dotenv files servers name (`envFile`), read with the same care.
// A syntax error is said with its line and column, never with the text around it (it may hold a
// secret).
import { open } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import YAML from 'yaml'
import { isObject } from '../util/values.js'
import type { Problems } from './problems.js'

/** Where the two files are: CLI flag, then environment, then the working directory. */
export function defaultPaths(
  env: Record<string, string | undefined>,
  cwd: string,
  argv: { config?: string; servers?: string } = {},
): { configPath: string; serversPath: string } {
  // An empty flag or variable counts as not given.
  const pick = (fallback: string, ...given: (string | undefined)[]) => given.find((g) => g) ?? fallback
  return {
    configPath: resolve(cwd, pick('config.yaml', argv.config, env.MCP_CONFIG_PATH)),
    serversPath: resolve(cwd, pick('servers_config.json', argv.servers, env.MCP_SERVERS_CONFIG_PATH)),
  }
}

/**
 * The most a configuration file may hold. Both files are a few KiB; the limit keeps a wrong path
 * (`--config /dev/zero`, a log file, a disk image) from being read, parsed and checked without end.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024

/** The file's text, or undefined (and a problem naming the flag or variable that moves it). */
export async function readSource(
  problems: Problems,
  file: string,
  override: string,
): Promise<string | undefined> {
  return readText(problems, file, basename(file), file, ` (give its path with ${override})`)
}

/**
 * A dotenv file a server entry names (`envFile`), as its entries; undefined (and a problem at
 * `path`) when it cannot be read. `shown` is how a problem names the file: the path as written when
 * it came from a variable, whose value is a secret. Read with the limits of a configuration file;
 * parsed by Node's own dotenv parser (`KEY=value`, quotes, `export`, comments; no `${…}` expansion).
 */
export async function readEnvFile(
  problems: Problems,
  path: string,
  file: string,
  shown: string,
): Promise<[string, string][] | undefined> {
  const text = await readText(problems, file, path, shown, '')
  if (text === undefined) return undefined
  return Object.entries(parseEnv(text)).filter((e): e is [string, string] => e[1] !== undefined)
}

async function readText(
  problems: Problems,
  file: string,
  path: string,
  shown: string,
  hint: string,
): Promise<string | undefined> {
  let bytes: Buffer
  try {
    bytes = await readBounded(file, MAX_CONFIG_BYTES)
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException
    problems.add(
      path,
      code === 'ENOENT'
        ? `file not found: ${shown}${hint}`
        : `cannot be read: ${message.replaceAll(file, shown)}`,
    )
    return undefined
  }
  if (bytes.length > MAX_CONFIG_BYTES) {
    problems.add(
      path,
      `is larger than ${MAX_CONFIG_BYTES} bytes (1 MiB), the most a configuration file may be`,
    )
    return undefined
  }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    problems.add(path, 'is not UTF-8 text (a binary file?)')
    return undefined
  }
  const nul = text.indexOf('\0')
  if (nul >= 0) {
    problems.add(path, `is not text: it holds a NUL byte (line ${lineCol(text, nul).line})`)
    return undefined
  }
  return text
}

/** At most `limit` + 1 bytes of the file: one byte more than allowed tells that it is too large. */
async function readBounded(file: string, limit: number): Promise<Buffer> {
  const handle = await open(file, 'r')
  try {
    const buffer = Buffer.alloc(limit + 1)
    let length = 0
    // A device or pipe may return less than asked at each read, and never end: count, not EOF.
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    return buffer.subarray(0, length)
  } finally {
    await handle.close()
  }
}

/**
 * The parsed file when it is a mapping, else undefined and one problem: the rest of the checks
 * read fields of it, and what it got instead is said by its type (a string may be anything).
 */
export function rootMapping(
  problems: Problems,
  file: string,
  value: unknown,
  expected: string,
): Record<string, unknown> | undefined {
  if (value === undefined || isObject(value)) return value
  const got =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'a list'
        : typeof value === 'number' || typeof value === 'boolean'
          ? String(value)
          : `a ${typeof value}`
  problems.add(basename(file), `must be ${expected}, got ${got}`)
  return undefined
}

export function parseYaml(problems: Problems, file: string, text: string, expected: string): unknown {
  const doc = YAML.parseDocument(text)
  // No document at all (nothing, or only comments), unlike an explicit `null`.
  if (doc.errors.length === 0 && doc.contents === null) {
    problems.add(basename(file), `is empty (expected ${expected})`)
    return undefined
  }
  if (doc.errors.length > 0) {
    // The parser often reports one mistake twice at the same place; one line per place is enough.
    const seen = new Set<string>()
    for (const error of doc.errors) {
      const where = error.linePos ? `${error.linePos[0].line}:${error.linePos[0].col}` : error.message
      if (seen.has(where)) continue
      seen.add(where)
      problems.add(basename(file), `YAML syntax error: ${firstLine(error.message)}`)
    }
    return undefined
  }
  try {
    return doc.toJS()
  } catch (err) {
    // e.g. an alias to an anchor that does not exist
    problems.add(basename(file), `YAML error: ${(err as Error).message}`)
    return undefined
  }
}

export function parseJson(problems: Problems, file: string, text: string, expected: string): unknown {
  const source = text.replace(/^\uFEFF/, '')
  if (source.trim() === '') {
    problems.add(basename(file), `is empty (expected ${expected})`)
    return undefined
  }
  try {
    return JSON.parse(source) as unknown
  } catch (err) {
    // V8's message may quote the source (possibly a secret); keep only its first clause.
    const message = (err as Error).message.replace(/, (?:"|\.\.\.")[\s\S]*is not valid JSON$/, '')
    const where = jsonErrorPosition(source, message)
    // The offset is said as line and column instead.
    const what = message.replace(/ (?:in JSON )?at position \d+.*$/, '')
    problems.add(
      basename(file),
      `JSON syntax error${where ? ` at line ${where.line}, column ${where.col}` : ''}: ${what}`,
    )
    return undefined
  }
}

/** The value at a dotted path of a parsed file, or undefined when any step is not an object. */
export function at(root: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), root)
}

/** Line and column of a JSON.parse error, which V8 gives as an offset, or not at all. */
function jsonErrorPosition(text: string, message: string): { line: number; col: number } | undefined {
  const offset = /at position (\d+)/.exec(message)?.[1]
  if (offset !== undefined) return lineCol(text, Number(offset))
  if (/Unexpected end of JSON input/.test(message)) return lineCol(text, text.length)
  // V8 names the token but not where it is ("Unexpected token 'T'"); the YAML parser in JSON mode
  // stops at the same bad token and knows its place.
  return YAML.parseDocument(text, { schema: 'json' }).errors[0]?.linePos?.[0]
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return { line, col: offset - before.lastIndexOf('\n') }
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/:$/, '')
}
