// Reads config.yaml and servers_config.json, checks them against the schemas and the rules the
// schemas cannot say, resolves `env:` secrets and relative paths, and returns PlatformConfig. Every
// problem of both files is collected before anything is thrown, so one start shows them all.
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { TypeCompiler, ValueErrorType, type TypeCheck } from '@sinclair/typebox/compiler'
import YAML from 'yaml'
import { ConfigError, type ConfigProblem } from '../errors.js'
import { KNOWN_PROVIDERS } from '../llm/known-providers.js'
import {
  ConfigFileSchema,
  LOG_LEVELS,
  SERVER_NAME_PATTERN,
  ServersFileSchema,
  type ConfigFile,
  type ProviderFile,
  type ServerFile,
  type TSchema,
} from './schema.js'
import type { PlatformConfig, ProviderConfig, ServerConfig, StoreConfig } from './types.js'
import { isObject } from '../util/values.js'

export interface LoadConfigOptions {
  configPath: string
  serversPath: string
  env: Record<string, string | undefined>
  /** Overrides `logging.level` (LOG_LEVEL). */
  logLevel?: string
}

type Env = Record<string, string | undefined>

const checkConfigFile = TypeCompiler.Compile(ConfigFileSchema)
const checkServersFile = TypeCompiler.Compile(ServersFileSchema)

const KNOWN_NAMES = Object.keys(KNOWN_PROVIDERS).join(', ')
const ENV_REF = /^env:(.*)$/s
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const NAME_ALPHABET = SERVER_NAME_PATTERN.source.replace(/^\^|\$$/g, '')
// Shorter values would redact ordinary words and numbers from every log line.
const MIN_SECRET_LENGTH = 4

/** Where the two files are: CLI flag, then environment, then the working directory. */
export function defaultPaths(
  env: Env,
  cwd: string,
  argv: { config?: string; servers?: string } = {},
): { configPath: string; serversPath: string } {
  // An empty flag or variable counts as not given.
  const pick = (fallback: string, ...given: (string | undefined)[]) => given.find((g) => g) ?? fallback
  return {
    configPath: resolve(cwd, pick('config.yaml', argv.config, env.MCP_CONFIG_PATH)),
    serversPath: resolve(cwd, pick('servers_config.json', argv.servers, env.MCP_SERVERS_CONFIG_PATH)),
  }
}

export async function loadConfig(opts: LoadConfigOptions): Promise<PlatformConfig> {
  const files = { config: resolve(opts.configPath), servers: resolve(opts.serversPath) }
  const ctx = new Context(opts.env)
  const [configText, serversText] = await Promise.all([
    readSource(ctx, files.config, '--config or MCP_CONFIG_PATH'),
    readSource(ctx, files.servers, '--servers or MCP_SERVERS_CONFIG_PATH'),
  ])

  const configFile = configText === undefined ? undefined : parseYaml(ctx, files.config, configText)
  const configValid =
    configFile !== undefined && checkSchema(ctx, checkConfigFile, configFile, basename(files.config))
  const serversFile = serversText === undefined ? undefined : parseJson(ctx, files.servers, serversText)
  const serversValid =
    serversFile !== undefined && checkSchema(ctx, checkServersFile, serversFile, basename(files.servers))

  // Semantic checks run on whatever parts of a file are valid, even when other parts are not.
  const settings = configFile === undefined ? undefined : resolveSettings(ctx, configFile, files.config, opts)
  const servers =
    serversFile === undefined ? undefined : resolveServers(ctx, serversFile, dirname(files.servers))
  if (!configValid || !serversValid || ctx.problems.length > 0 || !settings || !servers) {
    throw new ConfigError(ctx.problems)
  }
  return {
    ...settings,
    servers,
    debug_tokens: opts.env.DEBUG_TOKENS === '1',
    files,
    secrets: [...ctx.secrets],
  }
}

/** A credential after an HTTP authentication scheme (`Bearer TOKEN`, `Basic …`, `Token …`). */
const AUTH_SCHEME = /^(?:Bearer|Basic|Token|Bot|Digest|ApiKey)\s+(\S+)$/i

/** What one load collects: problems, secret values, and the environment secrets come from. */
class Context {
  readonly problems: ConfigProblem[] = []
  readonly secrets = new Set<string>()
  constructor(readonly env: Env) {}

