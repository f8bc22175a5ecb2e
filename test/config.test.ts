// config.md: both files and the environment checked at start, every problem reported at once.
// Real files in a temp folder; the plugin through a real Fastify instance.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import Fastify from 'fastify'
import YAML from 'yaml'
import configPlugin from '../plugins/config.js'
import { defaultPaths, loadConfig } from '../src/config/load.js'
import { ConfigError, formatProblem } from '../src/errors.js'
import { MAX_CONFIG_BYTES } from '../src/config/sources.js'

const CONFIG_YAML = `
llm:
  active: groq
  providers:
    groq:
      api_key: env:GROQ_API_KEY
      model: llama-3.3-70b-versatile
      temperature: 0.7
      max_tokens: 4000
      top_p: 0.9
    openai:
      api_key: env:OPENAI_API_KEY   # not set: fine, openai is not active
      model: gpt-4o-mini
      temperature: 1
      max_tokens: 2000
      top_p: 1
  request:
    timeout: 60.0
    max_retries: 2
    max_response_bytes: 8388608

chat:
  service:
    system_prompt: "You are a helpful assistant."
    max_input_chars: 100000
    streaming:
      enabled: true
    context:
      max_tokens: 4000
      reserve_tokens: 500
      preserve_recent: 5
    max_tool_hops: 8
    tool_timeout: 60.0
    turn_timeout: 600

store:
  type: jsonl
  path: data/events.jsonl
  fsync: true

websocket:
  host: localhost
  port: 8000
  max_message_bytes: 1048576
  max_buffered_bytes: 4194304
  max_concurrent_requests: 16

mcp:
  connection:
    max_reconnect_attempts: 5
    connection_timeout: 30.0
    initial_reconnect_delay: 1.0
  max_message_bytes: 16777216

logging:
  level: info

auth:
  api_keys:
    - name: alice
      key: env:ALICE_API_KEY
    - name: bob
      key: literal-bob-key
`

const SERVERS = {
  mcpServers: {
    demo: {
      command: 'node',
      args: ['dist/servers/demo.js'],
      cwd: 'servers',
      env: { TOKEN: 'env:DEMO_TOKEN' },
    },
    files: { enabled: false, command: 'npx', args: ['@modelcontextprotocol/server-filesystem', '/data'] },
    remote: { url: 'https://mcp.example.com/mcp/', headers: { Authorization: 'env:REMOTE_MCP_TOKEN' } },
  },
}

const ENV = {
  GROQ_API_KEY: 'gsk-groq-secret',
  ALICE_API_KEY: 'alice-secret-key',
  DEMO_TOKEN: 'demo-token-value',
  REMOTE_MCP_TOKEN: 'Bearer remote-secret',
}

type Mutate<T> = (value: T) => void
// Tests edit any path of a parsed file, including into shapes the schema rejects.

type Json = Record<string, any>

/** A temp folder with config.yaml and servers_config.json, each the valid one changed by `mutate`. */
async function folder(
  opts: { config?: Mutate<Json> | string; servers?: Mutate<Json> | string } = {},
): Promise<{ dir: string; configPath: string; serversPath: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'config-test-'))
  const configPath = join(dir, 'config.yaml')
  const serversPath = join(dir, 'servers_config.json')
  await writeFile(
    configPath,
    typeof opts.config === 'string'
      ? opts.config
      : changed(YAML.parse(CONFIG_YAML), opts.config, YAML.stringify),
  )
  await writeFile(
    serversPath,
    typeof opts.servers === 'string'
      ? opts.servers
      : changed(structuredClone(SERVERS), opts.servers, (v) => JSON.stringify(v, null, 2)),
  )
  return { dir, configPath, serversPath }
}

function changed(value: Json, mutate: Mutate<Json> | undefined, serialize: (v: Json) => string): string {
  mutate?.(value)
  return serialize(value)
}

/** The problem lines of a load that must fail with a ConfigError. */
async function problemsOf(load: PromiseLike<unknown>): Promise<string[]> {
  try {
    await load
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return err.problems.map(formatProblem)
  }
  assert.fail('expected the configuration to be rejected')
}

