// config.yaml beyond its schema: the rules between fields, known providers filled in, the active
// provider's secret, the store by type, auth keys, the log level. Each part is checked only when
// the schema found nothing wrong inside it.
import { basename, dirname, resolve } from 'node:path'
import { KNOWN_PROVIDERS } from '../llm/known-providers.js'
import { requestFields } from '../llm/models.js'
import { isObject } from '../util/values.js'
import { httpUrl, type Problems } from './problems.js'
import { LOG_LEVELS, type ConfigFile, type ProviderFile } from './schema.js'
import type { Secrets } from './secrets.js'
import { at } from './sources.js'
import type { PlatformConfig, ProviderConfig, StoreConfig, Wire } from './types.js'

/** What config.yaml gives, resolved: everything but what comes from elsewhere. */
export type Settings = Omit<PlatformConfig, 'servers' | 'debug_tokens' | 'files' | 'secrets' | 'warnings'>

const KNOWN_NAMES = Object.keys(KNOWN_PROVIDERS).join(', ')

/** The settings of config.yaml; a result comes out only when nothing was wrong at all. */
export function resolveSettings(
  problems: Problems,
  secrets: Secrets,
  file: unknown,
  configPath: string,
  logLevel: string | undefined,
  providerSecret: 'required' | 'unused' = 'required',
): Settings | undefined {
  const provider = resolveLlm(problems, secrets, file, providerSecret)
  checkContext(problems, file)
  const store = resolveStore(problems, secrets, file, dirname(configPath), basename(configPath))
  const auth = resolveAuth(problems, secrets, file)
  const level = resolveLogLevel(problems, file, logLevel)
  if (problems.count > 0 || !provider || !store || !level) return undefined

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
function resolveLlm(
  problems: Problems,
  secrets: Secrets,
  file: unknown,
  providerSecret: 'required' | 'unused',
): ProviderConfig | undefined {
  const providers = at(file, 'llm.providers')
  if (!isObject(providers)) return undefined
  const active = at(file, 'llm.active')
  const activeOk = typeof active === 'string' && problems.clean('llm.active')
  if (activeOk && !Object.hasOwn(providers, active)) {
    const names = Object.keys(providers)
    problems.add(
      'llm.active',
      `must be a key of llm.providers (${names.join(', ') || 'none defined'}), got '${active}'`,
    )
  }
  let resolved: ProviderConfig | undefined
  for (const [name, provider] of Object.entries(providers)) {
    const path = `llm.providers.${name}`
    if (!problems.clean(path)) continue
    const isActive = activeOk && name === active
    const result = resolveProvider(
      problems,
      secrets,
      name,
      provider as ProviderFile,
      isActive,
      providerSecret,
    )
    if (result) resolved = result
  }
  return resolved
}

function resolveProvider(
  problems: Problems,
  secrets: Secrets,
  name: string,
  p: ProviderFile,
  active: boolean,
  providerSecret: 'required' | 'unused' = 'required',
): ProviderConfig | undefined {
  const path = `llm.providers.${name}`
  const known = Object.hasOwn(KNOWN_PROVIDERS, name) ? KNOWN_PROVIDERS[name] : undefined
  if (!known) {
    const unknown = `for a provider not named ${KNOWN_NAMES}`
    if (p.type === undefined) {
      problems.add(`${path}.type`, `is required ${unknown} (openai or anthropic: its wire protocol)`)
    }
    if (p.base_url === undefined) {
      problems.add(
        `${path}.base_url`,
        `is required ${unknown} (its endpoint, e.g. http://127.0.0.1:11434/v1)`,
      )
    }
  }
  const type = p.type ?? known?.type
  const baseUrl =
    p.base_url === undefined ? known?.base_url : httpUrl(problems, `${path}.base_url`, p.base_url, p.base_url)
  // The messages API takes 0..1, not the 0..2 of chat completions: refused here, not at the first chat.
  if (type === 'anthropic' && p.temperature !== undefined && p.temperature > 1) {
    problems.add(
      `${path}.temperature`,
      `must be between 0 and 1 for the anthropic wire, got ${p.temperature}`,
    )
  }
  if (type !== undefined) checkModelSettings(problems, name, type, p)

  // Only the active provider's secret is needed to start; the others may lack theirs.
  if (!active) return undefined
  let apiKey: string | undefined
  // A command that never calls the LLM (`tools`) needs only the provider's kind, not its key.
  if (providerSecret === 'unused') {
    // Not read: its variable need not be set.
  } else if (p.api_key !== undefined) {
    apiKey = secrets.resolve(`${path}.api_key`, p.api_key)
  } else if (known) {
    problems.add(`${path}.api_key`, `is required for ${name} (e.g. env:${name.toUpperCase()}_API_KEY)`)
  }

  if (type === undefined || baseUrl === undefined) return undefined
  return {
    name,
    type,
    base_url: baseUrl,
    ...(apiKey === undefined ? {} : { api_key: apiKey }),
    model: p.model,
    max_tokens: p.max_tokens,
    ...definedOnly({
      temperature: p.temperature,
      top_p: p.top_p,
      reasoning_effort: p.reasoning_effort,
      thinking: p.thinking,
      vision: p.vision,
      max_tokens_field: p.max_tokens_field,
    }),
  }
}

/**
 * What the provider's API would refuse whatever the model: a problem. What the model would refuse
 * and is left out of its requests (models.ts): a warning, so check-config says it.
 */
function checkModelSettings(problems: Problems, name: string, type: Wire, p: ProviderFile): void {
  const path = `llm.providers.${name}`
  if (p.thinking !== undefined && type !== 'anthropic') {
    problems.add(
      `${path}.thinking`,
      'is only for the anthropic wire (Anthropic extended thinking); on the openai wire use reasoning_effort',
    )
  }
  // "`max_tokens` must be greater than `thinking.budget_tokens`": thinking counts towards the limit.
  if (p.thinking !== undefined && p.thinking.budget_tokens >= p.max_tokens) {
    problems.add(
      `${path}.thinking.budget_tokens`,
      `must be less than max_tokens (${p.max_tokens}), got ${p.thinking.budget_tokens}`,
    )
  }
  if (p.max_tokens_field !== undefined && type === 'anthropic') {
    problems.add(
      `${path}.max_tokens_field`,
      'is only for the openai wire (the messages API takes max_tokens)',
    )
  }
  if (!problems.clean(path)) return
  const { dropped } = requestFields({ ...p, name, type }, p.model)
  for (const d of dropped) problems.warn(`${path}.${d.setting}`, d.reason)
}

function checkContext(problems: Problems, file: unknown): void {
  if (!problems.clean('chat.service.context')) return
  const { max_tokens, reserve_tokens } = (file as ConfigFile).chat.service.context
  if (reserve_tokens >= max_tokens) {
    problems.add(
      'chat.service.context.reserve_tokens',
      `must be less than chat.service.context.max_tokens (${max_tokens}), got ${reserve_tokens}`,
    )
  }
}

// Which optional store keys each store type uses; any other is a mistake, not a silent no-op.
const STORE_KEYS = { memory: [], jsonl: ['path', 'fsync'], postgres: ['url'] } as const

function resolveStore(
  problems: Problems,
  secrets: Secrets,
  file: unknown,
  dir: string,
  fileName: string,
): StoreConfig | undefined {
  if (!problems.clean('store')) return undefined
  const store = (file as ConfigFile).store
  const needs: readonly string[] = STORE_KEYS[store.type]
  for (const key of ['path', 'fsync', 'url'] as const) {
    if (store[key] !== undefined && !needs.includes(key)) {
      const users = Object.entries(STORE_KEYS).filter(([, keys]) => (keys as readonly string[]).includes(key))
      problems.add(
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
        problems.add('store.path', `is required for type jsonl (the event log file, relative to ${fileName})`)
      }
      if (store.fsync === undefined) problems.add('store.fsync', 'is required for type jsonl (true or false)')
      if (store.path === undefined || store.fsync === undefined) return undefined
      return { type: 'jsonl', path: resolve(dir, store.path), fsync: store.fsync }
    }
    case 'postgres': {
      if (store.url === undefined) {
        problems.add('store.url', 'is required for type postgres (e.g. env:DATABASE_URL)')
        return undefined
      }
      const url = secrets.resolve('store.url', store.url)
      return url === undefined ? undefined : { type: 'postgres', url }
    }
  }
}

function resolveAuth(problems: Problems, secrets: Secrets, file: unknown): PlatformConfig['auth'] {
  if (at(file, 'auth') === undefined || !problems.clean('auth')) return undefined
  const entries = (file as ConfigFile).auth!.api_keys
  const names = new Map<string, number>()
  const keys = new Map<string, number>()
  const api_keys: { name: string; key: string }[] = []
  entries.forEach(({ name, key }, i) => {
    const path = `auth.api_keys.${i}`
    const sameName = names.get(name)
    if (sameName === undefined) {
      names.set(name, i)
    } else {
      problems.add(
        `${path}.name`,
        `must be unique, got '${name}' again (also auth.api_keys.${sameName}.name)`,
      )
    }
    const value = secrets.resolve(`${path}.key`, key)
    if (value === undefined) return
    const sameKey = keys.get(value)
    if (sameKey === undefined) keys.set(value, i)
    else problems.add(`${path}.key`, `must be unique, got the same key as auth.api_keys.${sameKey}.key`)
    api_keys.push({ name, key: value })
  })
  return { api_keys }
}

/** LOG_LEVEL when given (it wins over the file), else logging.level. */
function resolveLogLevel(
  problems: Problems,
  file: unknown,
  override: string | undefined,
): ConfigFile['logging']['level'] | undefined {
  if (override !== undefined) {
    if ((LOG_LEVELS as readonly string[]).includes(override)) {
      return override as ConfigFile['logging']['level']
    }
    problems.add('env.LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got '${override}'`)
    return undefined
  }
  return problems.clean('logging.level') ? (file as ConfigFile).logging.level : undefined
}

/** The entries whose value is set: an optional setting left out is absent, never `undefined`. */
function definedOnly<T extends Record<string, unknown>>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>
}
