// servers_config.json beyond its schema: which key holds the servers (`mcpServers`, or `servers`
// as VS Code writes it) and what else a pasted file holds; server names and their namespaces; the
// keys other hosts write, mapped onto the platform's own; the rules between one server's keys
// (stdio or remote, not both); `env:` and `${…}` resolved, an envFile read, its cwd made absolute.
import { dirname, resolve } from 'node:path'
import { isObject } from '../util/values.js'
import { httpUrl, pathOf, type Problems } from './problems.js'
import type { ServerFile } from './schema.js'
import { isSecretName, type Secrets } from './secrets.js'
import { assignNamespaces } from './server-names.js'
import { readEnvFile } from './sources.js'
import type { RemoteServerConfig, ServerConfig, StdioServerConfig } from './types.js'

/** Where the servers are: the platform's (and Claude Desktop's) key first, then VS Code's. */
const ROOTS = ['mcpServers', 'servers'] as const
type Root = (typeof ROOTS)[number]
// Keys that only make sense for one kind of server.
const STDIO_ONLY = ['args', 'env', 'envFile', 'cwd'] as const
const REMOTE_ONLY = ['headers'] as const
// Keys of one setting, as the platform and other hosts write it: at most one may be set.
const URL_KEYS = ['url', 'serverUrl', 'httpUrl'] as const
const APPROVE_KEYS = ['auto_approve', 'autoApprove', 'alwaysAllow'] as const
// Other hosts' names for the tools the LLM is offered (Roo Code and Windsurf: disabledTools; Gemini
// CLI: includeTools, excludeTools), mapped onto `tools`.
const TOOL_LIST_KEYS = ['disabledTools', 'includeTools', 'excludeTools'] as const
// Keys other hosts keep for themselves, which mean nothing here: ignored, with a warning.
const IGNORED_KEYS = {
  watchPaths: 'Roo Code restarts the server when these files change; the platform does not',
  trust: 'Gemini CLI skips its confirmations; the platform asks none yet',
  description: 'a note for people',
} as const
type UrlKey = (typeof URL_KEYS)[number]
/**
 * `timeout` up to this is seconds: Cline and Roo Code write it in seconds (Roo Code allows 1..3600,
 * Cline's menu goes up to an hour). Gemini CLI writes milliseconds (600000 by default), and so does
 * anything larger here.
 */
const MAX_TIMEOUT_SECONDS = 3600

/** One server entry with the keys of other hosts mapped onto the platform's own. */
interface Entry {
  enabled: boolean
  type?: 'stdio' | 'http' | 'sse'
  /** `type` as written (`streamable-http`…), for problems. */
  writtenType?: string
  command?: string
  url?: { key: UrlKey; value: string }
}

/**
 * The enabled servers by namespace. `file` is the parsed servers file and `source` its absolute
 * path: a relative cwd or envFile is taken from its folder.
 */
export async function resolveServers(
  problems: Problems,
  secrets: Secrets,
  file: Record<string, unknown>,
  source: string,
): Promise<Record<string, ServerConfig> | undefined> {
  const root = serversRoot(problems, file)
  const entries = root === undefined ? undefined : file[root]
  if (root === undefined || !isObject(entries)) return undefined
  const namespaces = assignNamespaces(problems, root, Object.keys(entries))
  // Entries, made an object at the end: Object.fromEntries defines own keys, never a prototype.
  const servers: [string, ServerConfig][] = []
  for (const [name, entry] of Object.entries(entries)) {
    const namespace = namespaces.get(name)
    if (namespace === undefined || !problems.clean(pathOf(root, name))) continue
    const at = { keys: [root, name], name, namespace, dir: dirname(source) }
    const server = await resolveServer(problems, secrets, at, entry as ServerFile)
    if (server) servers.push([namespace, server])
  }
  return Object.fromEntries(servers)
}