async function load(
  paths: { configPath: string; serversPath: string },
  env: Record<string, string | undefined> = ENV,
  logLevel?: string,
) {
  return loadConfig({ ...paths, env, ...(logLevel ? { logLevel } : {}) })
}

test('a complete valid config loads: secrets resolved, relative paths against their file', async () => {
  const paths = await folder()
  const elsewhere = await mkdtemp(join(tmpdir(), 'config-cwd-'))
  const before = process.cwd()
  process.chdir(elsewhere)
  try {
    const config = await load(paths, { ...ENV, DEBUG_TOKENS: '1' }, 'debug')
    assert.deepEqual(config.llm.provider, {
      name: 'groq',
      type: 'openai',
      base_url: 'https://api.groq.com/openai/v1',
      api_key: 'gsk-groq-secret',
      model: 'llama-3.3-70b-versatile',
      temperature: 0.7,
      max_tokens: 4000,
      top_p: 0.9,
    })
    assert.equal(config.llm.active, 'groq')
    assert.deepEqual(config.llm.request, { timeout: 60, max_retries: 2, max_response_bytes: 8388608 })
    assert.deepEqual(config.store, {
      type: 'jsonl',
      path: join(paths.dir, 'data', 'events.jsonl'),
      fsync: true,
    })
    assert.deepEqual(config.auth, {
      api_keys: [
        { name: 'alice', key: 'alice-secret-key' },
        { name: 'bob', key: 'literal-bob-key' },
      ],
    })
    assert.deepEqual(config.servers, {
      demo: {
        name: 'demo',
        transport: 'stdio',
        command: 'node',
        args: ['dist/servers/demo.js'],
        env: { TOKEN: 'demo-token-value' },
        cwd: join(paths.dir, 'servers'),
      },
      remote: {
        name: 'remote',
        transport: 'http',
        explicit: false,
        url: 'https://mcp.example.com/mcp',
        headers: { Authorization: 'Bearer remote-secret' },
      },
    })
    assert.equal(config.logging.level, 'debug')
    assert.equal(config.debug_tokens, true)
    assert.equal(config.chat.service.context.reserve_tokens, 500)
    assert.equal(config.websocket.port, 8000)
    assert.deepEqual(config.files, { config: paths.configPath, servers: paths.serversPath })
    assert.deepEqual(
      [...config.secrets].sort(),
      [
        'Bearer remote-secret',
        'alice-secret-key',
        'demo-token-value',
        'gsk-groq-secret',
        'https://mcp.example.com/mcp/',
        'literal-bob-key',
        // The credential of `Bearer remote-secret` alone, in case a server quotes only that.
        'remote-secret',
      ].sort(),
    )
  } finally {
    process.chdir(before)
  }
})

test('logging.level and debug_tokens come from the file when the environment says nothing', async () => {
  const config = await load(await folder())
  assert.equal(config.logging.level, 'info')
  assert.equal(config.debug_tokens, false)
})

test('three mistakes are reported together, one line each', async () => {
  const paths = await folder({
    config: (c) => {
      c.llm.providers.groq.temperature = 3
      delete c.chat.service.max_tool_hops
      c.websocket.prot = 8001
    },
  })
  assert.deepEqual((await problemsOf(load(paths))).sort(), [
    'chat.service.max_tool_hops: is required (an integer between 1 and 100)',
    'llm.providers.groq.temperature: must be between 0 and 2, got 3',
    'websocket.prot: unknown key (expected one of: host, port, max_message_bytes, max_buffered_bytes, max_concurrent_requests, allowed_origins, text_coalesce_ms)',
  ])
})