  add(path: string, message: string): void {
    this.problems.push({ path, message })
  }

  /** True when no problem was found at `path`, inside it, or at a parent of it. */
  clean(path: string): boolean {
    return !this.problems.some(
      (p) => p.path === path || p.path.startsWith(`${path}.`) || path.startsWith(`${p.path}.`),
    )
  }

  keepSecret(value: string): void {
    if (value.length >= MIN_SECRET_LENGTH) this.secrets.add(value)
    // `Bearer sk-…`: a server that quotes the credential alone must not get it past redaction.
    const credential = AUTH_SCHEME.exec(value)?.[1]
    if (credential !== undefined && credential.length >= MIN_SECRET_LENGTH) this.secrets.add(credential)
  }

  /** A secret field's value: `env:NAME` from the environment, anything else as written. */
  secret(path: string, value: string): string | undefined {
    const ref = ENV_REF.exec(value)
    if (!ref) {
      this.keepSecret(value)
      return value
    }
    const name = ref[1] ?? ''
    if (!ENV_NAME.test(name)) {
      this.add(
        path,
        `'env:${name}' is not a valid reference (expected env:NAME, NAME made of A-Z, a-z, 0-9, _)`,
      )
      return undefined
    }
    // Own keys only: `env:constructor` must not find Object.prototype.constructor.
    const resolved = Object.hasOwn(this.env, name) ? this.env[name] : undefined
    if (resolved === undefined || resolved === '') {
      this.add(path, `environment variable ${name} is not set or is empty`)
      return undefined
    }
    this.keepSecret(resolved)
    return resolved
  }
}

// ---------------------------------------------------------------------------------------------
// Files

async function readSource(ctx: Context, file: string, override: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException
    ctx.add(
      basename(file),
      code === 'ENOENT'
        ? `file not found: ${file} (give its path with ${override})`
        : `cannot be read: ${message}`,
    )
    return undefined
  }
}

function parseYaml(ctx: Context, file: string, text: string): unknown {
  const doc = YAML.parseDocument(text)
  if (doc.errors.length > 0) {
    // The parser often reports one mistake twice at the same place; one line per place is enough.
    const seen = new Set<string>()
    for (const error of doc.errors) {
      const where = error.linePos ? `${error.linePos[0].line}:${error.linePos[0].col}` : error.message
      if (seen.has(where)) continue
      seen.add(where)
      ctx.add(basename(file), `YAML syntax error: ${firstLine(error.message)}`)
    }
    return undefined
  }
  try {
    return doc.toJS()
  } catch (err) {
    // e.g. an alias to an anchor that does not exist
    ctx.add(basename(file), `YAML error: ${(err as Error).message}`)
    return undefined
  }
}

function parseJson(ctx: Context, file: string, text: string): unknown {
  const source = text.replace(/^\uFEFF/, '')
  try {
    return JSON.parse(source) as unknown
  } catch (err) {
    // V8's message may quote the source (possibly a secret); keep only its first clause.
    const message = (err as Error).message.replace(/, (?:"|\.\.\.")[\s\S]*is not valid JSON$/, '')
    const where = jsonErrorPosition(source, message)
    // The offset is said as line and column instead.
    const what = message.replace(/ (?:in JSON )?at position \d+.*$/, '')
    ctx.add(
      basename(file),
      `JSON syntax error${where ? ` at line ${where.line}, column ${where.col}` : ''}: ${what}`,
    )
    return undefined
  }
}

/** Line and column of a JSON.parse error, which V8 gives as an offset, or not at all. */
function jsonErrorPosition(text: string, message: string): { line: number; col: number } | undefined {
  const offset = /at position (\d+)/.exec(message)?.[1]
  if (offset !== undefined) return lineCol(text, Number(offset))
  if (/Unexpected end of JSON input/.test(message)) return lineCol(text, text.length)
  // V8 names the token but not where it is ("Unexpected token 'T'"); the YAML parser in JSON mode
  // stops at the same bad token and knows its place.
  return YAML.parseDocument(text, { schema: 'json' }).errors[0]?.linePos?.[0]
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return { line, col: offset - before.lastIndexOf('\n') }
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/:$/, '')
}

// ---------------------------------------------------------------------------------------------
// Schema problems, phrased as "what is wrong, what would be right, what was got"

