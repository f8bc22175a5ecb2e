// Runs the benchmarks in turn, prints their results and writes them into docs/benchmarks.md, one
// section per benchmark (a section not run this time is kept as it was).
// `npm run bench` runs all; `npm run bench -- store` only those named.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'

export interface BenchResult {
  /** The section's heading in docs/benchmarks.md. */
  title: string
  /** The section's body: what was measured, how, and the numbers. */
  markdown: string
}

export interface Bench {
  name: string
  run(progress: (line: string) => void): Promise<BenchResult>
}

/** One module per benchmark, each exporting `bench: Bench`; add a benchmark with one line here. */
const MODULES = ['./store.js', './tokens.js', './mcp.js', './turn.js', './startup.js', './websocket.js']

const DOC = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url))
const INTRO = `# Benchmarks

Produced by \`npm run bench\` (bench/run.ts); each section says when and on what it was measured.
Numbers from a shared virtual machine move by 10-20% between runs: compare numbers of one run.
`

function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown'
  const memory = execFileSync('free', ['-h'], { encoding: 'utf8' }).split('\n')[1]?.trim().split(/\s+/)[1]
  const date = new Date().toISOString().slice(0, 10)
  return `Measured ${date}: ${availableParallelism()} cores (\`nproc\`), ${cpu}, ${memory ?? '?'} memory (\`free -h\`), Node ${process.version}, ${process.platform}.`
}

/** The document's sections by title, in order. */
function sections(text: string): Map<string, string> {
  const found = new Map<string, string>()
  for (const part of text.split(/^(?=## )/m).slice(1)) {
    const title = part.slice(3, part.indexOf('\n')).trim()
    found.set(title, part.trimEnd())
  }
  return found
}

async function main(): Promise<void> {
  const only = process.argv.slice(2)
  let existing = ''
  try {
    existing = readFileSync(DOC, 'utf8')
  } catch {
    // First run: no document yet.
  }
  const doc = sections(existing)
  for (const path of MODULES) {
    const { bench } = (await import(path)) as { bench: Bench }
    if (only.length > 0 && !only.includes(bench.name)) continue
    console.log(`# ${bench.name}`)
    const result = await bench.run((line) => console.log(`  ${line}`))
    const section = `## ${result.title}\n\n${machine()}\n\n${result.markdown.trim()}`
    console.log(`\n${section}\n`)
    doc.set(result.title, section)
  }
  writeFileSync(DOC, `${INTRO}\n${[...doc.values()].join('\n\n')}\n`)
  console.log(`written: ${DOC}`)
}

await main()