test('schema problems name what would be right and what was got', async () => {
  const paths = await folder({
    config: (c) => {
      c.store.type = 'sqlite'
      c.websocket.port = '8000'
      c.websocket.text_coalesce_ms = 0
      c.logging = 'info'
    },
  })
  assert.deepEqual((await problemsOf(load(paths))).sort(), [
    "logging: must be an object with level, got 'info'",
    "store.type: must be one of memory, jsonl, postgres, got 'sqlite'",
    "websocket.port: must be an integer between 0 and 65535, got '8000'",
    'websocket.text_coalesce_ms: must be between 1 and 1000, got 0',
  ])
})

test('a secret whose variable is unset or empty names the field and the variable', async () => {
  const paths = await folder()
  const { GROQ_API_KEY: _unset, ...withoutGroq } = ENV
  assert.deepEqual(await problemsOf(load(paths, { ...withoutGroq, ALICE_API_KEY: '' })), [
    'llm.providers.groq.api_key: environment variable GROQ_API_KEY is not set or is empty',
    'auth.api_keys.0.key: environment variable ALICE_API_KEY is not set or is empty',
  ])
})

test("only the active provider's secret is required", async () => {
  const paths = await folder({ config: (c) => (c.llm.active = 'openai') })
  assert.deepEqual(await problemsOf(load(paths)), [
    'llm.providers.openai.api_key: environment variable OPENAI_API_KEY is not set or is empty',
  ])
  // groq is inactive now: its variable may be missing too.
  const { GROQ_API_KEY: _unset, ...withoutGroq } = ENV
  const config = await load(paths, { ...withoutGroq, OPENAI_API_KEY: 'sk-openai' })
  assert.equal(config.llm.provider.api_key, 'sk-openai')
  assert.equal(config.llm.provider.base_url, 'https://api.openai.com/v1')
  assert.ok(!config.secrets.includes('gsk-groq-secret'))
})

test('llm.active must name a provider', async () => {
  const paths = await folder({ config: (c) => (c.llm.active = 'grok') })
  assert.deepEqual(await problemsOf(load(paths)), [
    "llm.active: must be a key of llm.providers (groq, openai), got 'grok'",
  ])
})

test('a provider not known by name must set type and base_url; a custom one may omit api_key', async () => {
  const model = { model: 'llama3.2', temperature: 0.2, max_tokens: 1000, top_p: 1 }
  const bad = await folder({ config: (c) => (c.llm.providers.ollama = model) })
  assert.deepEqual(await problemsOf(load(bad)), [
    'llm.providers.ollama.type: is required for a provider not named groq, openai, openrouter, anthropic (openai or anthropic: its wire protocol)',
    'llm.providers.ollama.base_url: is required for a provider not named groq, openai, openrouter, anthropic (its endpoint, e.g. http://127.0.0.1:11434/v1)',
  ])

  const good = await folder({
    config: (c) => {
      c.llm.active = 'ollama'
      c.llm.providers.ollama = { ...model, type: 'openai', base_url: 'http://127.0.0.1:11434/v1/' }
    },
  })
  const config = await load(good)
  assert.deepEqual(config.llm.provider, {
    name: 'ollama',
    type: 'openai',
    base_url: 'http://127.0.0.1:11434/v1',
    ...model,
  })
})

test('base_url must be an http(s) URL', async () => {
  const paths = await folder({ config: (c) => (c.llm.providers.groq.base_url = 'ftp://example.com') })
  assert.deepEqual(await problemsOf(load(paths)), [
    "llm.providers.groq.base_url: must be an http(s) URL, got 'ftp://example.com'",
  ])
})

test('a known provider needs api_key when active', async () => {
  const paths = await folder({ config: (c) => delete c.llm.providers.groq.api_key })
  assert.deepEqual(await problemsOf(load(paths)), [
    'llm.providers.groq.api_key: is required for groq (e.g. env:GROQ_API_KEY)',
  ])
})

test('reserve_tokens must be less than max_tokens', async () => {
  const paths = await folder({ config: (c) => (c.chat.service.context.reserve_tokens = 4000) })
  assert.deepEqual(await problemsOf(load(paths)), [
    'chat.service.context.reserve_tokens: must be less than chat.service.context.max_tokens (4000), got 4000',
  ])
})

