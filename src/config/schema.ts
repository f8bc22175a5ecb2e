// TypeBox schemas of config.yaml, servers_config.json and the environment (config.md). They give
// both the runtime check and the static types. Every object rejects unknown keys.
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const strict = { additionalProperties: false } as const
const Seconds = (description: string) => Type.Number({ exclusiveMinimum: 0, description })
const Literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)))

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export const WIRES = ['openai', 'anthropic'] as const
export const STORE_TYPES = ['memory', 'jsonl', 'postgres'] as const
export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const
export const MAX_TOKENS_FIELDS = ['max_tokens', 'max_completion_tokens'] as const

export const ProviderSchema = Type.Object(
  {
    type: Type.Optional(Literals(WIRES)),
    base_url: Type.Optional(Type.String({ minLength: 1 })),
    api_key: Type.Optional(Type.String({ minLength: 1 })),
    model: Type.String({ minLength: 1 }),
    // Left out: not sent, the provider's own default applies (reasoning models accept no other).
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    max_tokens: Type.Integer({ minimum: 1, description: 'reply limit per LLM call' }),
    top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    reasoning_effort: Type.Optional(Literals(REASONING_EFFORTS)),
    thinking: Type.Optional(
      Type.Object(
        { budget_tokens: Type.Integer({ minimum: 1024, description: 'Anthropic extended thinking' }) },
        strict,
      ),
    ),
    vision: Type.Optional(Type.Boolean({ description: 'the model takes images' })),
    max_tokens_field: Type.Optional(Literals(MAX_TOKENS_FIELDS)),
  },
  strict,
)

export const ConfigFileSchema = Type.Object(
  {
    llm: Type.Object(
      {
        active: Type.String({ minLength: 1 }),
        providers: Type.Record(Type.String(), ProviderSchema),
        request: Type.Object(
          {
            timeout: Seconds('seconds without a byte from the provider before giving up'),
            max_retries: Type.Integer({ minimum: 0, maximum: 10 }),
            max_response_bytes: Type.Integer({
              minimum: 1024,
              maximum: 1073741824,
              description: 'one LLM answer larger than this is cut off (502)',
            }),
          },
          strict,
        ),
      },
      strict,
    ),
    chat: Type.Object(
      {
        service: Type.Object(
          {
            system_prompt: Type.String(),
            max_input_chars: Type.Integer({ minimum: 1 }),
            streaming: Type.Object({ enabled: Type.Boolean() }, strict),
            context: Type.Object(
              {
                max_tokens: Type.Integer({ minimum: 1 }),
                reserve_tokens: Type.Integer({ minimum: 0 }),
                preserve_recent: Type.Integer({ minimum: 0 }),
              },
              strict,
            ),
            max_tool_hops: Type.Integer({ minimum: 1, maximum: 100 }),
            tool_timeout: Seconds('seconds for one MCP tool call'),
            turn_timeout: Seconds('a turn still running after this long ends with 504, whatever it waits on'),
          },
          strict,
        ),
      },
      strict,
    ),
    store: Type.Object(
      {
        type: Literals(STORE_TYPES),
        path: Type.Optional(Type.String({ minLength: 1 })),
        fsync: Type.Optional(Type.Boolean()),
        url: Type.Optional(Type.String({ minLength: 1 })),
      },
      strict,
    ),
    websocket: Type.Object(
      {
        host: Type.String({ minLength: 1 }),
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        max_message_bytes: Type.Integer({ minimum: 1024, maximum: 104857600 }),
        max_buffered_bytes: Type.Integer({
          minimum: 65536,
          maximum: 1073741824,
          description: 'replies a client has not read yet; past it the socket is closed (1008)',
        }),
        max_concurrent_requests: Type.Integer({
          minimum: 1,
          maximum: 10000,
          description: 'per connection; more at once get 429',
        }),
        allowed_origins: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
        text_coalesce_ms: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 1000,
            description: 'text deltas of a request arriving within this many ms go out as one chunk',
          }),
        ),
      },
      strict,
    ),
    mcp: Type.Object(
      {
        connection: Type.Object(
          {
            max_reconnect_attempts: Type.Integer({ minimum: 0 }),
            connection_timeout: Seconds('seconds for spawn/connect + initialize'),
            initial_reconnect_delay: Seconds('seconds before the first reconnect'),
          },
          strict,
        ),
        max_message_bytes: Type.Integer({
          minimum: 1024,
          maximum: 1073741824,
          description: 'one MCP message larger than this is refused (the call fails, the server stays)',
        }),
      },
      strict,
    ),
    logging: Type.Object({ level: Literals(LOG_LEVELS) }, strict),
    auth: Type.Optional(
      Type.Object(
        {
          api_keys: Type.Array(
            Type.Object(
              {
                name: Type.String({ pattern: '^[A-Za-z0-9._@-]{1,64}$' }),
                key: Type.String({ minLength: 1 }),
              },
              strict,
            ),
            { minItems: 1 },
          ),
        },
        strict,
      ),
    ),
  },
  strict,
)
export type ConfigFile = Static<typeof ConfigFileSchema>
export type ProviderFile = Static<typeof ProviderSchema>

