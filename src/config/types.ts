// The validated, resolved configuration (`fastify.platformConfig`); each plugin is given its own
// section of it. Secrets are resolved from `env:` references, relative paths are absolute, known
// providers are filled in.
import type { ConfigProblem } from '../errors.js'
import type { ConfigFile, MAX_TOKENS_FIELDS, REASONING_EFFORTS } from './schema.js'

export type Wire = 'openai' | 'anthropic'

export interface ProviderConfig {
  /** The key under llm.providers (`groq`, `openai`, `ollama`, …). */
  name: string
  type: Wire
  /** Without a trailing slash, e.g. `https://api.groq.com/openai/v1`. */
  base_url: string
  /** Resolved secret; undefined for a custom endpoint that needs none (a local Ollama). */
  api_key?: string
  model: string
  /** Absent: not sent (the provider's default). */
  temperature?: number
  max_tokens: number
  top_p?: number
  reasoning_effort?: (typeof REASONING_EFFORTS)[number]
  /** Anthropic extended thinking (anthropic wire only). */
  thinking?: { budget_tokens: number }
  /** Whether the model takes images; absent: known from the model's name where it can be. */
  vision?: boolean
  /** The openai wire's field for the reply limit; absent: what the provider documents. */
  max_tokens_field?: (typeof MAX_TOKENS_FIELDS)[number]
}

export type StoreConfig =
  { type: 'memory' } | { type: 'jsonl'; path: string; fsync: boolean } | { type: 'postgres'; url: string }

/** What every server has, whatever its transport. */
interface ServerCommon {
  /** The tools' namespace (SERVER__TOOL), and the key of PlatformConfig.servers. */
  name: string
  /** The name as servers_config.json writes it, when that is not usable as a namespace (see server-names.ts). */
  configured_name?: string
  tool_timeout?: number
  tools?: { allow?: string[]; deny?: string[] }
  /** Tools that never ask for approval (`auto_approve`, Cline's `autoApprove`, Roo Code's `alwaysAllow`). */
  auto_approve?: string[]
}

export interface StdioServerConfig extends ServerCommon {
  transport: 'stdio'
  command: string
  args: string[]
  /** The server's own `env` entries and those of its `envFile` (resolved); the parent environment is added at spawn. */
  env: Record<string, string>
  /** Absolute. */
  cwd?: string
}

export interface RemoteServerConfig extends ServerCommon {
  transport: 'http' | 'sse'
  /** Whether `type` said so explicitly (no fallback to the other transport then). */
  explicit: boolean
  url: string
  headers: Record<string, string>
}

export type ServerConfig = StdioServerConfig | RemoteServerConfig

export interface PlatformConfig {
  llm: {
    active: string
    /** The active provider, resolved. */
    provider: ProviderConfig
    request: ConfigFile['llm']['request']
  }
  chat: ConfigFile['chat']
  store: StoreConfig
  websocket: ConfigFile['websocket']
  mcp: ConfigFile['mcp']
  /** `LOG_LEVEL` already applied. */
  logging: ConfigFile['logging']
  auth?: { api_keys: { name: string; key: string }[] }
  /** Enabled servers only, by namespace (ServerConfig.name). */
  servers: Record<string, ServerConfig>
  debug_tokens: boolean
  /** Absolute paths of the files this came from. */
  files: { config: string; servers: string }
  /** Every secret value (resolved), for redaction in logs and frames. */
  secrets: string[]
  /** What was accepted but adapted or ignored, said by check-config and logged at start. */
  warnings: ConfigProblem[]
}
