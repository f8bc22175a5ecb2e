// What `mcp-platform tools` prints: each configured server's state (and why it failed), its tools
// as the LLM sees them (name, description, input schema), and what was adapted or left out on the
// way, for a person to read.
import type { RegisteredTool, ServerState, ServerStatus } from './types.js'

/** A schema is laid out to fit this many columns where it can: small parts stay on one line. */
const WIDTH = 100
const STATES: ServerState[] = ['ready', 'starting', 'connecting', 'failed', 'closed']

export function toolsReport(servers: ServerStatus[], tools: RegisteredTool[]): string {
  if (servers.length === 0) return 'No MCP server is configured (or every one is disabled).\n'
  const out: string[] = []
  for (const server of servers) {
    out.push(header(server))
    for (const tool of tools.filter((t) => t.server === server.name)) {
      // A name the LLM sees changed (characters replaced, shortened): the server's own is said too.
      const own = tool.name.endsWith(`__${tool.tool}`) ? '' : `  (on the server: ${tool.tool})`
      out.push(`  ${tool.name}${own}`)
      const description = tool.description.trim()
      if (description) out.push(...description.split('\n').map((line) => `    ${line.trimEnd()}`))
      out.push(`    input: ${layout(tool.input_schema, '    ', WIDTH - '    input: '.length)}`)
    }
    for (const note of server.tool_notes ?? []) {
      out.push(`  ${note.action === 'adapted' ? 'adapted' : 'left out'}: ${note.tool}: ${note.reason}`)
    }
    out.push('')
  }
  out.push(summary(servers))
  return `${out.join('\n')}\n`
}

function header(server: ServerStatus): string {
  // A name mapped to a namespace is shown as written too: that is the one the user knows.
  const written = server.configured_name === undefined ? '' : `"${server.configured_name}", `
  const head = `${server.name} (${written}${server.transport}): ${server.state}`
  switch (server.state) {
    case 'ready':
      return `${head}, ${count(server.tools, 'tool')}, ${count(server.prompts, 'prompt')}, ${count(server.resources, 'resource')}`
    case 'failed':
      return `${head} — ${server.error ?? 'no reason given'}`
    default:
      return `${head} — not ready yet`
  }
}

function summary(servers: ServerStatus[]): string {
  const states = STATES.map((state) => [state, servers.filter((s) => s.state === state).length] as const)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
  return `${count(servers.length, 'server')}: ${states.join(', ')}`
}

function count(n: number, thing: string): string {
  return `${n} ${thing}${n === 1 ? '' : 's'}`
}

/**
 * JSON that stays on one line where it fits in `room` columns, and otherwise opens its objects
 * and arrays one member a line, indented under `indent`.
 */
function layout(value: unknown, indent: string, room: number): string {
  const flat = oneLine(value)
  if (flat.length <= room || value === null || typeof value !== 'object') return flat
  const inner = `${indent}  `
  const rest = WIDTH - inner.length
  if (Array.isArray(value)) {
    const items = value.map((item) => `${inner}${layout(item, inner, rest - 1)}`)
    return `[\n${items.join(',\n')}\n${indent}]`
  }
  const members = Object.entries(value).map(([key, item]) => {
    const name = `${JSON.stringify(key)}: `
    return `${inner}${name}${layout(item, inner, rest - name.length - 1)}`
  })
  return `{\n${members.join(',\n')}\n${indent}}`
}

/** JSON on one line, with a space after each `:` and `,` as a person writes it. */
function oneLine(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(oneLine).join(', ')}]`
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}: ${oneLine(item)}`)
    return `{${members.join(', ')}}`
  }
  return JSON.stringify(value) ?? 'null'
}
