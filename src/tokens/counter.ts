// Token counts with tiktoken (WASM). One encoder per encoding per process, created on first use
// and reused: creating one costs milliseconds and megabytes. tiktoken itself is loaded then too:
// its import reads and compiles the WASM, which a process that counts nothing yet need not wait for.
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Tiktoken, TiktokenEncoding } from 'tiktoken'
import { resentReasoning } from '../llm/models.js'
import { openAiParameters } from '../llm/tool-schema.js'
import type { LlmMessage, ToolSpec } from '../llm/types.js'
import { imageTokens } from '../llm/vision.js'

// Chat formats wrap each message in framing tokens. OpenAI's cookbook counts 3 per message
// (`<|start|>`, `<|message|>`, `<|end|>`) plus the role, which is one token for every role in
// both encodings: 4 in all.
export const MESSAGE_OVERHEAD = 4
// Once per request: the reply is primed with `<|start|>assistant<|message|>`.
export const REPLY_PRIMING = 3
// Providers render tool definitions into the prompt in their own format, not as the JSON we send;
// the cookbook puts the framing of one function at about 7 tokens. The JSON's quotes and braces
// make the rest an over- rather than an under-estimate.
export const TOOL_OVERHEAD = 7

const encoders = new Map<TiktokenEncoding, Tiktoken>()
const require = createRequire(import.meta.url)
let tiktoken: typeof import('tiktoken') | undefined

function encoder(name: TiktokenEncoding): Tiktoken {
  let enc = encoders.get(name)
  if (!enc) {
    tiktoken ??= require('tiktoken') as typeof import('tiktoken')
    enc = tiktoken.get_encoding(name)
    encoders.set(name, enc)
  }
  return enc
}

/** Whether tiktoken has been loaded in this process (it is, at the first count or warmUp). */
export function tokenizerLoaded(): boolean {
  return tiktoken !== undefined
}

/** `o200k_base` for GPT-4o and later OpenAI models; `cl100k_base` (an estimate) for the rest. */
export function encodingFor(model: string): TiktokenEncoding {
  return /^(gpt-4o|gpt-4\.1|gpt-5|o\d|chatgpt-4o)/.test(model) ? 'o200k_base' : 'cl100k_base'
}

// tiktoken first splits text into pieces with a regex, then runs BPE on each piece; BPE is
// quadratic in a piece's length, and one run of letters is one piece (100,000 letters take
// seconds). So text is encoded in chunks cut only where the regex of both encodings always ends a
// piece, which keeps the count exact:
//   - before a space that follows a non-whitespace character (a piece holds a space only at its
//     start, or in a run of whitespace);
//   - after a line break followed by a non-whitespace character other than `/` (o200k_base lets
//     punctuation pieces end in `[\r\n/]*`);
//   - at either edge of a run of ASCII digits (digits only ever form pieces of their own);
//   - between an ASCII letter and ASCII punctuation other than `'` (o200k_base lets a word end
//     in `'s`, `'ll`, …).
// A stretch between two such cuts that is longer than RUN_LIMIT (a long run of letters, of
// punctuation or emoji, of whitespace, or CJK prose, whose punctuation is not ASCII) is cut every
// RUN_LIMIT characters regardless, and only there is the count an estimate (off by about one token
// per cut; 0.1% on 100,000 random letters).
const RUN_LIMIT = 256
// Exact stretches are encoded together up to this size: fewer calls into WASM, bounded memory.
const CHUNK = 16384

/** Tokens of `text` as `encode_ordinary` counts them (special tokens read as plain text). */
export function countTokens(text: string, model: string): number {
  const enc = encoder(encodingFor(model))
  if (text.length <= RUN_LIMIT) return enc.encode_ordinary(text).length
  const count = (from: number, to: number) =>
    to > from ? enc.encode_ordinary(text.slice(from, to)).length : 0
  let total = 0
  let chunkStart = 0
  let segmentStart = 0
  for (let i = 1; i <= text.length; i++) {
    if (i < text.length && !isExactCut(text, i)) continue
    // [segmentStart, i) is a stretch between two cuts.
    if (i - segmentStart > RUN_LIMIT) {
      total += count(chunkStart, segmentStart) + countLongRun(enc, text, segmentStart, i)
      chunkStart = i
    } else if (i - chunkStart > CHUNK) {
      total += count(chunkStart, segmentStart)
      chunkStart = segmentStart
    }
    segmentStart = i
  }
  return total + count(chunkStart, text.length)
}

function countLongRun(enc: Tiktoken, text: string, from: number, to: number): number {
  let total = 0
  for (let start = from; start < to;) {
    let end = Math.min(to, start + RUN_LIMIT)
    // Never between the two halves of a surrogate pair: alone, each would encode as U+FFFD.
    if (end < to && isLowSurrogate(text.charCodeAt(end))) end--
    total += enc.encode_ordinary(text.slice(start, end)).length
    start = end
  }
  return total
}

/**
 * Whether counting `text` up to `i` and from `i` apart gives the same total as counting it whole,
 * in both encodings (see above). Exported for the tests: the counter's exactness rests on it.
 */
export function isExactCut(text: string, i: number): boolean {
  const c = text.charCodeAt(i)
  const before = text.charCodeAt(i - 1)
  if (c === 0x20) return !isWhitespace(before)
  if (before === 0x0a || before === 0x0d) return c !== 0x2f && !isWhitespace(c)
  // Only ASCII neighbours: a non-ASCII one could be a numeral, or a combining mark that o200k_base
  // counts as part of a word. Never after whitespace: at the end of a chunk, `\s+(?!\S)` would
  // take a run of spaces whole that the full text splits before its last space.
  if (isDigit(c)) return before < 0x80 && !isDigit(before) && !isWhitespace(before)
  if (isDigit(before)) return c < 0x80
  return isLetter(before) && c < 0x80 && c !== 0x27 && !isLetter(c) && !isWhitespace(c)
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
}