/** The key that holds the servers; every other top-level key is warned about and left alone. */
function serversRoot(problems: Problems, file: Record<string, unknown>): Root | undefined {
  for (const key of Object.keys(file)) {
    if ((ROOTS as readonly string[]).includes(key)) continue
    problems.warn(
      pathOf(key),
      key === 'inputs'
        ? 'ignored: VS Code asks the user for these values, the platform cannot (where a server uses ${input:…}, write ${env:NAME})'
        : 'ignored: not about MCP servers (a setting of the host the file was copied from)',
    )
  }
  const present = ROOTS.filter((key) => file[key] !== undefined)
  if (present.length > 1) {
    problems.add('servers', "is VS Code's name for mcpServers, and the file has both: keep one")
    return undefined
  }
  if (present.length === 0) {
    problems.add('mcpServers', "is required (the MCP servers by name; VS Code's servers is read as well)")
    return undefined
  }
  return present[0]
}

interface Where {
  /** The path of the entry: [root, name]. */
  keys: string[]
  /** As written. */
  name: string
  namespace: string
  /** The servers file's folder. */
  dir: string
}

async function resolveServer(
  problems: Problems,
  secrets: Secrets,
  at: Where,
  s: ServerFile,
): Promise<ServerConfig | undefined> {
  const entry = mapped(problems, at, s)
  if (!entry || !checkServerShape(problems, at, entry, s)) return undefined
  // A disabled server is checked for shape but not started, so its secrets need not be set.
  if (!entry.enabled) return undefined
  const toolTimeout = toolTimeoutOf(problems, at, s)
  const autoApprove = s.auto_approve ?? s.autoApprove ?? s.alwaysAllow
  for (const [key, why] of Object.entries(IGNORED_KEYS)) {
    if (s[key as keyof typeof IGNORED_KEYS] !== undefined)
      problems.warn(pathOf(...at.keys, key), `ignored: ${why}`)
  }
  const tools = toolListOf(s)
  const common = {
    name: at.namespace,
    ...(at.namespace === at.name ? {} : { configured_name: at.name }),
    ...(toolTimeout === undefined ? {} : { tool_timeout: toolTimeout }),
    ...(tools === undefined ? {} : { tools }),
    ...(autoApprove === undefined ? {} : { auto_approve: autoApprove }),
  }
  return entry.command !== undefined
    ? stdioServer(problems, secrets, at, s, entry.command, common)
    : remoteServer(problems, secrets, at, s, entry, common)
}

/** The entry in the platform's own terms; undefined (and problems) when its keys disagree. */
function mapped(problems: Problems, at: Where, s: ServerFile): Entry | undefined {
  const before = problems.count
  const path = pathOf(...at.keys)
  if (s.enabled !== undefined && s.disabled !== undefined && s.enabled === s.disabled) {
    problems.add(
      pathOf(...at.keys, 'disabled'),
      `is ${s.disabled} but enabled is ${s.enabled}: they contradict each other; keep one`,
    )
  }
  const urls = URL_KEYS.filter((key) => s[key] !== undefined)
  if (urls.length > 1) {
    problems.add(path, `has ${both(urls)}, which are one setting (the server's URL): keep one`)
  }
  const approvals = APPROVE_KEYS.filter((key) => s[key] !== undefined)
  if (approvals.length > 1) {
    problems.add(path, `has ${both(approvals)}, which are one setting (tools that never ask): keep one`)
  }
  const toolLists = TOOL_LIST_KEYS.filter((key) => s[key] !== undefined)
  if (toolLists.length > 0 && s.tools !== undefined) {
    problems.add(path, `has ${both(['tools', ...toolLists])}, which say the same thing: keep tools`)
  }
  if (s.disabledTools !== undefined && (s.includeTools !== undefined || s.excludeTools !== undefined)) {
    problems.add(path, 'has disabledTools and includeTools/excludeTools, from two hosts: keep one')
  }
  const type = s.type ?? s.transportType
  if (
    s.type !== undefined &&
    s.transportType !== undefined &&
    transport(s.type) !== transport(s.transportType)
  ) {
    problems.add(
      path,
      `has type '${s.type}' and transportType '${s.transportType}', which disagree: keep type`,
    )
  }
  if (s.timeout !== undefined && s.tool_timeout !== undefined) {
    problems.add(path, 'has timeout and tool_timeout, which are one setting: keep tool_timeout (seconds)')
  }
  if (problems.count > before) return undefined
  const urlKey = urls[0]
  return {
    enabled: s.enabled ?? !(s.disabled ?? false),
    ...(type === undefined ? {} : { type: transport(type), writtenType: type }),
    ...(s.command === undefined ? {} : { command: s.command }),
    ...(urlKey === undefined ? {} : { url: { key: urlKey, value: s[urlKey]! } }),
  }
}

