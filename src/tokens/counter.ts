// Token counts with tiktoken (WASM). One encoder per encoding per process, created on first use
// and reused: creating one costs milliseconds and megabytes.
import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken'
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

function encoder(name: TiktokenEncoding): Tiktoken {
  let enc = encoders.get(name)
  if (!enc) {
    enc = get_encoding(name)
    encoders.set(name, enc)
  }
  return enc
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

/** Tokens the tool schemas take: the JSON the provider receives for each, plus TOOL_OVERHEAD. */
export function countTools(tools: ToolSpec[], model: string): number {
  let total = 0
  for (const t of tools) {
    // The shape the OpenAI-compatible wire sends (src/llm/openai.ts).
    const wire = {
      type: 'function',
      function: { name: t.name, description: t.description, parameters: openAiParameters(t.input_schema) },
    }
    total += TOOL_OVERHEAD + countTokens(JSON.stringify(wire), model)
  }
  return total
}

/** Creates the model's encoder now (it takes a few hundred milliseconds), not in the first turn. */
export function warmUp(model: string): void {
  encoder(encodingFor(model))
}
