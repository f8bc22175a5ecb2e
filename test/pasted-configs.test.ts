// config.md, "pasted from other hosts": a servers file as Claude Desktop, Cline or VS Code wrote it
// starts the platform with every server working (real stdio servers, a real remote server that
// checks the header it gets), and the keys those hosts write mean what they meant there. What
// cannot work is a configuration problem said by field, never with a secret in it; what is
// accepted but adapted is a warning, which check-config prints. Real files in temp folders.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/load.js'
import { serverNamespace } from '../src/config/server-names.js'
import type { PlatformConfig } from '../src/config/types.js'
import { ConfigError, formatProblem } from '../src/errors.js'
import { openAiStream, openAiToolCalls, startLlmServer } from './helpers/llm-server.js'
import {
  baseConfig,
  Client,
  DEMO_SERVER_PATH,
  LogCapture,
  mcpSettled,
  onCleanup,
  resultOf,
  terminal,
  writeConfigFiles,
  type Frame,
} from './helpers/platform.js'
import { SERVER } from './helpers/process.js'
import { startRemoteMcp, type RemoteMcpOptions } from './helpers/remote-mcp.js'

const ROOT = new URL('../../', import.meta.url)
const EVERYTHING_SERVER = fileURLToPath(
  new URL('node_modules/@modelcontextprotocol/server-everything/dist/index.js', ROOT),
)
const CLINE_EVERYTHING = 'github.com/modelcontextprotocol/servers/tree/main/src/everything'

/** A fixture of test/fixtures/pasted as a host wrote it, with this machine's paths and URL put in. */
async function pasted(name: string, remoteUrl = 'http://127.0.0.1:9/mcp'): Promise<string> {
  const text = await readFile(new URL(`test/fixtures/pasted/${name}`, ROOT), 'utf8')
  const fill: Record<string, string> = {
    __NODE__: process.execPath,
    __DEMO_SERVER__: DEMO_SERVER_PATH,
    __EVERYTHING_SERVER__: EVERYTHING_SERVER,
    __REMOTE_URL__: remoteUrl,
  }
  // JSON-escaped, so a Windows path's backslashes stay valid JSON.
  return text.replace(/__[A-Z_]+__/g, (token) => JSON.stringify(fill[token] ?? token).slice(1, -1))
}

/** A folder with config.yaml (no provider secret needed) and this servers file, plus other files. */
async function folder(
  servers: unknown,
  files: Record<string, string> = {},
  llmUrl = 'http://127.0.0.1:9/v1',
): Promise<{ dir: string; configPath: string; serversPath: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pasted-config-'))
  const paths = await writeConfigFiles(dir, baseConfig(llmUrl))
  await writeFile(paths.serversPath, typeof servers === 'string' ? servers : JSON.stringify(servers, null, 2))
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
  return { dir, ...paths }
}

async function load(servers: unknown, env: Record<string, string> = {}, files: Record<string, string> = {}) {
  const paths = await folder(servers, files)
  return { ...paths, config: await loadConfig({ ...paths, env }) }
}

/** The problem lines of a servers file that must be refused. */
async function problemsOf(
  servers: unknown,
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): Promise<string[]> {
  const paths = await folder(servers, files)
  try {
    await loadConfig({ ...paths, env })
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return err.problems.map(formatProblem)
  }
  assert.fail('expected the configuration to be refused')
}

function warningsOf(config: PlatformConfig): string[] {
  return config.warnings.map(formatProblem)
}

// ---------------------------------------------------------------------------------------------
// The keys, one by one, through loadConfig.

