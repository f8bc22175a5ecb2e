// Each plugin works registered on its own in another Fastify app, next to common plugins: it takes
// its own options, declares what it needs, and its decorators do not clash (@fastify/env decorates
// `config` by default).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import fastifyEnv from '@fastify/env'
import { pino } from 'pino'
import chatStorePlugin from '../plugins/chat-store.js'
import configPlugin from '../plugins/config.js'
import mcpRegistryPlugin from '../plugins/mcp-registry.js'
import { ConfigError } from '../src/errors.js'
import { McpRegistry } from '../src/mcp/registry.js'
import { DEMO_SERVER_PATH, baseConfig, mcpSettled, writeConfigFiles } from './helpers/platform.js'

/** An app of someone else's, with @fastify/env under its default key. */
async function hostApp() {
  const app = Fastify({ logger: false })
  await app.register(fastifyEnv, {
    schema: { type: 'object', properties: { GREETING: { type: 'string', default: 'hi' } } },
    data: {},
  })
  return app
}

test('chat-store alone, next to @fastify/env: a jsonl store from its own options', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plugins-alone-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const app = await hostApp()
  await app.register(chatStorePlugin, {
    config: { type: 'jsonl', path: join(dir, 'events.jsonl'), fsync: false },
  })
  await app.ready()
  const began = await app.chatStore.beginTurn(
    {
      conversation_id: 'c1',
      request_id: 'r1',
      principal: 'p',
      type: 'user_message',
      role: 'user',
      content: 'hi',
      status: 'complete',
    },
    true,
  )
  assert.equal(began.outcome, 'started')
  assert.deepEqual(
    (app as unknown as { config: unknown }).config,
    { GREETING: 'hi' },
    "the host's config is its own",
  )
  await app.close()
})

test('chat-store refuses to start without a store or its configuration', async () => {
  const app = await hostApp()
  await assert.rejects(async () => {
    await app.register(chatStorePlugin, {})
    await app.ready()
  }, /options.config/)
  await app.close()
})

test('chat-store refuses a store type this version cannot run, at boot', async () => {
  const app = await hostApp()
  await assert.rejects(async () => {
    await app.register(chatStorePlugin, { config: { type: 'postgres' } as never })
    await app.ready()
  }, ConfigError)
  await app.close()
})

test('mcp-registry alone, next to @fastify/env: a real stdio server from its own options', async () => {
  const app = await hostApp()
  await app.register(mcpRegistryPlugin, {
    servers: {
      demo: {
        name: 'demo',
        transport: 'stdio',
        command: process.execPath,
        args: [DEMO_SERVER_PATH],
        env: {},
      },
    },
    connection: { max_reconnect_attempts: 1, connection_timeout: 5, initial_reconnect_delay: 0.1 },
    toolTimeout: 5,
    env: process.env,
    secrets: [],
  })
  await app.ready()
  await mcpSettled(app)
  assert.deepEqual(
    app.mcp.status().map((s) => [s.name, s.state]),
    [['demo', 'ready']],
  )
  const outcome = await app.mcp.call('demo__add', '{"a":2,"b":40}', { signal: new AbortController().signal })
  assert.deepEqual(outcome, { content: '42', is_error: false })
  await app.close()
})

test('mcp-registry with a registry the host app built and started: used as it is, closed with the app', async () => {
  const registry = new McpRegistry({
    servers: {
      demo: {
        name: 'demo',
        transport: 'stdio',
        command: process.execPath,
        args: [DEMO_SERVER_PATH],
        env: {},
      },
    },
    connection: { max_reconnect_attempts: 1, connection_timeout: 5, initial_reconnect_delay: 0.1 },
    toolTimeout: 5,
    env: process.env,
    secrets: [],
    log: pino({ level: 'silent' }),
  })
  registry.start()
  const app = await hostApp()
  await app.register(mcpRegistryPlugin, { registry })
  await app.ready()
  assert.equal(app.mcp, registry)
  await mcpSettled(app)
  const [status] = app.mcp.status()
  assert.equal(status?.state, 'ready')
  const pid = status?.pid
  assert.ok(pid, 'the child runs')
  await app.close()
  assert.deepEqual(
    registry.status().map((s) => s.state),
    ['closed'],
  )
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the child ended with the app')
})

test('mcp-registry refuses a registry option that is not one, at boot', async () => {
  const app = await hostApp()
  await assert.rejects(async () => {
    await app.register(mcpRegistryPlugin, { registry: {} as never })
    await app.ready()
  }, /options.registry/)
  await app.close()
})

test('config next to @fastify/env: both keep their own decorators', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plugins-alone-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await writeConfigFiles(dir, baseConfig('http://127.0.0.1:9/v1'))
  const app = await hostApp()
  await app.register(configPlugin, { env: {}, cwd: dir })
  await app.ready()
  assert.equal(app.platformConfig.llm.provider.model, 'test-model')
  assert.deepEqual((app as unknown as { config: unknown }).config, { GREETING: 'hi' })
  await app.close()
})