/** A `type` as the platform says it: `streamable-http` and `streamableHttp` are `http`. */
function transport(type: NonNullable<ServerFile['type']>): 'stdio' | 'http' | 'sse' {
  return type === 'stdio' || type === 'sse' ? type : 'http'
}

/**
 * `tools`, or other hosts' lists in its terms: `disabledTools` is a deny list; Gemini CLI's
 * `includeTools` an allow list, less what `excludeTools` names (which wins, as there).
 */
function toolListOf(s: ServerFile): ServerConfig['tools'] {
  if (s.tools !== undefined) return s.tools
  if (s.disabledTools !== undefined) return { deny: s.disabledTools }
  if (s.includeTools !== undefined) {
    const excluded = new Set(s.excludeTools ?? [])
    return { allow: s.includeTools.filter((tool) => !excluded.has(tool)) }
  }
  return s.excludeTools === undefined ? undefined : { deny: s.excludeTools }
}

/** `a and b`, `a, b and c`. */
function both(keys: readonly string[]): string {
  return `${keys.slice(0, -1).join(', ')} and ${keys.at(-1)}`
}

/** The rules between keys of one server; true when it is either a clean stdio or remote one. */
function checkServerShape(problems: Problems, at: Where, entry: Entry, s: ServerFile): boolean {
  const before = problems.count
  const path = pathOf(...at.keys)
  const url = entry.url?.key
  if (entry.command !== undefined && url !== undefined) {
    problems.add(
      path,
      `has both command and ${url}: set command for a stdio server or ${url} for a remote one, not both`,
    )
  } else if (entry.command === undefined && url === undefined) {
    problems.add(path, 'needs command (a stdio server) or url (a remote server)')
  } else if (entry.type === 'stdio' && url !== undefined) {
    problems.add(
      pathOf(...at.keys, 'type'),
      `is 'stdio' but the server has ${url} (stdio needs command; http or sse need url)`,
    )
  } else if (entry.type !== undefined && entry.type !== 'stdio' && entry.command !== undefined) {
    problems.add(
      pathOf(...at.keys, 'type'),
      `is '${entry.writtenType}' but the server has command (http or sse need url; stdio needs command)`,
    )
  } else {
    const misplaced = entry.command !== undefined ? REMOTE_ONLY : STDIO_ONLY
    for (const key of misplaced) {
      if (s[key] !== undefined) {
        problems.add(
          pathOf(...at.keys, key),
          `is only for a ${entry.command !== undefined ? 'remote (url)' : 'stdio (command)'} server`,
        )
      }
    }
  }
  if (s.tools?.allow !== undefined && s.tools.deny !== undefined) {
    problems.add(pathOf(...at.keys, 'tools'), 'must have allow or deny, not both')
  }
  return problems.count === before
}

/** `tool_timeout`, or `timeout` in the unit its host wrote it in (said in a warning). */
function toolTimeoutOf(problems: Problems, at: Where, s: ServerFile): number | undefined {
  if (s.timeout === undefined) return s.tool_timeout
  // Gemini CLI is the host that writes httpUrl: its timeout is milliseconds whatever its size.
  const millis = s.httpUrl !== undefined || s.timeout > MAX_TIMEOUT_SECONDS
  const seconds = millis ? s.timeout / 1000 : s.timeout
  problems.warn(
    pathOf(...at.keys, 'timeout'),
    millis
      ? `taken as ${s.timeout} milliseconds, ${seconds} s per tool call (as Gemini CLI writes it: above ${MAX_TIMEOUT_SECONDS}, or beside httpUrl); tool_timeout says seconds without a guess`
      : `taken as ${seconds} seconds per tool call (as Cline and Roo Code write it; above ${MAX_TIMEOUT_SECONDS} it would be milliseconds, as Gemini CLI writes it); tool_timeout says seconds without a guess`,
  )
  return seconds
}