// Values under these paths are secrets: a problem says what type was got, never the value.
const SECRET_PATHS = [
  /^llm\.providers\.[^.]+\.api_key$/,
  /^store\.url$/,
  /^auth\.api_keys\.\d+\.key$/,
  /^mcpServers\.[^.]+\.(url|headers\..+|env\..+)$/,
]

/** Adds a problem per wrong path; true when the value fits the schema. */
function checkSchema<T extends TSchema>(
  ctx: Context,
  check: TypeCheck<T>,
  value: unknown,
  fileName: string,
): boolean {
  if (check.Check(value)) return true
  const seen = new Set<string>()
  for (const error of check.Errors(value)) {
    const path = dottedPath(error.path) || fileName
    // TypeBox reports a missing field twice (required, then wrong type): one line per path.
    if (seen.has(path)) continue
    seen.add(path)
    if (error.type === ValueErrorType.ObjectAdditionalProperties) {
      ctx.add(path, unknownKey(error.schema))
    } else {
      ctx.add(path, valueProblem(error.schema, error.value, isSecretPath(path)))
    }
  }
  return false
}

/** `/llm/providers/groq/temperature` (JSON Pointer) -> `llm.providers.groq.temperature`. */
export function dottedPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.')
}

function isSecretPath(path: string): boolean {
  return SECRET_PATHS.some((pattern) => pattern.test(path))
}

function unknownKey(parent: TSchema): string {
  const keys = Object.keys((parent.properties as Record<string, unknown> | undefined) ?? {})
  return `unknown key (expected one of: ${keys.join(', ')})`
}

/**
 * The message for a value that does not fit `schema` (undefined: a missing required field).
 * Exported for the environment check, which gets its failures from ajv but words them the same.
 */
export function valueProblem(schema: TSchema, value: unknown, secret = false): string {
  if (value === undefined) return `is required (${expectation(schema)})`
  const got = `, got ${show(value, secret)}`
  if (literals(schema)) return `must be ${expectation(schema)}${got}`
  if (!hasType(schema, value)) return `must be ${expectation(schema)}${got}`
  // Right type, a constraint broken: say only the constraint.
  if (schema.type === 'integer' || schema.type === 'number') return `must be${range(schema)}${got}`
  if (schema.type === 'string') {
    if (typeof schema.minLength === 'number' && (value as string).length < schema.minLength) {
      return 'must not be empty'
    }
    if (typeof schema.pattern === 'string') return `must match ${schema.pattern}${got}`
  }
  if (schema.type === 'array' && typeof schema.minItems === 'number') {
    return `must have at least ${schema.minItems} ${schema.minItems === 1 ? 'entry' : 'entries'}`
  }
  return `must be ${expectation(schema)}${got}`
}

/** What a value of `schema` looks like, as a noun phrase. */
function expectation(schema: TSchema): string {
  const values = literals(schema)
  if (values) return `one of ${values.join(', ')}`
  switch (schema.type) {
    case 'integer':
      return `an integer${range(schema)}`
    case 'number':
      return `a number${range(schema)}`
    case 'string':
      if (typeof schema.pattern === 'string') return `a string matching ${schema.pattern}`
      return typeof schema.minLength === 'number' && schema.minLength > 0 ? 'a non-empty string' : 'a string'
    case 'boolean':
      return 'true or false'
    case 'array':
      return 'a list'
    case 'object': {
      const keys = Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {})
      return keys.length > 0 ? `an object with ${keys.join(', ')}` : 'an object'
    }
    default:
      return 'a value of another type'
  }
}

function range(schema: TSchema): string {
  const { minimum, maximum, exclusiveMinimum } = schema as {
    minimum?: number
    maximum?: number
    exclusiveMinimum?: number
  }
  if (minimum !== undefined && maximum !== undefined) return ` between ${minimum} and ${maximum}`
  if (exclusiveMinimum !== undefined) return ` > ${exclusiveMinimum}`
  if (minimum !== undefined) return ` >= ${minimum}`
  if (maximum !== undefined) return ` <= ${maximum}`
  return ''
}

/** The allowed values of a union of literals (`Literals([...])` in schema.ts), else undefined. */
function literals(schema: TSchema): string[] | undefined {
  const options = schema.anyOf as TSchema[] | undefined
  if (!Array.isArray(options) || !options.every((o) => typeof o.const === 'string')) return undefined
  return options.map((o) => o.const as string)
}