test("the keys other hosts write mean the platform's own", async () => {
  const { config } = await load({
    mcpServers: {
      off: { command: 'not-installed', disabled: true },
      on: { command: 'node', disabled: false, enabled: true },
      dashed: { type: 'streamable-http', url: 'https://a.example/mcp' },
      camel: { type: 'streamableHttp', serverUrl: 'https://b.example/mcp' },
      gemini: { httpUrl: 'https://c.example/mcp', timeout: 3000 },
      cline: { command: 'node', timeout: 60, autoApprove: ['echo'] },
      gemini_stdio: { command: 'node', timeout: 600000 },
      roo: { command: 'node', alwaysAllow: ['add'] },
      own: { command: 'node', tool_timeout: 7, auto_approve: [] },
      clineOld: { command: 'node', transportType: 'stdio' },
      rooLists: { command: 'node', disabledTools: ['slow'], watchPaths: ['dist/index.js'] },
      geminiLists: {
        command: 'node',
        includeTools: ['add', 'echo', 'slow'],
        excludeTools: ['slow'],
        trust: true,
        description: 'the demo',
      },
      geminiDeny: { command: 'node', excludeTools: ['fail'] },
    },
  })
  const stdio = { transport: 'stdio', command: 'node', args: [], env: {} }
  assert.deepEqual(config.servers, {
    on: { name: 'on', ...stdio },
    dashed: { name: 'dashed', transport: 'http', explicit: true, url: 'https://a.example/mcp', headers: {} },
    camel: { name: 'camel', transport: 'http', explicit: true, url: 'https://b.example/mcp', headers: {} },
    // Gemini CLI's httpUrl: its timeout is milliseconds, even a small one.
    gemini: {
      name: 'gemini',
      transport: 'http',
      explicit: false,
      url: 'https://c.example/mcp',
      headers: {},
      tool_timeout: 3,
    },
    cline: { name: 'cline', ...stdio, tool_timeout: 60, auto_approve: ['echo'] },
    gemini_stdio: { name: 'gemini_stdio', ...stdio, tool_timeout: 600 },
    roo: { name: 'roo', ...stdio, auto_approve: ['add'] },
    own: { name: 'own', ...stdio, tool_timeout: 7, auto_approve: [] },
    clineOld: { name: 'clineOld', ...stdio },
    rooLists: { name: 'rooLists', ...stdio, tools: { deny: ['slow'] } },
    // Gemini CLI: excludeTools wins over includeTools.
    geminiLists: { name: 'geminiLists', ...stdio, tools: { allow: ['add', 'echo'] } },
    geminiDeny: { name: 'geminiDeny', ...stdio, tools: { deny: ['fail'] } },
  })
  assert.deepEqual(warningsOf(config), [
    'mcpServers.gemini.timeout: taken as 3000 milliseconds, 3 s per tool call (as Gemini CLI writes it: above 3600, or beside httpUrl); tool_timeout says seconds without a guess',
    'mcpServers.cline.timeout: taken as 60 seconds per tool call (as Cline and Roo Code write it; above 3600 it would be milliseconds, as Gemini CLI writes it); tool_timeout says seconds without a guess',
    'mcpServers.gemini_stdio.timeout: taken as 600000 milliseconds, 600 s per tool call (as Gemini CLI writes it: above 3600, or beside httpUrl); tool_timeout says seconds without a guess',
    'mcpServers.rooLists.watchPaths: ignored: Roo Code restarts the server when these files change; the platform does not',
    'mcpServers.geminiLists.trust: ignored: Gemini CLI skips its confirmations; the platform asks none yet',
    'mcpServers.geminiLists.description: ignored: a note for people',
  ])
})

