// Token counts with tiktoken (WASM). One encoder per encoding per process, created on first use
// and reused: creating one costs milliseconds and megabytes.
import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken'

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

// BPE is quadratic in the length of a run without spaces; counting such text in bounded pieces
// keeps one call from holding the event loop.
const PIECE = 2048

export function countTokens(text: string, model: string): number {
  const enc = encoder(encodingFor(model))
  if (text.length <= PIECE) return enc.encode_ordinary(text).length
  let total = 0
  for (let start = 0; start < text.length;) {
    let end = Math.min(text.length, start + PIECE)
    if (end < text.length) {
      const space = text.lastIndexOf(' ', end)
      if (space > start) end = space
    }
    total += enc.encode_ordinary(text.slice(start, end)).length
    start = end
  }
  return total
}

/** Creates the model's encoder now (it takes a few hundred milliseconds), not in the first turn. */
export function warmUp(model: string): void {
  encoder(encodingFor(model))
}