function hasType(schema: TSchema, value: unknown): boolean {
  switch (schema.type) {
    case 'integer':
      return Number.isInteger(value)
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'string':
    case 'boolean':
      return typeof value === schema.type
    case 'array':
      return Array.isArray(value)
    case 'object':
      return isObject(value)
    default:
      return true
  }
}

function show(value: unknown, secret: boolean): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (isObject(value)) return 'an object'
  if (secret) return `a ${typeof value}`
  if (typeof value === 'string') return `'${value.length > 60 ? `${value.slice(0, 57)}...` : value}'`
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value
}

function at(root: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), root)
}

/** An http(s) URL without trailing slash, or undefined (and a problem). */
function httpUrl(ctx: Context, path: string, value: string, shown: string | undefined): string | undefined {
  let protocol: string | undefined
  try {
    protocol = new URL(value).protocol
  } catch {
    protocol = undefined
  }
  if (protocol === 'http:' || protocol === 'https:') return value.replace(/\/+$/, '')
  ctx.add(path, `must be an http(s) URL${shown === undefined ? '' : `, got '${shown}'`}`)
  return undefined
}

// ---------------------------------------------------------------------------------------------
// config.yaml

type Settings = Omit<PlatformConfig, 'servers' | 'debug_tokens' | 'files' | 'secrets'>

/**
 * Semantic checks and resolution of config.yaml. Each part is checked only when the schema found
 * nothing wrong inside it; a result comes out only when nothing was wrong at all.
 */
function resolveSettings(
  ctx: Context,
  file: unknown,
  configPath: string,
  opts: LoadConfigOptions,
): Settings | undefined {
  const provider = resolveLlm(ctx, file)
  checkContext(ctx, file)
  const store = resolveStore(ctx, file, dirname(configPath), basename(configPath))
  const auth = resolveAuth(ctx, file)
  const level = resolveLogLevel(ctx, file, opts.logLevel)
  if (ctx.problems.length > 0 || !provider || !store || !level) return undefined

  const config = file as ConfigFile
  return {
    llm: { active: config.llm.active, provider, request: config.llm.request },
    chat: config.chat,
    store,
    websocket: config.websocket,
    mcp: config.mcp,
    logging: { level },
    ...(auth ? { auth } : {}),
  }
}

/** Checks every provider; returns the active one, resolved. */
function resolveLlm(ctx: Context, file: unknown): ProviderConfig | undefined {
  const providers = at(file, 'llm.providers')
  if (!isObject(providers)) return undefined
  const active = at(file, 'llm.active')
  const activeOk = typeof active === 'string' && ctx.clean('llm.active')
  if (activeOk && !Object.hasOwn(providers, active)) {
    const names = Object.keys(providers)
    ctx.add(
      'llm.active',
      `must be a key of llm.providers (${names.join(', ') || 'none defined'}), got '${active}'`,
    )
  }
  let resolved: ProviderConfig | undefined
  for (const [name, provider] of Object.entries(providers)) {
    const path = `llm.providers.${name}`
    if (!ctx.clean(path)) continue
    const result = resolveProvider(ctx, name, provider as ProviderFile, activeOk && name === active)
    if (result) resolved = result
  }
  return resolved
}