test('${env:VAR}, ${VAR} and ${VAR:-default} inside any string of a server entry; secrets where credentials go', async () => {
  const env = {
    NODE_BIN: '/opt/node/bin/node',
    DATA_DIR: '/srv/data-dir',
    FLAG: 'verbose-flag',
    GH_TOKEN: 'ghp-token-from-env',
    MCP_HOST: 'mcp.internal.example',
    DOCS_TOKEN: 'docs-token-from-env',
    TEAM: 'platform-team',
    CTX_API_KEY: 'ctx-key-in-args',
  }
  const { config } = await load(
    {
      mcpServers: {
        local: {
          command: '${NODE_BIN}',
          args: [
            '--log=${env:FLAG}',
            '${DATA_DIR}/in',
            '${UNSET_WITH_DEFAULT:-fallback-value}',
            '--api-key=${CTX_API_KEY}',
          ],
          cwd: '${DATA_DIR}/work',
          env: { GITHUB_TOKEN: '${GH_TOKEN}', MODE: 'mode-${FLAG}', PLAIN: 'as written', OLD: 'env:TEAM' },
        },
        remote: {
          url: 'https://${MCP_HOST}/mcp',
          headers: { Authorization: 'Bearer ${env:DOCS_TOKEN}', 'X-Team': '${TEAM}' },
        },
      },
    },
    env,
  )
  assert.deepEqual(config.servers.local, {
    name: 'local',
    transport: 'stdio',
    command: '/opt/node/bin/node',
    args: ['--log=verbose-flag', '/srv/data-dir/in', 'fallback-value', '--api-key=ctx-key-in-args'],
    cwd: '/srv/data-dir/work',
    env: {
      GITHUB_TOKEN: 'ghp-token-from-env',
      MODE: 'mode-verbose-flag',
      PLAIN: 'as written',
      OLD: 'platform-team',
    },
  })
  assert.deepEqual(config.servers.remote, {
    name: 'remote',
    transport: 'http',
    explicit: false,
    url: 'https://mcp.internal.example/mcp',
    headers: { Authorization: 'Bearer docs-token-from-env', 'X-Team': 'platform-team' },
  })
  // A variable's value is a secret where credentials go (url, headers, a credential-named env entry,
  // and whatever `env:` reads), as are the remote server's url and headers as a whole. In the command
  // line, the folder or an ordinary env entry it is a setting: withheld from every child and cut from
  // every log it would break servers and logs. A default and the text around a reference are not.
  const secrets = new Set(config.secrets)
  for (const value of [env.GH_TOKEN, env.MCP_HOST, env.DOCS_TOKEN, env.TEAM])
    assert.ok(secrets.has(value), value)
  for (const value of ['https://mcp.internal.example/mcp', 'Bearer docs-token-from-env']) {
    assert.ok(secrets.has(value), value)
  }
  for (const value of [
    env.NODE_BIN,
    env.DATA_DIR,
    env.FLAG,
    'fallback-value',
    'as written',
    'mode-verbose-flag',
  ]) {
    assert.ok(!secrets.has(value), value)
  }
})

test('an unset variable names the field and the variable; no problem prints a resolved value', async () => {
  const env = { BAD_URL: 'ftp://secret-host.example/mcp', HOST_PART: 'secret-host.example' }
  const problems = await problemsOf(
    {
      mcpServers: {
        docs: {
          url: 'https://${HOST_PART}/mcp',
          headers: { Authorization: 'Bearer ${env:DOCS_TOKEN}', 'X-Other': '${ALSO_UNSET}' },
        },
        fromVariable: { serverUrl: '${BAD_URL}' },
        vscode: { command: 'node', args: ['${input:api-key}', '${workspaceFolder}', '${not a name}'] },
        'github.com/a/b': { command: '${UNSET_COMMAND}' },
      },
    },
    env,
  )
  assert.deepEqual(problems, [
    'mcpServers.docs.headers.Authorization: environment variable DOCS_TOKEN is not set or is empty',
    'mcpServers.docs.headers.X-Other: environment variable ALSO_UNSET is not set or is empty',
    'mcpServers.fromVariable.serverUrl: must be an http(s) URL',
    "mcpServers.vscode.args.0: '${input:api-key}' is a VS Code input, which only VS Code can ask for; write ${env:NAME} and set NAME",
    'mcpServers.vscode.args.1: environment variable workspaceFolder is not set or is empty (${workspaceFolder} is a VS Code variable: write its value)',
    "mcpServers.vscode.args.2: '${not a name}' is not a reference the platform resolves (expected ${NAME}, ${env:NAME} or ${NAME:-default}, NAME made of A-Z, a-z, 0-9, _)",
    'mcpServers["github.com/a/b"].command: environment variable UNSET_COMMAND is not set or is empty',
  ])
  for (const value of Object.values(env)) {
    assert.ok(!problems.join('\n').includes(value), `no problem says ${value}`)
  }
  // An empty variable is no value either; a disabled server's variables need not be set.
  assert.deepEqual(await problemsOf({ mcpServers: { a: { command: '${EMPTY}' } } }, { EMPTY: '' }), [
    'mcpServers.a.command: environment variable EMPTY is not set or is empty',
  ])
  const { config } = await load({ mcpServers: { a: { command: '${UNSET}', disabled: true } } })
  assert.deepEqual(config.servers, {})
})