test('store: jsonl needs path and fsync, postgres needs url, other keys are mistakes', async () => {
  const jsonl = await folder({
    config: (c) => {
      c.store = { type: 'jsonl', url: 'postgres://db/x' }
    },
  })
  assert.deepEqual(await problemsOf(load(jsonl)), [
    'store.url: is only used by type postgres, not jsonl',
    'store.path: is required for type jsonl (the event log file, relative to config.yaml)',
    'store.fsync: is required for type jsonl (true or false)',
  ])

  const postgres = await folder({ config: (c) => (c.store = { type: 'postgres', url: 'env:DATABASE_URL' }) })
  assert.deepEqual(await problemsOf(load(postgres)), [
    'store.url: environment variable DATABASE_URL is not set or is empty',
  ])
  const config = await load(postgres, { ...ENV, DATABASE_URL: 'postgres://u:p@db/chat' })
  assert.deepEqual(config.store, { type: 'postgres', url: 'postgres://u:p@db/chat' })
  assert.ok(config.secrets.includes('postgres://u:p@db/chat'))
})

test('auth: names and keys are unique', async () => {
  const paths = await folder({
    config: (c) => {
      c.auth.api_keys = [...c.auth.api_keys, { name: 'alice', key: 'env:ALICE_API_KEY' }]
    },
  })
  assert.deepEqual(await problemsOf(load(paths)), [
    "auth.api_keys.2.name: must be unique, got 'alice' again (also auth.api_keys.0.name)",
    'auth.api_keys.2.key: must be unique, got the same key as auth.api_keys.0.key',
  ])
})

test('servers_config.json: command and url, neither, allow and deny', async () => {
  const paths = await folder({
    servers: (s) => {
      s.mcpServers.both = { command: 'node', url: 'http://localhost:9000/mcp' }
      s.mcpServers.neither = { args: ['x'] }
      s.mcpServers.picky = { command: 'node', tools: { allow: ['a'], deny: ['b'] } }
      s.mcpServers.mixed = { type: 'stdio', url: 'http://localhost:9000/mcp' }
    },
  })
  assert.deepEqual(await problemsOf(load(paths)), [
    'mcpServers.both: has both command and url: set command for a stdio server or url for a remote one, not both',
    'mcpServers.neither: needs command (a stdio server) or url (a remote server)',
    'mcpServers.picky.tools: must have allow or deny, not both',
    "mcpServers.mixed.type: is 'stdio' but the server has url (stdio needs command; http or sse need url)",
  ])
})

test('servers: an explicit type, tool options, and a disabled server with an unset secret', async () => {
  const paths = await folder({
    servers: (s) => {
      s.mcpServers.remote.type = 'sse'
      s.mcpServers.remote.tool_timeout = 5
      s.mcpServers.remote.tools = { deny: ['delete'] }
      s.mcpServers.off = { enabled: false, url: 'env:NOT_SET_ANYWHERE' }
    },
  })
  const config = await load(paths)
  assert.deepEqual(config.servers.remote, {
    name: 'remote',
    transport: 'sse',
    explicit: true,
    url: 'https://mcp.example.com/mcp',
    headers: { Authorization: 'Bearer remote-secret' },
    tool_timeout: 5,
    tools: { deny: ['delete'] },
  })
  assert.deepEqual(Object.keys(config.servers).sort(), ['demo', 'remote'])
})

test('servers: the schema is checked too, with full paths', async () => {
  const paths = await folder({
    servers: (s) => {
      s.mcpServers.demo.comand = 'node'
      s.mcpServers.remote.tool_timeout = 0
    },
  })
  assert.deepEqual(await problemsOf(load(paths)), [
    'mcpServers.demo.comand: unknown key (expected one of: type, enabled, command, args, env, envFile, cwd, url, headers, tool_timeout, tools, auto_approve, disabled, serverUrl, httpUrl, timeout, autoApprove, alwaysAllow, transportType, disabledTools, includeTools, excludeTools, watchPaths, trust, description)',
    'mcpServers.remote.tool_timeout: must be > 0, got 0',
  ])
})

