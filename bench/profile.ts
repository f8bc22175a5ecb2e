// Reads a V8 CPU profile (what `node --cpu-prof` writes: nodes of a call tree, the node of each
// sample and the time between samples) and sums, within a time window, the self time of each
// function and the time each area of code (one of our folders, a package, a part of Node) is on
// the stack. Not a benchmark itself (not in run.ts).

export interface CpuProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}

export interface CpuProfile {
  nodes: CpuProfileNode[]
  /** Microseconds, CLOCK_MONOTONIC. */
  startTime: number
  endTime: number
  samples: number[]
  /** Microseconds from the previous sample (the first: from startTime). */
  timeDeltas: number[]
}

export interface ProfileSummary {
  windowMs: number
  /** Every sample's time but (idle)'s. */
  busyMs: number
  samples: number
  /** By self time, largest first. */
  functions: { name: string; where: string; selfMs: number }[]
  /** By inclusive time, largest first. */
  areas: { area: string; inclusiveMs: number }[]
}

/** A file's place, short: `src/tokens/counter.js`, `tiktoken/tiktoken_bg.cjs`, `node:internal/…`. */
function shortPlace(url: string): string {
  if (url === '') return ''
  const modules = url.lastIndexOf('/node_modules/')
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length)
  const dist = url.lastIndexOf('/dist/')
  if (dist >= 0) return url.slice(dist + '/dist/'.length)
  return url.replace(/^file:\/\//, '')
}

/** The area of a function: our folder (src/chat), a package (fastify, @scope/name), a part of Node. */
function areaOf(node: CpuProfileNode): string {
  const { url, functionName } = node.callFrame
  if (url === '') return functionName.startsWith('(') ? functionName : '(V8 builtins and native code)'
  const place = shortPlace(url)
  if (url.includes('/node_modules/')) {
    const parts = place.split('/')
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
  }
  if (place.startsWith('node:')) {
    const parts = place.slice('node:'.length).split('/')
    return `node:${parts[0] === 'internal' ? `internal/${parts[1] ?? ''}` : parts[0]}`.replace(/\.js$/, '')
  }
  const parts = place.split('/')
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!
}

/**
 * Areas on nearly every stack, which say nothing about where the time goes: the task queues that
 * run every callback, V8's builtins, and the profiler's own entries.
 */
const EVERYWHERE = new Set([
  '(V8 builtins and native code)',
  'node:internal/process',
  'node:internal/timers',
  'node:internal/async_hooks',
  '(program)',
  '(garbage collector)',
  '(root)',
])

const isWasm = (node: CpuProfileNode) => node.callFrame.url.startsWith('wasm://')

/** Sums the samples taken between `from` and `to` (microseconds on the profile's clock). */
export function summariseProfile(profile: CpuProfile, from: number, to: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const areasOnStack = new Map<number, Set<string>>()
  const stackAreas = (id: number): Set<string> => {
    let found = areasOnStack.get(id)
    if (found) return found
    const up = parent.get(id)
    found = new Set(up === undefined ? [] : stackAreas(up))
    const node = byId.get(id)!
    // WebAssembly has no file to tell whose it is: it counts for the area that called it.
    if (!isWasm(node) && !EVERYWHERE.has(areaOf(node))) found.add(areaOf(node))
    areasOnStack.set(id, found)
    return found
  }
  /** Where a WebAssembly function was called from: the area of its nearest caller that is not. */
  const wasmCaller = (id: number): string => {
    let up = parent.get(id)
    while (up !== undefined && isWasm(byId.get(up)!)) up = parent.get(up)
    return `WebAssembly, called from ${up === undefined ? '?' : areaOf(byId.get(up)!)}`
  }
  const self = new Map<string, { name: string; where: string; selfMs: number }>()
  const areas = new Map<string, number>()
  let busyUs = 0
  let samples = 0
  let time = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0
    if (time < from || time > to) continue
    // A sample stands for the time until the next one.
    const us = profile.timeDeltas[i + 1] ?? 0
    const node = byId.get(profile.samples[i]!)!
    const { functionName, url, lineNumber } = node.callFrame
    samples++
    if (functionName === '(idle)') continue
    busyUs += us
    const where =
      url === '' ? '(native)' : isWasm(node) ? wasmCaller(node.id) : `${shortPlace(url)}:${lineNumber + 1}`
    const key = `${functionName} ${where}`
    const entry = self.get(key) ?? { name: functionName || '(anonymous)', where, selfMs: 0 }
    entry.selfMs += us / 1000
    self.set(key, entry)
    for (const area of stackAreas(node.id)) areas.set(area, (areas.get(area) ?? 0) + us / 1000)
  }
  return {
    windowMs: (to - from) / 1000,
    busyMs: busyUs / 1000,
    samples,
    functions: [...self.values()].sort((a, b) => b.selfMs - a.selfMs),
    areas: [...areas]
      .map(([area, inclusiveMs]) => ({ area, inclusiveMs }))
      .sort((a, b) => b.inclusiveMs - a.inclusiveMs),
  }
}
