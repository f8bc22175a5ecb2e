// Server names and the namespaces of their tools. A name of SERVER_NAME_PATTERN is its own
// namespace; any other (dots, slashes, spaces, or the long repository paths Cline writes as names)
// is mapped to a safe one that depends on the name alone, so it stays the same from one start to
// the next. The namespace is what tool names (SERVER__TOOL), /ready and list_tools show.
import { createHash } from 'node:crypto'
import { pathOf, type Problems } from './problems.js'
import { SERVER_NAME_PATTERN } from './schema.js'

const MAX_NAMESPACE = 32
const HASH_LENGTH = 6
const NAME_ALPHABET = SERVER_NAME_PATTERN.source.replace(/^\^|\$$/g, '')
// Names every JavaScript object answers to: a server so named would be lost or mistaken for the
// object's own machinery wherever servers are looked up by name.
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * The namespace of a server name: the name itself when it fits; else each character outside
 * `[A-Za-z0-9_-]` becomes `_`, and a result longer than 32 keeps its end (where names written as
 * paths, `github.com/…/src/github`, say which server it is), from a word's start, plus a hash of
 * the whole name (two long names with the same end stay apart). A name with characters outside
 * printable ASCII always gets the hash.
 */
export function serverNamespace(name: string): string {
  if (SERVER_NAME_PATTERN.test(name)) return name
  const safe = name.replace(/[^A-Za-z0-9_-]/g, '_')
  // Names in other scripts (`文件`, `工具`) would all become underscores and clash: a hash keeps
  // them apart. ASCII punctuation (`demo.local`) stays readable as it is.
  const foreign = /[^\x20-\x7e]/.test(name)
  if (safe.length <= MAX_NAMESPACE && !foreign) return safe
  const hash = createHash('sha256').update(name).digest('hex').slice(0, HASH_LENGTH)
  const room = MAX_NAMESPACE - HASH_LENGTH - 1
  const head = safe.length <= room ? safe : endOf(safe, room)
  // Nothing readable left (all underscores): the hash alone, after a word that says what it is.
  return /[A-Za-z0-9]/.test(head) ? `${head}_${hash}` : `server_${hash}`
}

/** The last `room` characters of `safe`, starting at a word rather than in the middle of one. */
function endOf(safe: string, room: number): string {
  const end = safe.slice(-room)
  const cutInWord = !/[_-]/.test(safe.charAt(safe.length - room - 1))
  const fromWord = cutInWord ? end.slice(end.search(/[_-]/) + 1) : end
  return fromWord.replace(/^[_-]+/, '') || end
}

/**
 * The namespace of each configured server name (`root` is `mcpServers` or `servers`), disabled
 * servers too: enabling one later must not bring a clash. A name that cannot be used, or whose
 * namespace another name already has, is a problem and gets none; a mapped name is a warning that
 * says the namespace.
 */
export function assignNamespaces(problems: Problems, root: string, names: string[]): Map<string, string> {
  const namespaces = new Map<string, string>()
  const owners = new Map<string, string>()
  for (const name of names) {
    const path = pathOf(root, name)
    if (name === '') {
      problems.add(path, `server name must not be empty (it names the server's tools: ${NAME_ALPHABET})`)
      continue
    }
    const namespace = serverNamespace(name)
    if (RESERVED_NAMES.has(namespace)) {
      problems.add(
        path,
        name === namespace
          ? `server name '${name}' is reserved (a property every JavaScript object has); choose another`
          : `server name maps to the namespace '${namespace}', which is reserved (a property every JavaScript object has); choose another`,
      )
      continue
    }
    const owner = owners.get(namespace)
    if (owner !== undefined) {
      problems.add(
        path,
        `server name maps to the namespace '${namespace}', which server '${owner}' has already; rename one of them`,
      )
      continue
    }
    owners.set(namespace, name)
    namespaces.set(name, namespace)
    if (namespace !== name) {
      problems.warn(
        path,
        `server name is not ${NAME_ALPHABET}: its tools, /ready and list_tools call it '${namespace}'`,
      )
    }
  }
  return namespaces
}
