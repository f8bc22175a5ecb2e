// The names the LLM sees for MCP tools: `SERVER__TOOL`, restricted to what every provider accepts
// (`[A-Za-z0-9_-]`, at most 64 characters), and unique across the registry so a call always routes
// back to one server and tool.
import { createHash } from 'node:crypto'

export const MAX_TOOL_NAME_LENGTH = 64
export const SEPARATOR = '__'
const HASH_LENGTH = 8

export interface ToolRef {
  server: string
  tool: string
}

/** `SERVER__TOOL` as written, before any replacement. */
export function rawToolName(ref: ToolRef): string {
  return `${ref.server}${SEPARATOR}${ref.tool}`
}

/** A short hash of the original names, so the same tool always gets the same suffix. */
export function toolHash(ref: ToolRef, length = HASH_LENGTH): string {
  // The NUL keeps ("a", "b_c") and ("a_b", "c") apart, unlike the joined name.
  return createHash('sha256').update(`${ref.server}\u0000${ref.tool}`).digest('hex').slice(0, length)
}

/** The readable name: unsafe characters replaced, cut and hashed only when over the limit. */
export function llmToolName(ref: ToolRef): string {
  const safe = rawToolName(ref).replace(/[^A-Za-z0-9_-]/g, '_')
  return safe.length <= MAX_TOOL_NAME_LENGTH ? safe : hashedToolName(ref)
}

/** The readable name cut short and suffixed with the hash: unique per (server, tool). */
export function hashedToolName(ref: ToolRef, hashLength = HASH_LENGTH): string {
  const safe = rawToolName(ref).replace(/[^A-Za-z0-9_-]/g, '_')
  return `${safe.slice(0, MAX_TOOL_NAME_LENGTH - hashLength - 1)}_${toolHash(ref, hashLength)}`
}

/**
 * Names for every tool of the registry, in the order given. When several tools would get the same
 * name, the one whose raw name needs no change keeps it (ties broken by the original names), and
 * the others get the hashed form: the result depends only on the set of tools, never on the order
 * in which servers connected.
 */
export function assignToolNames(refs: readonly ToolRef[]): string[] {
  const groups = new Map<string, number[]>()
  refs.forEach((ref, i) => {
    const name = llmToolName(ref)
    groups.set(name, [...(groups.get(name) ?? []), i])
  })
  const names: string[] = refs.map(llmToolName)
  const taken = new Set(groups.keys())
  for (const [name, members] of groups) {
    if (members.length < 2) continue
    const [, ...losers] = [...members].sort((a, b) => precedence(refs, name, a, b))
    for (const i of losers) names[i] = uniqueHashedName(refs[i] as ToolRef, taken)
  }
  return names
}

function precedence(refs: readonly ToolRef[], name: string, a: number, b: number): number {
  const ra = refs[a] as ToolRef
  const rb = refs[b] as ToolRef
  const exact = Number(rawToolName(rb) === name) - Number(rawToolName(ra) === name)
  if (exact !== 0) return exact
  return compare(`${ra.server}\u0000${ra.tool}`, `${rb.server}\u0000${rb.tool}`)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** A hashed name nobody else holds; a longer hash in the (unlikely) case it is taken. */
function uniqueHashedName(ref: ToolRef, taken: Set<string>): string {
  for (let length = HASH_LENGTH; length <= 32; length += 4) {
    const name = hashedToolName(ref, length)
    if (!taken.has(name)) {
      taken.add(name)
      return name
    }
  }
  throw new Error(`cannot name tool ${ref.tool} of server ${ref.server} uniquely`)
}