/** A server name used as it is for its tools' namespace; any other name is mapped (server-names.ts). */
export const SERVER_NAME_PATTERN = /^[A-Za-z0-9_-]{1,32}$/

/** `type` as the platform writes it, then as other hosts do (both mean Streamable HTTP). */
export const SERVER_TYPES = ['stdio', 'http', 'sse', 'streamable-http', 'streamableHttp'] as const
const ToolNames = Type.Array(Type.String({ minLength: 1 }))

export const ServerSchema = Type.Object(
  {
    type: Type.Optional(Literals(SERVER_TYPES)),
    enabled: Type.Optional(Type.Boolean()),
    command: Type.Optional(Type.String({ minLength: 1 })),
    args: Type.Optional(Type.Array(Type.String())),
    env: Type.Optional(Type.Record(Type.String(), Type.String())),
    envFile: Type.Optional(Type.String({ minLength: 1, description: "a dotenv file for the child's env" })),
    cwd: Type.Optional(Type.String({ minLength: 1 })),
    url: Type.Optional(Type.String({ minLength: 1 })),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    tool_timeout: Type.Optional(Seconds('seconds for one tool call of this server')),
    tools: Type.Optional(
      Type.Object(
        {
          allow: Type.Optional(ToolNames),
          deny: Type.Optional(ToolNames),
        },
        strict,
      ),
    ),
    auto_approve: Type.Optional(ToolNames),
    // The same settings as other hosts write them, so their files paste in (servers.ts maps them).
    disabled: Type.Optional(Type.Boolean({ description: 'enabled: false' })),
    serverUrl: Type.Optional(Type.String({ minLength: 1, description: 'url (Windsurf)' })),
    httpUrl: Type.Optional(Type.String({ minLength: 1, description: 'url (Gemini CLI)' })),
    timeout: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, description: 'tool_timeout in the unit its host used' }),
    ),
    autoApprove: Type.Optional(ToolNames),
    alwaysAllow: Type.Optional(ToolNames),
    transportType: Type.Optional(Literals(SERVER_TYPES)),
    disabledTools: Type.Optional(ToolNames),
    includeTools: Type.Optional(ToolNames),
    excludeTools: Type.Optional(ToolNames),
    // What other hosts keep for their own use: let through, and said to be ignored (servers.ts).
    watchPaths: Type.Optional(Type.Array(Type.String())),
    trust: Type.Optional(Type.Boolean()),
    description: Type.Optional(Type.String()),
  },
  strict,
)
// The servers under `mcpServers`, or under `servers` as VS Code writes them. Other top-level keys
// (the rest of a Claude Desktop or VS Code file) are let through here and warned about in servers.ts.
export const ServersFileSchema = Type.Object({
  mcpServers: Type.Optional(Type.Record(Type.String(), ServerSchema)),
  servers: Type.Optional(Type.Record(Type.String(), ServerSchema)),
})
export type ServersFile = Static<typeof ServersFileSchema>
export type ServerFile = Static<typeof ServerSchema>

/** The environment variables the platform reads itself (validated with @fastify/env). */
export const EnvSchema = Type.Object({
  MCP_CONFIG_PATH: Type.Optional(Type.String({ minLength: 1 })),
  MCP_SERVERS_CONFIG_PATH: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: Type.Optional(Literals(LOG_LEVELS)),
  DEBUG_TOKENS: Type.Optional(Literals(['0', '1'] as const)),
})
export type Env = Static<typeof EnvSchema>

export type { TSchema }