test('keys that say one thing twice, or contradict, are problems; unknown keys still are', async () => {
  const problems = await problemsOf({
    mcpServers: {
      urls: { url: 'https://a.example/mcp', serverUrl: 'https://b.example/mcp' },
      three: {
        url: 'https://a.example/mcp',
        serverUrl: 'https://a.example/mcp',
        httpUrl: 'https://a.example/mcp',
      },
      flags: { command: 'node', enabled: true, disabled: true },
      timeouts: { command: 'node', timeout: 60, tool_timeout: 60 },
      approvals: { command: 'node', autoApprove: ['a'], alwaysAllow: ['a'] },
      typed: { command: 'node', type: 'streamable-http' },
      remoteFile: { httpUrl: 'https://a.example/mcp', envFile: '.env' },
      gemini: { command: 'node', trust: 'yes' },
      lists: { command: 'node', tools: { deny: ['a'] }, disabledTools: ['b'] },
      hosts: { command: 'node', disabledTools: ['a'], excludeTools: ['b'] },
      kinds: { command: 'node', type: 'stdio', transportType: 'sse' },
      unknown: { command: 'node', includeResources: ['x'] },
    },
  })
  assert.deepEqual(problems, [
    "mcpServers.gemini.trust: must be true or false, got 'yes'",
    'mcpServers.unknown.includeResources: unknown key (expected one of: type, enabled, command, args, env, envFile, cwd, url, headers, tool_timeout, tools, auto_approve, disabled, serverUrl, httpUrl, timeout, autoApprove, alwaysAllow, transportType, disabledTools, includeTools, excludeTools, watchPaths, trust, description)',
    "mcpServers.urls: has url and serverUrl, which are one setting (the server's URL): keep one",
    "mcpServers.three: has url, serverUrl and httpUrl, which are one setting (the server's URL): keep one",
    'mcpServers.flags.disabled: is true but enabled is true: they contradict each other; keep one',
    'mcpServers.timeouts: has timeout and tool_timeout, which are one setting: keep tool_timeout (seconds)',
    'mcpServers.approvals: has autoApprove and alwaysAllow, which are one setting (tools that never ask): keep one',
    "mcpServers.typed.type: is 'streamable-http' but the server has command (http or sse need url; stdio needs command)",
    'mcpServers.remoteFile.envFile: is only for a stdio (command) server',
    'mcpServers.lists: has tools and disabledTools, which say the same thing: keep tools',
    'mcpServers.hosts: has disabledTools and includeTools/excludeTools, from two hosts: keep one',
    "mcpServers.kinds: has type 'stdio' and transportType 'sse', which disagree: keep type",
  ])
  // enabled and disabled that agree are fine.
  const { config } = await load({ mcpServers: { a: { command: 'node', enabled: false, disabled: true } } })
  assert.deepEqual(config.servers, {})
})

test("envFile: a dotenv file beside the servers file for the child's env; env wins; credentials are secrets", async () => {
  const { config } = await load(
    { mcpServers: { local: { command: 'node', envFile: 'local.env', env: { SHARED: 'from-entry' } } } },
    {},
    {
      'local.env':
        '# the local server\nAPI_TOKEN=tok-from-env-file\nexport GREETING="hello there"\nSHARED=from-file\n',
    },
  )
  assert.deepEqual(config.servers.local?.transport === 'stdio' && config.servers.local.env, {
    API_TOKEN: 'tok-from-env-file',
    GREETING: 'hello there',
    SHARED: 'from-entry',
  })
  assert.ok(config.secrets.includes('tok-from-env-file'), 'a credential by its name')
  assert.ok(!config.secrets.includes('hello there'), 'a setting')

  // Missing: named as resolved, or as written when a variable (a secret) made the path.
  const { dir, configPath, serversPath } = await folder({
    mcpServers: {
      a: { command: 'node', envFile: 'missing.env' },
      b: { command: 'node', envFile: '${ENV_DIR}/missing.env' },
      c: { command: 'node', envFile: 'missing.env', disabled: true },
    },
  })
  let problems: string[] = []
  await loadConfig({ configPath, serversPath, env: { ENV_DIR: '/srv/secret-place' } }).catch(
    (err: ConfigError) => (problems = err.problems.map(formatProblem)),
  )
  assert.deepEqual(problems, [
    `mcpServers.a.envFile: file not found: ${join(dir, 'missing.env')}`,
    'mcpServers.b.envFile: file not found: ${ENV_DIR}/missing.env',
  ])
  // A folder is no file.
  assert.deepEqual(
    (await problemsOf({ mcpServers: { a: { command: 'node', envFile: '.' } } })).map((p) =>
      p.replace(/: .*$/, ': …'),
    ),
    ['mcpServers.a.envFile: …'],
  )
})