test('problems of both files come together', async () => {
  const paths = await folder({
    config: (c) => (c.chat.service.context.reserve_tokens = 5000),
    servers: (s) => (s.mcpServers.demo.url = 'http://localhost:1/mcp'),
  })
  assert.deepEqual(await problemsOf(load(paths)), [
    'chat.service.context.reserve_tokens: must be less than chat.service.context.max_tokens (4000), got 5000',
    'mcpServers.demo: has both command and url: set command for a stdio server or url for a remote one, not both',
  ])
})

test('a YAML syntax error says where', async () => {
  const paths = await folder({ config: 'llm:\n  active: groq\n  providers: [1, 2\n' })
  const problems = await problemsOf(load(paths))
  assert.equal(problems.length, 1)
  assert.match(problems[0]!, /^config\.yaml: YAML syntax error: .* at line \d+, column \d+$/)
})

test('a JSON syntax error says where', async () => {
  const paths = await folder({ servers: '{\n  "mcpServers": {\n    "demo": { "command": True }\n  }\n}\n' })
  assert.deepEqual(await problemsOf(load(paths)), [
    "servers_config.json: JSON syntax error at line 3, column 26: Unexpected token 'T'",
  ])
  const comma = await folder({ servers: '{\n  "mcpServers": {},\n}\n' })
  assert.deepEqual(await problemsOf(load(comma)), [
    'servers_config.json: JSON syntax error at line 3, column 1: Expected double-quoted property name',
  ])
})

test('a missing file is a problem named by the file, with the other file still checked', async () => {
  const { dir, serversPath } = await folder({
    servers: (s) => (s.mcpServers.demo.tools = { allow: [], deny: [] }),
  })
  const configPath = join(dir, 'nowhere', 'config.yaml')
  assert.deepEqual(await problemsOf(load({ configPath, serversPath })), [
    `config.yaml: file not found: ${configPath} (give its path with --config or MCP_CONFIG_PATH)`,
    'mcpServers.demo.tools: must have allow or deny, not both',
  ])
})

test('a file that cannot be read (a folder) is a problem', async () => {
  const { dir, configPath } = await folder()
  const serversPath = join(dir, 'servers.d')
  await mkdir(serversPath)
  const problems = await problemsOf(load({ configPath, serversPath }))
  assert.equal(problems.length, 1)
  assert.match(problems[0]!, /^servers\.d: cannot be read: EISDIR/)
})

test('an invalid LOG_LEVEL override is a problem', async () => {
  assert.deepEqual(await problemsOf(load(await folder(), ENV, 'loud')), [
    "env.LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got 'loud'",
  ])
})

test('defaultPaths: flag, then environment, then the working directory', () => {
  const env = { MCP_CONFIG_PATH: 'conf/c.yaml', MCP_SERVERS_CONFIG_PATH: '/etc/mcp/servers.json' }
  assert.deepEqual(defaultPaths({}, '/srv/app'), {
    configPath: '/srv/app/config.yaml',
    serversPath: '/srv/app/servers_config.json',
  })
  assert.deepEqual(defaultPaths(env, '/srv/app'), {
    configPath: '/srv/app/conf/c.yaml',
    serversPath: '/etc/mcp/servers.json',
  })
  assert.deepEqual(defaultPaths(env, '/srv/app', { config: 'x.yaml', servers: '/abs/s.json' }), {
    configPath: '/srv/app/x.yaml',
    serversPath: '/abs/s.json',
  })
})

test('plugin: decorates config and env on a real Fastify instance', async () => {
  const paths = await folder()
  const app = Fastify({ logger: false })
  try {
    await app.register(configPlugin, {
      ...paths,
      cwd: paths.dir,
      env: { ...ENV, LOG_LEVEL: 'warn', DEBUG_TOKENS: '1' },
    })
    await app.ready()
    assert.equal(app.platformConfig.llm.provider.api_key, 'gsk-groq-secret')
    assert.equal(app.platformConfig.logging.level, 'warn')
    assert.equal(app.platformConfig.debug_tokens, true)
    assert.deepEqual(app.platformEnv, { LOG_LEVEL: 'warn', DEBUG_TOKENS: '1' })
  } finally {
    await app.close()
  }
})