function resolveProvider(
  ctx: Context,
  name: string,
  p: ProviderFile,
  active: boolean,
): ProviderConfig | undefined {
  const path = `llm.providers.${name}`
  const known = Object.hasOwn(KNOWN_PROVIDERS, name) ? KNOWN_PROVIDERS[name] : undefined
  if (!known) {
    const unknown = `for a provider not named ${KNOWN_NAMES}`
    if (p.type === undefined) {
      ctx.add(`${path}.type`, `is required ${unknown} (openai or anthropic: its wire protocol)`)
    }
    if (p.base_url === undefined) {
      ctx.add(`${path}.base_url`, `is required ${unknown} (its endpoint, e.g. http://127.0.0.1:11434/v1)`)
    }
  }
  const type = p.type ?? known?.type
  const baseUrl =
    p.base_url === undefined ? known?.base_url : httpUrl(ctx, `${path}.base_url`, p.base_url, p.base_url)
  // The messages API takes 0..1, not the 0..2 of chat completions: refused here, not at the first chat.
  if (type === 'anthropic' && p.temperature > 1) {
    ctx.add(`${path}.temperature`, `must be between 0 and 1 for the anthropic wire, got ${p.temperature}`)
  }

  // Only the active provider's secret is needed to start; the others may lack theirs.
  if (!active) return undefined
  let apiKey: string | undefined
  if (p.api_key !== undefined) {
    apiKey = ctx.secret(`${path}.api_key`, p.api_key)
  } else if (known) {
    ctx.add(`${path}.api_key`, `is required for ${name} (e.g. env:${name.toUpperCase()}_API_KEY)`)
  }

  if (type === undefined || baseUrl === undefined) return undefined
  return {
    name,
    type,
    base_url: baseUrl,
    ...(apiKey === undefined ? {} : { api_key: apiKey }),
    model: p.model,
    temperature: p.temperature,
    max_tokens: p.max_tokens,
    top_p: p.top_p,
  }
}

function checkContext(ctx: Context, file: unknown): void {
  if (!ctx.clean('chat.service.context')) return
  const { max_tokens, reserve_tokens } = (file as ConfigFile).chat.service.context
  if (reserve_tokens >= max_tokens) {
    ctx.add(
      'chat.service.context.reserve_tokens',
      `must be less than chat.service.context.max_tokens (${max_tokens}), got ${reserve_tokens}`,
    )
  }
}

// Which optional store keys each store type uses; any other is a mistake, not a silent no-op.
const STORE_KEYS = { memory: [], jsonl: ['path', 'fsync'], postgres: ['url'] } as const

function resolveStore(ctx: Context, file: unknown, dir: string, fileName: string): StoreConfig | undefined {
  if (!ctx.clean('store')) return undefined
  const store = (file as ConfigFile).store
  const needs: readonly string[] = STORE_KEYS[store.type]
  for (const key of ['path', 'fsync', 'url'] as const) {
    if (store[key] !== undefined && !needs.includes(key)) {
      const users = Object.entries(STORE_KEYS).filter(([, keys]) => (keys as readonly string[]).includes(key))
      ctx.add(
        `store.${key}`,
        `is only used by type ${users.map(([type]) => type).join(', ')}, not ${store.type}`,
      )
    }
  }
  switch (store.type) {
    case 'memory':
      return { type: 'memory' }
    case 'jsonl': {
      if (store.path === undefined) {
        ctx.add('store.path', `is required for type jsonl (the event log file, relative to ${fileName})`)
      }
      if (store.fsync === undefined) ctx.add('store.fsync', 'is required for type jsonl (true or false)')
      if (store.path === undefined || store.fsync === undefined) return undefined
      return { type: 'jsonl', path: resolve(dir, store.path), fsync: store.fsync }
    }
    case 'postgres': {
      if (store.url === undefined) {
        ctx.add('store.url', 'is required for type postgres (e.g. env:DATABASE_URL)')
        return undefined
      }
      const url = ctx.secret('store.url', store.url)
      return url === undefined ? undefined : { type: 'postgres', url }
    }
  }
}

function resolveAuth(ctx: Context, file: unknown): PlatformConfig['auth'] {
  if (at(file, 'auth') === undefined || !ctx.clean('auth')) return undefined
  const entries = (file as ConfigFile).auth!.api_keys
  const names = new Map<string, number>()
  const keys = new Map<string, number>()
  const api_keys: { name: string; key: string }[] = []
  entries.forEach(({ name, key }, i) => {
    const path = `auth.api_keys.${i}`
    const sameName = names.get(name)
    if (sameName === undefined) names.set(name, i)
    else ctx.add(`${path}.name`, `must be unique, got '${name}' again (also auth.api_keys.${sameName}.name)`)
    const value = ctx.secret(`${path}.key`, key)
    if (value === undefined) return
    const sameKey = keys.get(value)
    if (sameKey === undefined) keys.set(value, i)
    else ctx.add(`${path}.key`, `must be unique, got the same key as auth.api_keys.${sameKey}.key`)
    api_keys.push({ name, key: value })
  })
  return { api_keys }
}