// Whitespace for either JavaScript's `\s` or the Unicode White_Space property tiktoken's (Rust)
// regex uses: erring towards whitespace only means fewer cuts, never a wrong one.
function isWhitespace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d)
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    c === 0x180e ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  )
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff
}

/**
 * Tokens one message takes in a request: its content, the names and arguments of its tool calls,
 * a tool result's images at their estimate (vision.ts, `imageTokens`), the reasoning later requests
 * carry again (resentReasoning), and MESSAGE_OVERHEAD. This is the count stored with the message's
 * event.
 */
export function countMessage(message: LlmMessage, model: string): number {
  let total = MESSAGE_OVERHEAD + countTokens(message.content, model)
  if (message.role === 'assistant') {
    for (const call of message.tool_calls ?? []) {
      total += countTokens(call.name, model) + countTokens(call.arguments, model)
    }
    const reasoning = resentReasoning(message.reasoning)
    if (reasoning) total += countTokens(reasoning, model)
  }
  // An image costs what the model makes of its pixels, not the length of its base64.
  if (message.role === 'tool') for (const image of message.images ?? []) total += imageTokens(image)
  return total
}

/** Tokens the tool schemas take: the sum of countTool over them. */
export function countTools(tools: readonly ToolSpec[], model: string): number {
  let total = 0
  for (const t of tools) total += countTool(t, model)
  return total
}

/** A tool definition's count, and what it was counted for. */
interface ToolCount {
  encoding: TiktokenEncoding
  name: string
  description: string
  tokens: number
}

// Each tool definition is counted once, not on every turn: a turn offers the same tools as the one
// before until a server's list changes. Looked up by the definition's input schema, an object a
// listing makes once and never changes (a changed tool comes with a new one), then by what else is
// counted: its name (the catalogue may rename it when another server's tool takes it), its
// description and the encoding. A schema no longer referenced takes its counts with it.
const toolCounts = new WeakMap<object, ToolCount[]>()
// The same schema object under more names or descriptions than this is not a listing's.
const COUNTS_PER_SCHEMA = 4
// A server that lists its tools again (list_changed, a reconnection) gives new objects for the
// same definitions: those are found by their content, serialized once and hashed, and only a
// definition never seen before goes through the tokenizer. The oldest are forgotten first.
const countsByContent = new Map<string, number>()
const CONTENTS_KEPT = 4096
let toolsCounted = 0

/**
 * Tokens one tool definition takes: the JSON the provider receives for it (the shape the
 * OpenAI-compatible wire sends, src/llm/openai.ts), plus TOOL_OVERHEAD. Counted once per
 * definition and encoding, then read back.
 */
export function countTool(tool: ToolSpec, model: string): number {
  const encoding = encodingFor(model)
  let known = toolCounts.get(tool.input_schema)
  for (const k of known ?? []) {
    if (k.encoding === encoding && k.name === tool.name && k.description === tool.description) return k.tokens
  }
  const wire = JSON.stringify({
    type: 'function',
    function: {
      name: tool.name,
      description: tool.description,
      parameters: openAiParameters(tool.input_schema),
    },
  })
  const key = `${encoding}:${createHash('sha256').update(wire).digest('base64')}`
  let tokens = countsByContent.get(key)
  if (tokens === undefined) {
    tokens = TOOL_OVERHEAD + countTokens(wire, model)
    toolsCounted++
    if (countsByContent.size >= CONTENTS_KEPT) countsByContent.delete(countsByContent.keys().next().value!)
    countsByContent.set(key, tokens)
  }
  if (!known) toolCounts.set(tool.input_schema, (known = []))
  if (known.length >= COUNTS_PER_SCHEMA) known.shift()
  known.push({ encoding, name: tool.name, description: tool.description, tokens })
  return tokens
}

/**
 * How many tool definitions this process has run through the tokenizer: each distinct one once
 * per encoding, however many turns offer it and however often its server lists it. For the tests,
 * which prove that a turn reads its counts back.
 */
export function toolDefinitionsCounted(): number {
  return toolsCounted
}

// The system prompt is the same text in every turn: counted once per encoding, and again only
// when it changes (a few are kept, for apps that give each their own). Looked up by the text
// itself, whose hash the engine keeps with the string: no cost per turn that grows with it.
const systemCounts = new Map<TiktokenEncoding, Map<string, number>>()
const SYSTEM_PROMPTS_KEPT = 8

/** countMessage of the system prompt, counted once per text and encoding. */
export function countSystem(text: string, model: string): number {
  const encoding = encodingFor(model)
  let counts = systemCounts.get(encoding)
  if (!counts) systemCounts.set(encoding, (counts = new Map<string, number>()))
  let tokens = counts.get(text)
  if (tokens === undefined) {
    tokens = countMessage({ role: 'system', content: text }, model)
    if (counts.size >= SYSTEM_PROMPTS_KEPT) counts.clear()
    counts.set(text, tokens)
  }
  return tokens
}

/** Creates the model's encoder now (it takes a few hundred milliseconds), not in the first turn. */
export function warmUp(model: string): void {
  encoder(encodingFor(model))
}
