// The lines a stdio server writes, read in linear time and bounded. The SDK's ReadBuffer joins the
// whole buffer to every new chunk and searches all of it for the newline: quadratic, so a 50 MB
// answer held the event loop for seconds. Here a line's chunks are kept as they came and joined
// once, at its newline, and only the new chunk is searched. A line over the limit is not kept:
// only its first and last few KB, enough to tell which request it answered.

const NEWLINE = 0x0a
/** How much of the start and of the end of an oversized line is kept. */
const EDGE_BYTES = 4096
const EMPTY = Buffer.alloc(0)

/** A line longer than the limit, dropped: its size, and its two ends as text. */
export interface OversizedLine {
  bytes: number
  head: string
  tail: string
}

export type ReadLine = { text: string } | { oversized: OversizedLine }

export class LineReader {
  /** The largest line kept, in bytes (the newline not counted). */
  readonly maxBytes: number
  #parts: Buffer[] = []
  #bytes = 0
  /** Set once the current line passed the limit: its first bytes (the rest is not kept). */
  #head?: Buffer
  #tail: Buffer = EMPTY

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes
  }

  /** The lines this chunk completes, in order; blank lines are skipped. */
  push(chunk: Buffer): ReadLine[] {
    const lines: ReadLine[] = []
    let start = 0
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      this.#add(chunk.subarray(start, end))
      const line = this.#take()
      if (line) lines.push(line)
      start = end + 1
    }
    this.#add(chunk.subarray(start))
    return lines
  }

  clear(): void {
    this.#parts = []
    this.#bytes = 0
    this.#head = undefined
    this.#tail = EMPTY
  }

  #add(part: Buffer): void {
    if (part.length === 0) return
    this.#bytes += part.length
    if (this.#head) {
      this.#tail = lastBytes([this.#tail, part])
      return
    }
    this.#parts.push(part)
    if (this.#bytes <= this.maxBytes) return
    // Past the limit: the two ends are kept, the rest let go.
    this.#head = Buffer.concat(this.#parts, Math.min(EDGE_BYTES, this.#bytes))
    this.#tail = lastBytes(this.#parts)
    this.#parts = []
  }

  #take(): ReadLine | undefined {
    let read: ReadLine | undefined
    if (this.#head) {
      const head = this.#head.toString('utf8')
      read = { oversized: { bytes: this.#bytes, head, tail: this.#tail.toString('utf8') } }
    } else if (this.#bytes > 0) {
      const whole = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#bytes)
      const text = whole.toString('utf8')
      const trimmed = text.endsWith('\r') ? text.slice(0, -1) : text
      if (trimmed.trim() !== '') read = { text: trimmed }
    }
    this.clear()
    return read
  }
}

/** The last EDGE_BYTES of these buffers joined, copied (a pipe's chunk is not held on to). */
function lastBytes(parts: readonly Buffer[]): Buffer {
  const kept: Buffer[] = []
  let length = 0
  for (let i = parts.length - 1; i >= 0 && length < EDGE_BYTES; i--) {
    const part = parts[i]!
    kept.unshift(part.subarray(Math.max(0, part.length - (EDGE_BYTES - length))))
    length += kept[0]!.length
  }
  return Buffer.concat(kept, length)
}

type Id = string | number

/** What the two ends of an oversized JSON-RPC message say: its id, and whether it is a response. */
export function describeCut(head: string, tail: string): { id?: Id; response: boolean } {
  const members = new Map([...headMembers(head), ...tailMembers(tail)])
  const raw = members.get('id')
  const id = raw === undefined ? undefined : parseId(raw)
  const response = !members.has('method') && (members.has('result') || members.has('error'))
  return id === undefined ? { response } : { id, response }
}

function parseId(raw: string): Id | undefined {
  if (/^-?\d+$/.test(raw)) return Number(raw)
  if (!raw.startsWith('"')) return undefined
  try {
    const id: unknown = JSON.parse(raw)
    return typeof id === 'string' ? id : undefined
  } catch {
    return undefined
  }
}

const SCALAR = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y

/**
 * The top-level members of a JSON object that are found in its first bytes, read from the start:
 * each key, with its value's text when that is a scalar wholly in the window.
 */
function headMembers(text: string): Map<string, string | undefined> {
  const members = new Map<string, string | undefined>()
  let depth = 0
  let key: string | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (depth === 1 && key !== undefined && !/\s/.test(c)) {
      SCALAR.lastIndex = i
      const scalar = SCALAR.exec(text)
      if (scalar && SCALAR.lastIndex < text.length) members.set(key, scalar[0])
      key = undefined
      if (scalar) {
        i = SCALAR.lastIndex - 1
        continue
      }
    }
    if (c === '"') {
      const end = stringEnd(text, i)
      if (end === -1) break
      const colon = depth === 1 ? nextNonSpace(text, end + 1) : -1
      if (text[colon] === ':') {
        key = JSON.parse(text.slice(i, end + 1)) as string
        members.set(key, undefined)
        i = colon
      } else {
        i = end
      }
    } else if (c === '{' || c === '[') depth++
    else if (c === '}' || c === ']') depth--
  }
  return members
}

/** The index of the quote that closes the string opening at `start`, or -1 if it is cut. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++
    else if (text[i] === '"') return i
  }
  return -1
}

/**
 * The top-level members found in the last bytes of a JSON object, read backwards from its closing
 * brace. Going backwards, a quote closes (or opens) a string unless an odd number of backslashes
 * precedes it.
 */
function tailMembers(text: string): Map<string, string | undefined> {
  const members = new Map<string, string | undefined>()
  let i = text.trimEnd().length - 1
  if (text[i] !== '}') return members
  let depth = 1
  /** Where the member being read backwards ends (its ',' or the closing brace). */
  let memberEnd = i
  for (i--; i >= 0 && depth > 0; i--) {
    const c = text[i]!
    if (c === '"') {
      let open = i - 1
      while (open >= 0 && !(text[open] === '"' && evenBackslashesBefore(text, open))) open--
      if (open < 0) break
      const colon = depth === 1 ? nextNonSpace(text, i + 1) : -1
      if (text[colon] === ':') {
        const value = text.slice(colon + 1, memberEnd).trim()
        try {
          members.set(JSON.parse(text.slice(open, i + 1)) as string, value)
        } catch {
          break
        }
      }
      i = open
    } else if (c === '}' || c === ']') depth++
    else if (c === '{' || c === '[') depth--
    else if (c === ',' && depth === 1) memberEnd = i
  }
  return members
}

function nextNonSpace(text: string, from: number): number {
  let i = from
  while (i < text.length && /\s/.test(text[i]!)) i++
  return i
}

function evenBackslashesBefore(text: string, at: number): boolean {
  let count = 0
  for (let i = at - 1; i >= 0 && text[i] === '\\'; i--) count++
  return count % 2 === 0
}
