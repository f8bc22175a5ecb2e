// servers_config.json beyond its schema: server names, the rules between one server's keys
// (stdio or remote, not both), secrets in its url, headers and env, its cwd made absolute.
import { resolve } from 'node:path'
import { isObject } from '../util/values.js'
import { httpUrl, type Problems } from './problems.js'
import { SERVER_NAME_PATTERN, type ServerFile } from './schema.js'
import { isEnvReference, isSecretName, type Secrets } from './secrets.js'
import { at } from './sources.js'
import type { ServerConfig } from './types.js'

const NAME_ALPHABET = SERVER_NAME_PATTERN.source.replace(/^\^|\$$/g, '')
// Keys that only make sense for one kind of server.
const STDIO_ONLY = ['args', 'env', 'cwd'] as const
const REMOTE_ONLY = ['headers'] as const
// Names every JavaScript object answers to: a server so named would be lost or mistaken for the
// object's own machinery wherever servers are looked up by name.
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype'])

/** The enabled servers by name; `dir` is the file's folder, which a relative cwd is taken from. */
export function resolveServers(
  problems: Problems,
  secrets: Secrets,
  file: unknown,
  dir: string,
): Record<string, ServerConfig> | undefined {
  const entries = at(file, 'mcpServers')
  if (!isObject(entries)) return undefined
  // Entries, made an object at the end: Object.fromEntries defines own keys, never a prototype.
  const servers: [string, ServerConfig][] = []
  for (const [name, entry] of Object.entries(entries)) {
    const path = `mcpServers.${name}`
    if (RESERVED_NAMES.has(name)) {
      problems.add(
        path,
        `server name '${name}' is reserved (a property every JavaScript object has); choose another`,
      )
      continue
    }
    // The name becomes the tools' namespace (SERVER__TOOL), so it must stay within that alphabet.
    if (!SERVER_NAME_PATTERN.test(name)) {
      problems.add(path, `server name must match ${NAME_ALPHABET}, got '${name}'`)
      continue
    }
    if (!problems.clean(path)) continue
    const server = resolveServer(problems, secrets, name, entry as ServerFile, dir)
    if (server) servers.push([name, server])
  }
  return Object.fromEntries(servers)
}

function resolveServer(
  problems: Problems,
  secrets: Secrets,
  name: string,
  s: ServerFile,
  dir: string,
): ServerConfig | undefined {
  const path = `mcpServers.${name}`
  if (!checkServerShape(problems, path, s)) return undefined
  // A disabled server is checked for shape but not started, so its secrets need not be set.
  if (s.enabled === false) return undefined
  const optional = {
    ...(s.tool_timeout === undefined ? {} : { tool_timeout: s.tool_timeout }),
    ...(s.tools === undefined ? {} : { tools: s.tools }),
  }
  if (s.command !== undefined) {
    // A literal env value is a secret only when its name says so; `DEBUG: "true"` is a setting.
    const env = resolveMap(secrets, `${path}.env`, s.env, (key) => (isSecretName(key) ? 'secret' : 'plain'))
    if (!env) return undefined
    return {
      name,
      transport: 'stdio',
      command: s.command,
      args: s.args ?? [],
      env,
      ...(s.cwd === undefined ? {} : { cwd: resolve(dir, s.cwd) }),
      ...optional,
    }
  }
  const headers = resolveMap(secrets, `${path}.headers`, s.headers)
  const written = s.url! // checkServerShape: a server without command has url
  const rawUrl = secrets.resolve(`${path}.url`, written)
  if (rawUrl === undefined) return undefined
  // Say the URL only when it is written in the file, not when it came from a secret variable.
  const url = httpUrl(problems, `${path}.url`, rawUrl, isEnvReference(written) ? undefined : rawUrl)
  if (!headers || url === undefined) return undefined
  return {
    name,
    transport: s.type === 'sse' ? 'sse' : 'http',
    explicit: s.type !== undefined,
    url,
    headers,
    ...optional,
  }
}

/** The rules between keys of one server; true when it is either a clean stdio or remote one. */
function checkServerShape(problems: Problems, path: string, s: ServerFile): boolean {
  const before = problems.count
  if (s.command !== undefined && s.url !== undefined) {
    problems.add(
      path,
      'has both command and url: set command for a stdio server or url for a remote one, not both',
    )
  } else if (s.command === undefined && s.url === undefined) {
    problems.add(path, 'needs command (a stdio server) or url (a remote server)')
  } else if (s.type === 'stdio' && s.url !== undefined) {
    problems.add(
      `${path}.type`,
      "is 'stdio' but the server has url (stdio needs command; http or sse need url)",
    )
  } else if ((s.type === 'http' || s.type === 'sse') && s.command !== undefined) {
    problems.add(
      `${path}.type`,
      `is '${s.type}' but the server has command (http or sse need url; stdio needs command)`,
    )
  } else {
    const misplaced = s.command !== undefined ? REMOTE_ONLY : STDIO_ONLY
    for (const key of misplaced) {
      if (s[key] !== undefined) {
        problems.add(
          `${path}.${key}`,
          `is only for a ${s.command !== undefined ? 'remote (url)' : 'stdio (command)'} server`,
        )
      }
    }
  }
  if (s.tools?.allow !== undefined && s.tools.deny !== undefined) {
    problems.add(`${path}.tools`, 'must have allow or deny, not both')
  }
  return problems.count === before
}

/** Resolves each value of a headers/env map; `literal` says whether a written value is a secret. */
function resolveMap(
  secrets: Secrets,
  path: string,
  map: Record<string, string> | undefined,
  literal: (key: string) => 'secret' | 'plain' = () => 'secret',
): Record<string, string> | undefined {
  // A key may be any string, `__proto__` too: collected as entries, made own keys at the end.
  const result: [string, string][] = []
  let ok = true
  for (const [key, value] of Object.entries(map ?? {})) {
    const resolved = secrets.resolve(`${path}.${key}`, value, literal(key))
    if (resolved === undefined) ok = false
    else result.push([key, resolved])
  }
  return ok ? Object.fromEntries(result) : undefined
}