test('names: any name is accepted, mapped to a stable namespace; the written one is kept', async () => {
  const { config } = await load({
    mcpServers: {
      [CLINE_EVERYTHING]: { command: 'node' },
      'demo.local': { command: 'node' },
      'My Server': { url: 'https://a.example/mcp' },
      plain_name: { command: 'node' },
    },
  })
  // Pinned: the namespace must not change from one version or start to the next.
  assert.equal(serverNamespace(CLINE_EVERYTHING), 'tree_main_src_everything_6d35a7')
  // Names in other scripts do not all collapse into underscores: the hash keeps them apart.
  assert.equal(serverNamespace('文件'), 'server_39932f')
  assert.equal(serverNamespace('工具'), 'server_5ca673')
  assert.equal(serverNamespace('café'), 'caf__850f7d')
  assert.deepEqual(Object.keys(config.servers), [
    'tree_main_src_everything_6d35a7',
    'demo_local',
    'My_Server',
    'plain_name',
  ])
  assert.equal(config.servers.tree_main_src_everything_6d35a7?.name, 'tree_main_src_everything_6d35a7')
  assert.equal(config.servers.tree_main_src_everything_6d35a7?.configured_name, CLINE_EVERYTHING)
  assert.equal(config.servers.demo_local?.configured_name, 'demo.local')
  assert.equal(config.servers.plain_name?.configured_name, undefined)
  assert.deepEqual(warningsOf(config), [
    `mcpServers["${CLINE_EVERYTHING}"]: server name is not [A-Za-z0-9_-]{1,32}: its tools, /ready and list_tools call it 'tree_main_src_everything_6d35a7'`,
    `mcpServers["demo.local"]: server name is not [A-Za-z0-9_-]{1,32}: its tools, /ready and list_tools call it 'demo_local'`,
    `mcpServers["My Server"]: server name is not [A-Za-z0-9_-]{1,32}: its tools, /ready and list_tools call it 'My_Server'`,
  ])
  // Two long names with the same end stay apart: the hash is of the whole name.
  const other = 'gitlab.com/someone-else/mcp-servers/tree/main/src/everything'
  assert.notEqual(serverNamespace(other), serverNamespace(CLINE_EVERYTHING))
  assert.ok(serverNamespace(other).length <= 32)
})

test('names: two names of one namespace, a reserved or an empty one are problems', async () => {
  const problems = await problemsOf(
    // JSON.parse keeps "..proto.." and "" as the own keys they are.
    '{"mcpServers": {"my_server": {"command": "node"}, "my.server": {"command": "node", "disabled": true},' +
      ' "a b": {"command": "node"}, "a/b": {"command": "node"}, "..proto..": {"command": "node"},' +
      ' "": {"command": "node"}}}',
  )
  assert.deepEqual(problems, [
    "mcpServers[\"my.server\"]: server name maps to the namespace 'my_server', which server 'my_server' has already; rename one of them",
    "mcpServers[\"a/b\"]: server name maps to the namespace 'a_b', which server 'a b' has already; rename one of them",
    'mcpServers["..proto.."]: server name maps to the namespace \'__proto__\', which is reserved (a property every JavaScript object has); choose another',
    'mcpServers[""]: server name must not be empty (it names the server\'s tools: [A-Za-z0-9_-]{1,32})',
  ])
})