function resolveLogLevel(
  ctx: Context,
  file: unknown,
  override: string | undefined,
): ConfigFile['logging']['level'] | undefined {
  if (override !== undefined) {
    if ((LOG_LEVELS as readonly string[]).includes(override)) {
      return override as ConfigFile['logging']['level']
    }
    ctx.add('env.LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got '${override}'`)
    return undefined
  }
  return ctx.clean('logging.level') ? (file as ConfigFile).logging.level : undefined
}

// ---------------------------------------------------------------------------------------------
// servers_config.json

function resolveServers(ctx: Context, file: unknown, dir: string): Record<string, ServerConfig> | undefined {
  const entries = at(file, 'mcpServers')
  if (!isObject(entries)) return undefined
  const servers: Record<string, ServerConfig> = {}
  for (const [name, entry] of Object.entries(entries)) {
    const path = `mcpServers.${name}`
    // The name becomes the tools' namespace (SERVER__TOOL), so it must stay within that alphabet.
    if (!SERVER_NAME_PATTERN.test(name)) {
      ctx.add(path, `server name must match ${NAME_ALPHABET}, got '${name}'`)
      continue
    }
    if (!ctx.clean(path)) continue
    const server = resolveServer(ctx, name, entry as ServerFile, dir)
    if (server) servers[name] = server
  }
  return servers
}

// Keys that only make sense for one kind of server.
const STDIO_ONLY = ['args', 'env', 'cwd'] as const
const REMOTE_ONLY = ['headers'] as const

function resolveServer(ctx: Context, name: string, s: ServerFile, dir: string): ServerConfig | undefined {
  const path = `mcpServers.${name}`
  if (!checkServerShape(ctx, path, s)) return undefined
  // A disabled server is checked for shape but not started, so its secrets need not be set.
  if (s.enabled === false) return undefined
  const optional = {
    ...(s.tool_timeout === undefined ? {} : { tool_timeout: s.tool_timeout }),
    ...(s.tools === undefined ? {} : { tools: s.tools }),
  }
  if (s.command !== undefined) {
    const env = resolveMap(ctx, `${path}.env`, s.env)
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
  const headers = resolveMap(ctx, `${path}.headers`, s.headers)
  const written = s.url! // checkServerShape: a server without command has url
  const rawUrl = ctx.secret(`${path}.url`, written)
  if (rawUrl === undefined) return undefined
  // Say the URL only when it is written in the file, not when it came from a secret variable.
  const url = httpUrl(ctx, `${path}.url`, rawUrl, ENV_REF.test(written) ? undefined : rawUrl)
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
function checkServerShape(ctx: Context, path: string, s: ServerFile): boolean {
  const before = ctx.problems.length
  if (s.command !== undefined && s.url !== undefined) {
    ctx.add(
      path,
      'has both command and url: set command for a stdio server or url for a remote one, not both',
    )
  } else if (s.command === undefined && s.url === undefined) {
    ctx.add(path, 'needs command (a stdio server) or url (a remote server)')
  } else if (s.type === 'stdio' && s.url !== undefined) {
    ctx.add(`${path}.type`, "is 'stdio' but the server has url (stdio needs command; http or sse need url)")
  } else if ((s.type === 'http' || s.type === 'sse') && s.command !== undefined) {
    ctx.add(
      `${path}.type`,
      `is '${s.type}' but the server has command (http or sse need url; stdio needs command)`,
    )
  } else {
    const misplaced = s.command !== undefined ? REMOTE_ONLY : STDIO_ONLY
    for (const key of misplaced) {
      if (s[key] !== undefined) {
        ctx.add(
          `${path}.${key}`,
          `is only for a ${s.command !== undefined ? 'remote (url)' : 'stdio (command)'} server`,
        )
      }
    }
  }
  if (s.tools?.allow !== undefined && s.tools.deny !== undefined) {
    ctx.add(`${path}.tools`, 'must have allow or deny, not both')
  }
  return ctx.problems.length === before
}

/** Resolves each value of a headers/env map as a secret. */
function resolveMap(
  ctx: Context,
  path: string,
  map: Record<string, string> | undefined,
): Record<string, string> | undefined {
  const result: Record<string, string> = {}
  let ok = true
  for (const [key, value] of Object.entries(map ?? {})) {
    const resolved = ctx.secret(`${path}.${key}`, value)
    if (resolved === undefined) ok = false
    else result[key] = resolved
  }
  return ok ? result : undefined
}
