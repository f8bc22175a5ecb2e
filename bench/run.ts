// Runs the benchmarks in turn, prints their results and writes them into docs/benchmarks.md, one
// section per benchmark (a section not run this time is kept as it was, and so are the records
// of earlier runs written by hand into a section, see records()).
// `npm run bench` runs all; `npm run bench -- store` only those named.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
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
  // The machine is shared: its load when the benchmark ended says how far to trust absolute figures.
  const load = loadavg()[0]!.toFixed(1)
  return `Measured ${date}: ${availableParallelism()} cores (\`nproc\`), ${cpu}, ${memory ?? '?'} memory (\`free -h\`), Node ${process.version}, ${process.platform}; load average ${load} at the end (1 min).`
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

/**
 * The subsections written by hand into a benchmark's section: records of earlier runs, whose
 * heading names their issue ("### The lock's owner record (issue 11)"). A new run of the
 * benchmark writes its section again and keeps them after it.
 */
function records(section: string | undefined): string[] {
  if (section === undefined) return []
  return section
    .split(/^(?=### )/m)
    .slice(1)
    .filter((part) => /\bissue \d+/.test(part.slice(0, part.indexOf('\n'))))
    .map((part) => part.trimEnd())
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
    const kept = records(doc.get(result.title)).map((record) => `\n\n${record}`)
    const section = `## ${result.title}\n\n${machine()}\n\n${result.markdown.trim()}${kept.join('')}`
    console.log(`\n${section}\n`)
    doc.set(result.title, section)
  }
  writeFileSync(DOC, `${INTRO}\n${[...doc.values()].join('\n\n')}\n`)
  console.log(`written: ${DOC}`)
}

await main()