test("VS Code's servers and a whole host file: other top-level keys are warnings; both roots are a problem", async () => {
  const { config } = await load({
    inputs: [{ type: 'promptString', id: 'token', password: true }],
    servers: { demo: { type: 'stdio', command: 'node' } },
  })
  assert.deepEqual(Object.keys(config.servers), ['demo'])
  assert.deepEqual(warningsOf(config), [
    'inputs: ignored: VS Code asks the user for these values, the platform cannot (where a server uses ${input:…}, write ${env:NAME})',
  ])
  assert.deepEqual(
    await problemsOf({ mcpServers: { a: { command: 'node' } }, servers: { b: { command: 'node' } } }),
    ["servers: is VS Code's name for mcpServers, and the file has both: keep one"],
  )
  // Under `servers`, problems are said under `servers`.
  assert.deepEqual(await problemsOf({ servers: { a: { command: 'node', comand: 'x' }, b: { url: 'x' } } }), [
    'servers.a.comand: unknown key (expected one of: type, enabled, command, args, env, envFile, cwd, url, headers, tool_timeout, tools, auto_approve, disabled, serverUrl, httpUrl, timeout, autoApprove, alwaysAllow, transportType, disabledTools, includeTools, excludeTools, watchPaths, trust, description)',
    "servers.b.url: must be an http(s) URL, got 'x'",
  ])
})

// ---------------------------------------------------------------------------------------------
// Whole files as the hosts wrote them, through the platform.

interface Started {
  app: Awaited<ReturnType<typeof buildApp>>
  client: Client
  logs: LogCapture
}

async function start(
  t: TestContext,
  llmUrl: string,
  servers: string,
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): Promise<Started> {
  const { dir } = await folder(servers, files, llmUrl)
  onCleanup(t, () => rm(dir, { recursive: true, force: true }))
  const logs = new LogCapture()
  const app = await buildApp({ env, cwd: dir, logStream: logs })
  onCleanup(t, () => app.close())
  await app.ready()
  await mcpSettled(app, 20_000)
  const client = await Client.inject(app)
  onCleanup(t, () => Promise.resolve(client.close()))
  return { app, client, logs }
}

async function remoteServer(t: TestContext, options: RemoteMcpOptions) {
  const remote = await startRemoteMcp(options)
  onCleanup(t, () => remote.close())
  return remote
}

async function readyServers(app: Started['app']): Promise<any[]> {
  const res = await app.inject('/ready')
  assert.equal(res.statusCode, 200, res.body)
  return res.json().checks.mcp.servers
}

function chunks(frames: Frame[], type: string): any[] {
  return frames.filter((f) => f.status === 'chunk' && f.chunk?.type === type).map((f) => f.chunk!.data)
}

/** One turn in which the stand-in LLM calls each of `calls`, then answers; the tool results by name. */
async function callTools(
  s: Started,
  llm: Awaited<ReturnType<typeof startLlmServer>>,
  calls: { name: string; arguments: unknown }[],
): Promise<Record<string, any>> {
  llm.reply({ body: openAiToolCalls(calls.map((c, i) => ({ id: `call_${i}`, ...c }))) })
  llm.reply({ body: openAiStream(['done']) })
  const frames = await s.client.chatAndWait(`turn-${Date.now()}`, { text: 'use the tools' })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(terminal(frames)))
  return Object.fromEntries(chunks(frames, 'tool_result').map((r) => [r.name, r]))
}

async function llmServer(t: TestContext) {
  const llm = await startLlmServer()
  onCleanup(t, () => llm.close())
  return llm
}

test('a whole claude_desktop_config.json (globalShortcut, preferences) starts both servers', async (t) => {
  const llm = await llmServer(t)
  const s = await start(t, llm.baseUrl, await pasted('claude-desktop.json'))
  const servers = await readyServers(s.app)
  assert.deepEqual(
    servers.map((x) => [x.name, x.state]),
    [
      ['demo', 'ready'],
      ['everything', 'ready'],
    ],
  )
  const tools = resultOf(await s.client.ask('list_tools')).tools as any[]
  assert.ok(tools.some((x) => x.name === 'demo__add' && x.server === 'demo'))
  assert.ok(tools.some((x) => x.name === 'everything__echo' && x.server === 'everything'))

  const results = await callTools(s, llm, [
    { name: 'demo__add', arguments: { a: 2, b: 40 } },
    { name: 'everything__echo', arguments: { message: 'pasted' } },
  ])
  assert.equal(results.demo__add.is_error, false)
  assert.equal(results.demo__add.content, '42')
  assert.equal(results.everything__echo.is_error, false)
  assert.match(results.everything__echo.content, /pasted/)
  // The app's own keys were left alone, and said so in the log.
  const adapted = s.logs.lines().filter((l) => l.msg === 'configuration adapted')
  assert.deepEqual(
    adapted.map((l) => l.config.path),
    ['globalShortcut', 'preferences'],
  )
})

