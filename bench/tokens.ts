// How long counting a 100,000-character message holds the event loop: our counter against
// tiktoken's `encode_ordinary` on the whole string (the baseline), in the same run. Text without
// spaces is BPE's quadratic case; prose with spaces is shown for comparison.
//
//   node dist/bench/tokens.js        (or `npm run bench -- tokens`, through bench/run.ts)
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { get_encoding, type TiktokenEncoding } from 'tiktoken'
import { countTokens, warmUp } from '../src/tokens/counter.js'
import type { Bench } from './run.js'

const LENGTH = 100_000
const RUNS = 5

export interface TokensBenchRow {
  encoding: TiktokenEncoding
  text: string
  counter: 'ours' | 'tiktoken whole'
  tokens: number
  /** Median time of one count. */
  ms: number
  /** The longest the event loop went without running a callback during one count: median of the runs. */
  stall_ms: number
  /** The same, the worst run (garbage collection and a shared machine show here). */
  worst_stall_ms: number
}

/** Deterministic text, so every run measures the same thing. */
function generate(seed: number, length: number, parts: string[]): string {
  let s = seed
  let text = ''
  while (text.length < length) {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t)
    text += parts[((t ^ (t >>> 14)) >>> 0) % parts.length]
  }
  return text.slice(0, length)
}

const WORDS = (
  'the of and to in a is that for it as was with be by on not he this are or his from at which but ' +
  'have an they you were their one all we can her has there been if more when will would who so no ' +
  'context, token. message; history: (model) tool-call "result" 2026 42'
).split(' ')

/**
 * Runs `count` inside a timer while a setImmediate chain samples the event loop: the largest gap
 * between two samples is how long the loop could not serve anything else.
 */
async function measure(count: () => number): Promise<{ tokens: number; ms: number; stall: number }> {
  let last = performance.now()
  let stall = 0
  let sampling = true
  const sample = () => {
    const now = performance.now()
    stall = Math.max(stall, now - last)
    last = now
    if (sampling) setImmediate(sample)
  }
  setImmediate(sample)
  await sleep(20)
  stall = 0
  const result = await new Promise<{ tokens: number; ms: number }>((resolve) => {
    setTimeout(() => {
      const started = performance.now()
      const tokens = count()
      resolve({ tokens, ms: performance.now() - started })
    }, 0)
  })
  await sleep(20)
  sampling = false
  return { ...result, stall }
}

/** Measures, prints the table line by line through `progress`, and returns the rows. */
export default async function benchTokens(
  progress: (line: string) => void = console.log,
): Promise<TokensBenchRow[]> {
  const texts = [
    { name: 'no spaces (letters)', text: generate(1, LENGTH, [...'abcdefghijklmnopqrstuvwxyz']) },
    {
      name: 'prose with spaces',
      text: generate(
        2,
        LENGTH,
        WORDS.map((w) => `${w} `),
      ),
    },
  ]
  const models: Array<[TiktokenEncoding, string]> = [
    ['cl100k_base', 'gpt-4'],
    ['o200k_base', 'gpt-4o'],
  ]
  progress(
    `${LENGTH.toLocaleString('en')} characters; ${cpus().length} × ${cpus()[0]?.model ?? '?'}; node ${process.version}`,
  )
  const rows: TokensBenchRow[] = []
  for (const [encoding, model] of models) {
    warmUp(model)
    const baseline = get_encoding(encoding)
    try {
      for (const { name, text } of texts) {
        // Both counters once on a slice first, so neither pays for compiling its code in the numbers.
        countTokens(text.slice(0, 10_000), model)
        baseline.encode_ordinary(text.slice(0, 10_000))
        const ours = await repeat(RUNS, () => countTokens(text, model))
        rows.push({ encoding, text: name, counter: 'ours', ...ours })
        // Quadratic on the text without spaces (seconds), so measured once there.
        const runs = name.startsWith('no spaces') ? 1 : RUNS
        const whole = await repeat(runs, () => baseline.encode_ordinary(text).length)
        rows.push({ encoding, text: name, counter: 'tiktoken whole', ...whole })
        progress(`${encoding}, ${name}: ours ${fmt(ours)}; tiktoken whole ${fmt(whole)}`)
      }
    } finally {
      baseline.free()
    }
  }
  for (const line of table(rows)) progress(line)
  return rows
}

/** For bench/run.ts: the same measurement as a section of docs/benchmarks.md. */
export const bench: Bench = {
  name: 'tokens',
  async run(progress) {
    const rows = await benchTokens(progress)
    const markdown = [
      `Counting one ${LENGTH.toLocaleString('en')}-character message with our counter`,
      "(`src/tokens/counter.ts`) against tiktoken's `encode_ordinary` on the whole string, the",
      'baseline, in the same run. "Stall" is the largest gap a `setImmediate` chain saw during one',
      `count: how long the event loop could serve nothing else. Medians of ${RUNS} runs (1 for the`,
      'baseline on text without spaces, which takes seconds), and the worst stall of them. Our count',
      "is exact wherever tiktoken's",
      'pieces are short, and an estimate inside runs without whitespace longer than 256 characters.',
      '',
      ...table(rows, true),
    ].join('\n')
    return { title: 'Token counting of a 100,000-character message', markdown }
  },
}

function fmt(r: { tokens: number; ms: number; stall_ms: number }): string {
  return `${r.tokens} tokens, ${r.ms.toFixed(1)} ms, stall ${r.stall_ms.toFixed(1)} ms`
}

async function repeat(
  runs: number,
  count: () => number,
): Promise<Omit<TokensBenchRow, 'encoding' | 'text' | 'counter'>> {
  const results = []
  for (let i = 0; i < runs; i++) results.push(await measure(count))
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  return {
    tokens: results[0]!.tokens,
    ms: median(results.map((r) => r.ms)),
    stall_ms: median(results.map((r) => r.stall)),
    worst_stall_ms: Math.max(...results.map((r) => r.stall)),
  }
}

function table(rows: TokensBenchRow[], markdown = false): string[] {
  const header = ['encoding', 'text', 'counter', 'tokens', 'median ms', 'stall ms', 'worst stall ms']
  const cells = rows.map((r) => [
    r.encoding,
    r.text,
    r.counter,
    String(r.tokens),
    r.ms.toFixed(1),
    r.stall_ms.toFixed(1),
    r.worst_stall_ms.toFixed(1),
  ])
  if (markdown) {
    const line = (c: string[]) => `| ${c.join(' | ')} |`
    return [line(header), line(header.map(() => '---')), ...cells.map(line)]
  }
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)))
  const line = (c: string[]) =>
    c
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return [line(header), ...cells.map(line)]
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchTokens()
}