type Common = Omit<StdioServerConfig, 'transport' | 'command' | 'args' | 'env' | 'cwd'>

async function stdioServer(
  problems: Problems,
  secrets: Secrets,
  at: Where,
  s: ServerFile,
  written: string,
  common: Common,
): Promise<StdioServerConfig | undefined> {
  // The command, its arguments and folder are ordinary settings, variables in them too (expand()).
  const command = secrets.expand(pathOf(...at.keys, 'command'), written, 'plain')
  const args = (s.args ?? []).map((arg, i) => secrets.expand(pathOf(...at.keys, 'args', i), arg, 'plain'))
  const cwd = s.cwd === undefined ? undefined : secrets.expand(pathOf(...at.keys, 'cwd'), s.cwd, 'plain')
  const fromFile = s.envFile === undefined ? [] : await envFileEntries(problems, secrets, at, s.envFile)
  // A literal env value is a secret only when its name says so; `DEBUG: "true"` is a setting.
  const env = resolveMap(secrets, [...at.keys, 'env'], s.env, (key) =>
    isSecretName(key) ? 'secret' : 'plain',
  )
  if (command === undefined || !isAll(args) || (s.cwd !== undefined && cwd === undefined)) return undefined
  if (!fromFile || !env) return undefined
  return {
    ...common,
    transport: 'stdio',
    command,
    args,
    // The entry's own env wins over its envFile, as a variable set by hand wins over a file.
    env: Object.fromEntries([...fromFile, ...Object.entries(env)]),
    ...(cwd === undefined ? {} : { cwd: resolve(at.dir, cwd) }),
  }
}

function isAll(values: (string | undefined)[]): values is string[] {
  return values.every((v) => v !== undefined)
}

/** The entries of the server's envFile (relative to the servers file's folder), or undefined. */
async function envFileEntries(
  problems: Problems,
  secrets: Secrets,
  at: Where,
  written: string,
): Promise<[string, string][] | undefined> {
  const path = pathOf(...at.keys, 'envFile')
  const expanded = secrets.expand(path, written, 'plain')
  if (expanded === undefined) return undefined
  const file = resolve(at.dir, expanded)
  // A path made with a variable is named as written: the variable's value is a secret.
  const entries = await readEnvFile(problems, path, file, expanded === written ? file : written)
  // Its values are secrets when their names say so, as those of `env` are.
  for (const [key, value] of entries ?? []) if (isSecretName(key)) secrets.add(value)
  return entries
}

function remoteServer(
  problems: Problems,
  secrets: Secrets,
  at: Where,
  s: ServerFile,
  entry: Entry,
  common: Common,
): RemoteServerConfig | undefined {
  const { key, value: written } = entry.url! // checkServerShape: a server without command has a url
  const path = pathOf(...at.keys, key)
  const rawUrl = secrets.expand(path, written, 'secret', true)
  const headers = resolveMap(secrets, [...at.keys, 'headers'], s.headers)
  if (rawUrl === undefined) return undefined
  // Say the URL only when it is written in the file, not when a variable gave it or a part of it.
  const url = httpUrl(problems, path, rawUrl, rawUrl === written ? rawUrl : undefined)
  if (!headers || url === undefined) return undefined
  return {
    ...common,
    transport: entry.type === 'sse' ? 'sse' : 'http',
    explicit: entry.type !== undefined,
    url,
    headers,
  }
}

/** Resolves each value of a headers/env map; `literal` says whether a written value is a secret. */
function resolveMap(
  secrets: Secrets,
  keys: string[],
  map: Record<string, string> | undefined,
  literal: (key: string) => 'secret' | 'plain' = () => 'secret',
): Record<string, string> | undefined {
  // A key may be any string, `__proto__` too: collected as entries, made own keys at the end.
  const result: [string, string][] = []
  let ok = true
  for (const [key, value] of Object.entries(map ?? {})) {
    const resolved = secrets.expand(pathOf(...keys, key), value, literal(key), true)
    if (resolved === undefined) ok = false
    else result.push([key, resolved])
  }
  return ok ? Object.fromEntries(result) : undefined
}