test("Cline's cline_mcp_settings.json: long dotted names, disabled, autoApprove, timeout, transportType, disabledTools", async (t) => {
  const llm = await llmServer(t)
  const remote = await remoteServer(t, { mode: 'http' })
  const s = await start(t, llm.baseUrl, await pasted('cline.json', remote.url))
  const everything = serverNamespace(CLINE_EVERYTHING)
  const servers = await readyServers(s.app)
  assert.deepEqual(
    servers.map((x) => [x.name, x.configured_name, x.state, x.transport]),
    [
      [everything, CLINE_EVERYTHING, 'ready', 'stdio'],
      ['demo_local', 'demo.local', 'ready', 'stdio'],
      ['remote-tools', undefined, 'ready', 'http'],
    ],
    'the disabled server is not started',
  )
  const tools = resultOf(await s.client.ask('list_tools')).tools as any[]
  assert.ok(tools.some((x) => x.name === `${everything}__echo` && x.server === everything))
  assert.ok(tools.some((x) => x.name === 'demo_local__add' && x.server === 'demo_local'))
  assert.ok(!tools.some((x) => x.name === 'demo_local__slow'), "disabledTools: Roo Code's deny list")
  assert.ok(tools.some((x) => x.name === 'remote-tools__whoami' && x.server === 'remote-tools'))

  const results = await callTools(s, llm, [
    { name: `${everything}__echo`, arguments: { message: 'from cline' } },
    { name: 'demo_local__add', arguments: { a: 1, b: 2 } },
    { name: 'remote-tools__whoami', arguments: {} },
  ])
  assert.match(results[`${everything}__echo`].content, /from cline/)
  assert.equal(results.demo_local__add.content, '3')
  assert.match(results['remote-tools__whoami'].content, /^remote #1$/)
  assert.ok(
    Object.values(results).every((r) => r.is_error === false),
    JSON.stringify(results),
  )
  // What the file's keys became.
  const config = s.app.platformConfig
  assert.deepEqual(config.servers[everything]?.auto_approve, ['echo', 'get-sum'])
  assert.equal(config.servers[everything]?.tool_timeout, 60)
  assert.equal(config.servers['remote-tools']?.tool_timeout, 120)
})

test("VS Code's .vscode/mcp.json: servers, inputs, envFile, ${env:…} in a header arrives resolved", async (t) => {
  const token = 'Bearer docs-7f3a9c1e5b2d'
  const llm = await llmServer(t)
  const remote = await remoteServer(t, {
    mode: 'http',
    name: 'docs',
    requireHeader: { name: 'Authorization', value: token },
  })
  const s = await start(
    t,
    llm.baseUrl,
    await pasted('vscode.json', remote.url),
    { DOCS_TOKEN: 'docs-7f3a9c1e5b2d' },
    { 'everything.env': 'GREETING=hello from the env file\nEVERYTHING_API_KEY=key-4d8e2a6c\n' },
  )
  const servers = await readyServers(s.app)
  assert.deepEqual(
    servers.map((x) => [x.name, x.state]),
    [
      ['everything', 'ready'],
      ['docs', 'ready'],
    ],
    JSON.stringify(servers),
  )
  // Every request reached the remote server with the header resolved, never the reference.
  assert.ok(remote.requests.length > 0)
  for (const request of remote.requests) assert.equal(request.headers.authorization, token)

  const results = await callTools(s, llm, [
    { name: 'everything__get-env', arguments: {} },
    { name: 'docs__whoami', arguments: {} },
  ])
  assert.match(results.docs__whoami.content, /^docs #1$/)
  // The child got the envFile's entries (a tool's own output is its own: not redacted); the one
  // named as a credential is a secret, kept out of every log line.
  const shown = results['everything__get-env'].content as string
  assert.match(shown, /"GREETING": "hello from the env file"/)
  assert.match(shown, /"EVERYTHING_API_KEY": "key-4d8e2a6c"/)
  assert.ok(s.app.platformConfig.secrets.includes('key-4d8e2a6c'))
  assert.ok(!s.app.platformConfig.secrets.includes('hello from the env file'))
  assert.doesNotMatch(s.logs.text, /docs-7f3a9c1e5b2d|key-4d8e2a6c/)
})

// ---------------------------------------------------------------------------------------------
// The command line.

function checkConfig(dir: string, env: Record<string, string> = {}) {
  const child = spawn(
    process.execPath,
    [
      SERVER,
      'check-config',
      '--config',
      join(dir, 'config.yaml'),
      '--servers',
      join(dir, 'servers_config.json'),
    ],
    { env: { PATH: process.env.PATH ?? '', ...env } },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  )
}

test('check-config prints what each pasted file had adapted, or the unset variable', async (t) => {
  const everything = serverNamespace(CLINE_EVERYTHING)
  const cases: [string, string[]][] = [
    [
      'claude-desktop.json',
      [
        'warning: globalShortcut: ignored: not about MCP servers (a setting of the host the file was copied from)',
        'warning: preferences: ignored: not about MCP servers (a setting of the host the file was copied from)',
      ],
    ],
    [
      'cline.json',
      [
        `warning: mcpServers["${CLINE_EVERYTHING}"]: server name is not [A-Za-z0-9_-]{1,32}: its tools, /ready and list_tools call it '${everything}'`,
        'warning: mcpServers["demo.local"]: server name is not [A-Za-z0-9_-]{1,32}: its tools, /ready and list_tools call it \'demo_local\'',
        'warning: mcpServers["github.com/example/retired-server"]: server name is not [A-Za-z0-9_-]{1,32}: its tools, /ready and list_tools call it \'example_retired-server_6821d1\'',
        `warning: mcpServers["${CLINE_EVERYTHING}"].timeout: taken as 60 seconds per tool call (as Cline and Roo Code write it; above 3600 it would be milliseconds, as Gemini CLI writes it); tool_timeout says seconds without a guess`,
        'warning: mcpServers["demo.local"].timeout: taken as 30 seconds per tool call (as Cline and Roo Code write it; above 3600 it would be milliseconds, as Gemini CLI writes it); tool_timeout says seconds without a guess',
        'warning: mcpServers.remote-tools.timeout: taken as 120 seconds per tool call (as Cline and Roo Code write it; above 3600 it would be milliseconds, as Gemini CLI writes it); tool_timeout says seconds without a guess',
      ],
    ],
    [
      'vscode.json',
      [
        'warning: inputs: ignored: VS Code asks the user for these values, the platform cannot (where a server uses ${input:…}, write ${env:NAME})',
      ],
    ],
  ]
  for (const [name, warnings] of cases) {
    const { dir } = await folder(await pasted(name), { 'everything.env': 'GREETING=hi\n' })
    onCleanup(t, () => rm(dir, { recursive: true, force: true }))
    const r = await checkConfig(dir, { DOCS_TOKEN: 'docs-token' })
    assert.deepEqual([r.code, r.stderr], [0, ''], name)
    assert.deepEqual(r.stdout.split('\n'), [...warnings, 'OK', ''], name)
  }
  // VS Code's file without its variable: exit 78, the field and the variable named.
  const { dir } = await folder(await pasted('vscode.json'), { 'everything.env': 'GREETING=hi\n' })
  onCleanup(t, () => rm(dir, { recursive: true, force: true }))
  const r = await checkConfig(dir)
  assert.equal(r.code, 78)
  assert.equal(
    r.stderr,
    'mcp-platform: invalid configuration\n' +
      'servers.docs.headers.Authorization: environment variable DOCS_TOKEN is not set or is empty\n',
  )
})
