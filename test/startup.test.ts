// Start-up order, as a real `mcp-platform start` process does it: the MCP servers' children are
// spawned before what serves chats (Fastify, store, provider, WebSocket route, probes) is loaded,
// and what only some platforms need (remote transports, the provider's HTTP client) is not loaded
// at all until it is needed. A loader hook preloaded into the process records which module files
// were loaded before its first spawn() call (helpers/load-order.ts): program order, no clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LoadOrder } from './helpers/load-order.js'
import { baseConfig, DEMO_SERVER_PATH, demoServer, writeConfigFiles } from './helpers/platform.js'
import { liveMembers, SERVER, startPlatformProcess } from './helpers/process.js'

const DIST = new URL('../', import.meta.url).href
const PRELOAD = fileURLToPath(new URL('./helpers/load-order.js', import.meta.url))

/** Our compiled files by their path under dist/, packages by their name under node_modules/. */
const ours = (path: string) => (url: string) => url === `${DIST}${path}`
const underOurs = (folder: string) => (url: string) => url.startsWith(`${DIST}${folder}/`)
const inPackage =
  (name: string, sub = '') =>
  (url: string) =>
    url.includes(`/node_modules/${name}/${sub}`)

const SERVING = {
  fastify: inPackage('fastify'),
  'plugins/chat-store.js': ours('plugins/chat-store.js'),
  'plugins/llm-provider.js': ours('plugins/llm-provider.js'),
  'plugins/chat-route.js': ours('plugins/chat-route.js'),
  'plugins/probes.js': ours('plugins/probes.js'),
  'src/store/': underOurs('src/store'),
  'src/chat/service.js': ours('src/chat/service.js'),
  'src/llm/openai.js': ours('src/llm/openai.js'),
  'src/tokens/': underOurs('src/tokens'),
  tiktoken: inPackage('tiktoken'),
  '@fastify/websocket': inPackage('@fastify/websocket'),
  ws: inPackage('ws'),
}

const NEVER_FOR_STDIO = {
  'SDK Streamable HTTP transport': inPackage(
    '@modelcontextprotocol/sdk',
    'dist/esm/client/streamableHttp.js',
  ),
  'SDK HTTP+SSE transport': inPackage('@modelcontextprotocol/sdk', 'dist/esm/client/sse.js'),
  'SDK OAuth client': inPackage('@modelcontextprotocol/sdk', 'dist/esm/client/auth.js'),
  eventsource: inPackage('eventsource'),
  undici: inPackage('undici'),
}

function loadedOf(urls: string[], which: Record<string, (url: string) => boolean>): string[] {
  return Object.entries(which)
    .filter(([, matches]) => urls.some(matches))
    .map(([name]) => name)
}

test('start spawns the MCP servers before loading what serves chats; no remote transport or undici for stdio servers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'startup-order-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const orderFile = join(dir, 'load-order.json')
  const platform = await startPlatformProcess(
    dir,
    // The provider is never called: nothing listens at its port.
    baseConfig('http://127.0.0.1:9/v1'),
    { one: demoServer(), two: demoServer() },
    { node: ['--import', PRELOAD], env: { LOAD_ORDER_FILE: orderFile } },
  )
  let ready: Response | undefined
  for (let i = 0; i < 200 && ready?.status !== 200; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50))
    ready = await fetch(`${platform.http}/ready`)
  }
  assert.equal(ready?.status, 200, `never ready: ${platform.stdout()}${platform.stderr()}`)
  platform.child.kill('SIGTERM')
  assert.deepEqual(await platform.exited, { code: 0, signal: null }, platform.stderr())

  const order = JSON.parse(await readFile(orderFile, 'utf8')) as LoadOrder
  assert.ok(order.beforeFirstSpawn, 'the process spawned its servers')
  const before = order.beforeFirstSpawn
  // The recording works: the registry came before the spawn, what serves chats after it.
  assert.ok(
    before.some(ours('src/mcp/registry.js')),
    'the MCP registry was loaded before its servers started',
  )
  assert.deepEqual(loadedOf(before, SERVING), [], 'loaded before the MCP servers were spawned')
  // ... and was still recording once the servers were starting.
  const after = [
    'plugins/chat-store.js',
    'plugins/chat-route.js',
    'plugins/probes.js',
    '@fastify/websocket',
  ] as const
  for (const name of after) assert.ok(order.all.some(SERVING[name]), `${name} loaded at all`)
  assert.deepEqual(loadedOf(order.all, NEVER_FOR_STDIO), [], 'loaded by a platform of stdio servers alone')
})

test('a start that fails after the servers were spawned (the store cannot open) ends their processes, exit 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'startup-fails-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const orderFile = join(dir, 'load-order.json')
  // The log's folder is a regular file: the jsonl store fails to open, once the servers run.
  await writeFile(join(dir, 'not-a-folder'), '')
  const config = baseConfig('http://127.0.0.1:9/v1')
  config.store = { type: 'jsonl', path: join(dir, 'not-a-folder', 'events.jsonl'), fsync: true }
  // Each server started through a shell, so it has a grandchild that no closed pipe would end.
  const shell = {
    command: 'sh',
    args: ['-c', `sleep 300 & exec "${process.execPath}" "${DEMO_SERVER_PATH}"`],
  }
  const { configPath, serversPath } = await writeConfigFiles(dir, config, {
    mcpServers: { one: shell, two: shell },
  })
  const { exited, stderr } = await runToExit(configPath, serversPath, orderFile)
  assert.deepEqual(exited, { code: 1, signal: null }, stderr)
  assert.match(stderr, /mkdir/, 'the store failed')

  const order = JSON.parse(await readFile(orderFile, 'utf8')) as LoadOrder
  assert.equal(order.spawned.length, 2, 'both servers were spawned before the store failed')
  // Each server leads a process group of its own: the platform ended every member before it exited.
  for (const pgid of order.spawned) assert.deepEqual(await liveMembers(pgid), [], `process group ${pgid}`)
})

test('a configuration with a problem starts no server: exit 78, nothing spawned', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'startup-invalid-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const orderFile = join(dir, 'load-order.json')
  const config = baseConfig('http://127.0.0.1:9/v1')
  config.chat.service.max_tool_hops = -1
  const { configPath, serversPath } = await writeConfigFiles(dir, config, {
    mcpServers: { one: demoServer() },
  })
  const { exited, stderr } = await runToExit(configPath, serversPath, orderFile)
  assert.deepEqual(exited, { code: 78, signal: null }, stderr)
  assert.match(stderr, /chat\.service\.max_tool_hops/)
  const order = JSON.parse(await readFile(orderFile, 'utf8')) as LoadOrder
  assert.deepEqual(order.spawned, [])
})

/** `start` with the load-order preload, for a start that ends by itself. */
async function runToExit(configPath: string, serversPath: string, orderFile: string) {
  const child = spawn(process.execPath, ['--import', PRELOAD, SERVER, 'start'], {
    env: {
      PATH: process.env.PATH ?? '',
      MCP_CONFIG_PATH: configPath,
      MCP_SERVERS_CONFIG_PATH: serversPath,
      LOAD_ORDER_FILE: orderFile,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const exited = await new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return { exited, stderr }
}