test('plugin: finds the files through MCP_CONFIG_PATH and MCP_SERVERS_CONFIG_PATH', async () => {
  const paths = await folder()
  const app = Fastify({ logger: false })
  try {
    await app.register(configPlugin, {
      env: { ...ENV, MCP_CONFIG_PATH: paths.configPath, MCP_SERVERS_CONFIG_PATH: paths.serversPath },
      cwd: '/',
    })
    await app.ready()
    assert.deepEqual(app.platformConfig.files, { config: paths.configPath, servers: paths.serversPath })
  } finally {
    await app.close()
  }
})

test('plugin: a given config is used as it is', async () => {
  const config = await load(await folder())
  const app = Fastify({ logger: false })
  try {
    await app.register(configPlugin, { config, configPath: '/nonexistent/config.yaml', env: {}, cwd: '/' })
    await app.ready()
    assert.equal(app.platformConfig, config)
  } finally {
    await app.close()
  }
})

test('plugin: a bad environment and a bad file are reported together', async () => {
  const paths = await folder({ config: (c) => (c.llm.providers.groq.top_p = 2) })
  const app = Fastify({ logger: false })
  try {
    app.register(configPlugin, {
      ...paths,
      cwd: paths.dir,
      env: { ...ENV, LOG_LEVEL: 'loud', DEBUG_TOKENS: 'yes' },
    })
    assert.deepEqual(await problemsOf(app.ready()), [
      "env.LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got 'loud'",
      "env.DEBUG_TOKENS: must be one of 0, 1, got 'yes'",
      'llm.providers.groq.top_p: must be between 0 and 1, got 2',
    ])
  } finally {
    await app.close()
  }
})

test('the anthropic wire takes a temperature of 0..1 only', async () => {
  const paths = await folder({
    config: (c) => {
      c.llm.active = 'anthropic'
      c.llm.providers.anthropic = {
        api_key: 'a-literal-key',
        model: 'claude-x',
        temperature: 1.5,
        max_tokens: 100,
        top_p: 1,
      }
    },
  })
  const problems = await problemsOf(load(paths))
  assert.deepEqual(problems, [
    'llm.providers.anthropic.temperature: must be between 0 and 1 for the anthropic wire, got 1.5',
  ])
})

test('a config.yaml that is empty, null, a scalar or a list is one problem, not a crash', async () => {
  const expected = 'an object with llm, chat, store, websocket, mcp, logging, auth'
  const cases: [string, string][] = [
    ['', 'config.yaml: is empty (expected the settings: llm, chat, store, websocket, mcp, logging)'],
    [
      '# only a comment\n',
      'config.yaml: is empty (expected the settings: llm, chat, store, websocket, mcp, logging)',
    ],
    ['null\n', `config.yaml: must be ${expected}, got null`],
    ['42\n', `config.yaml: must be ${expected}, got 42`],
    ['"text"\n', `config.yaml: must be ${expected}, got a string`],
    ['"two\\nlines"\n', `config.yaml: must be ${expected}, got a string`],
    ['- 1\n- 2\n', `config.yaml: must be ${expected}, got a list`],
  ]
  for (const [text, problem] of cases) {
    assert.deepEqual(await problemsOf(load(await folder({ config: text }))), [problem], JSON.stringify(text))
  }
})

test('a servers_config.json that is empty, null, a scalar, a list or without servers is one problem, not a crash', async () => {
  const shape = "an object with mcpServers (or VS Code's servers)"
  const cases: [string, string][] = [
    ['', 'servers_config.json: is empty (expected {"mcpServers": {...}})'],
    ['  \n', 'servers_config.json: is empty (expected {"mcpServers": {...}})'],
    ['null', `servers_config.json: must be ${shape}, got null`],
    ['42', `servers_config.json: must be ${shape}, got 42`],
    ['"text"', `servers_config.json: must be ${shape}, got a string`],
    ['[]', `servers_config.json: must be ${shape}, got a list`],
    ['{}', "mcpServers: is required (the MCP servers by name; VS Code's servers is read as well)"],
  ]
  for (const [text, problem] of cases) {
    assert.deepEqual(await problemsOf(load(await folder({ servers: text }))), [problem], JSON.stringify(text))
  }
})

test('a binary file is refused as not text, whichever of the two it is', async () => {
  const binary = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x00, 0xff, 0xfe, 0x0a, 0x80])
  const paths = await folder()
  await writeFile(paths.configPath, binary)
  await writeFile(paths.serversPath, binary)
  assert.deepEqual(await problemsOf(load(paths)), [
    'config.yaml: is not UTF-8 text (a binary file?)',
    'servers_config.json: is not UTF-8 text (a binary file?)',
  ])
  // Valid UTF-8 with a NUL byte in it is no configuration either.
  const nul = await folder({ config: 'llm:\n  active: gr\u0000oq\n' })
  assert.deepEqual(await problemsOf(load(nul)), ['config.yaml: is not text: it holds a NUL byte (line 2)'])
})

test('a file larger than MAX_CONFIG_BYTES is refused without reading it all: 10 MB, /dev/zero', async () => {
  const paths = await folder()
  // 10 MB of valid-looking YAML: unknown keys, each of which would be a problem of its own.
  await writeFile(paths.configPath, 'k: 1\n'.repeat(2_000_000))
  const started = performance.now()
  const tooLarge = `is larger than ${MAX_CONFIG_BYTES} bytes (1 MiB), the most a configuration file may be`
  assert.deepEqual(await problemsOf(load(paths)), [`config.yaml: ${tooLarge}`])
  assert.deepEqual(await problemsOf(load({ configPath: '/dev/zero', serversPath: '/dev/zero' })), [
    `zero: ${tooLarge}`,
    `zero: ${tooLarge}`,
  ])
  const elapsed = performance.now() - started
  assert.ok(elapsed < 2000, `refused in ${Math.round(elapsed)} ms`)
  // Exactly at the limit is still read (and judged on its content).
  await writeFile(paths.configPath, `# ${'x'.repeat(MAX_CONFIG_BYTES - 3)}\n`)
  assert.deepEqual(await problemsOf(load(paths)), [
    'config.yaml: is empty (expected the settings: llm, chat, store, websocket, mcp, logging)',
  ])
})

test('a server named __proto__, constructor or prototype is refused by name', async () => {
  const paths = await folder({
    // JSON.parse makes "__proto__" an own key, as any other (an object literal here would not).
    servers:
      '{"mcpServers": {"__proto__": {"command": "node"}, "constructor": {"command": "node"},' +
      ' "prototype": {"url": "https://mcp.example.com/mcp"}, "fine": {"command": "node"}}}',
  })
  const reserved = (name: string) =>
    `mcpServers.${name}: server name '${name}' is reserved (a property every JavaScript object has); choose another`
  assert.deepEqual(await problemsOf(load(paths)), [
    reserved('__proto__'),
    reserved('constructor'),
    reserved('prototype'),
  ])
})

test('keys from the files land as own keys: an env entry named __proto__ is kept, nothing is polluted', async () => {
  const paths = await folder({
    servers: '{"mcpServers": {"demo": {"command": "node", "env": {"__proto__": "kept", "A": "1"}}}}',
  })
  const config = await load(paths)
  const demo = config.servers.demo!
  assert.ok(demo.transport === 'stdio')
  assert.deepEqual(Object.keys(demo.env), ['__proto__', 'A'])
  assert.equal(Object.getOwnPropertyDescriptor(demo.env, '__proto__')?.value, 'kept')
  assert.equal(Object.getPrototypeOf(demo.env), Object.prototype)
  assert.equal(({} as Record<string, unknown>).kept, undefined)
})
