// Redaction works on values, never on JSON syntax: a server's literal env values (`true`, `2000`,
// `ready`) are not secrets, so /ready, error frames and every log line stay valid JSON with their
// words intact; what the configuration marks as secret (an `env:` value, an API key, a header
// value, an env entry named like a token) stays hidden wherever it is quoted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/config/load.js'
import { isSecretName } from '../src/config/secrets.js'
import { createLogger, Redactor } from '../src/logging.js'
import { childEnv } from '../src/mcp/stdio-transport.js'
import { startLlmServer } from './helpers/llm-server.js'
import {
  baseConfig,
  Client,
  demoServer,
  LogCapture,
  mcpSettled,
  startPlatform,
  terminal,
  writeConfigFiles,
} from './helpers/platform.js'

/** Ordinary settings a server is commonly given: none of them is a secret. */
const PLAIN_ENV = { DEBUG: 'true', TIMEOUT_MS: '2000', MODE: 'ready' }

const FROM_REF = 'ref-secret-7c1e9a42'
const ENV_TOKEN = 'tok-literal-e5f0a1b3'
const HEADER_VALUE = 'hdr-value-literal-61d2c8'
const API_KEY = 'sk-api-literal-4b2d8f07'
const SECRETS = [FROM_REF, ENV_TOKEN, HEADER_VALUE, API_KEY]

test('literal env values true, 2000 and ready leave /ready, frames and every log line valid JSON, words intact', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers: { demo: demoServer({ env: PLAIN_ENV }) },
  })
  try {
    await mcpSettled(platform.app)
    const ready = await platform.app.inject({ url: '/ready' })
    assert.equal(ready.statusCode, 200)
    const body = ready.json() // throws on invalid JSON
    assert.equal(body.status, 'ready')
    assert.ok(ready.body.includes('"status":"ready"'), ready.body)
    assert.equal(body.checks.mcp.ready, true)
    assert.equal(body.checks.mcp.servers[0].state, 'ready')

    llm.reply({ status: 400, json: { error: { message: 'server ready: true after 2000 ms' } } })
    const client = await Client.inject(platform.app)
    const failed = await client.chatAndWait('t1', { text: 'hello' })
    client.close()
    const error = terminal(failed).error!
    assert.equal(error.code, 502)
    assert.match(error.message, /server ready: true after 2000 ms/)
    assert.equal(error.data?.upstream_message, 'server ready: true after 2000 ms')

    platform.app.log.info({ ready: true, timeout_ms: 2000, state: 'ready' }, 'ready')
    await platform.app.close()
    const lines = platform.logs.lines() // parses every line: throws on invalid JSON
    const mine = lines.find((l) => l.msg === 'ready')
    assert.deepEqual(
      { ready: mine?.ready, timeout_ms: mine?.timeout_ms, state: mine?.state },
      { ready: true, timeout_ms: 2000, state: 'ready' },
    )
    assert.ok(!platform.logs.text.includes('[redacted]'), 'nothing here is a secret')
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('a real secret stays hidden in /ready, error frames and logs, next to words that stay', async () => {
  // A stdio server that fails quoting every secret (its stderr is the reason /ready shows).
  const script = [
    'const [header, key] = process.argv.slice(1)',
    'const e = process.env',
    'console.error([e.FROM_REF, e.API_TOKEN, header, key, e.MODE, e.DEBUG].join(" "))',
    'process.exit(1)',
  ].join(';')
  const llm = await startLlmServer()
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    env: { PLANTED: FROM_REF, LOG_LEVEL: 'trace' },
    patch: (c) => {
      c.llm.providers.local.api_key = API_KEY
    },
    servers: {
      broken: {
        command: process.execPath,
        args: ['-e', script, HEADER_VALUE, API_KEY],
        env: { FROM_REF: 'env:PLANTED', API_TOKEN: ENV_TOKEN, ...PLAIN_ENV },
      },
      remote: { url: 'http://127.0.0.1:9/mcp', headers: { 'X-Api-Key': HEADER_VALUE } },
    },
  })
  try {
    await mcpSettled(platform.app)
    const ready = await platform.app.inject({ url: '/ready' })
    const body = ready.json()
    const broken = body.checks.mcp.servers.find((s: { name: string }) => s.name === 'broken')
    assert.equal(broken.state, 'failed')
    assert.match(broken.error, /\[redacted\] \[redacted\] \[redacted\] \[redacted\] ready true/)
    for (const secret of SECRETS) assert.ok(!ready.body.includes(secret), `${secret} not in /ready`)

    const quoted = `denied for ${SECRETS.join(', ')}; ready: true`
    llm.reply({ status: 401, json: { error: { message: quoted } } })
    const client = await Client.inject(platform.app)
    const failed = await client.chatAndWait('t1', { text: 'hello' })
    client.close()
    const error = terminal(failed).error!
    assert.equal(error.code, 502)
    const frame = JSON.stringify(error)
    for (const secret of SECRETS) assert.ok(!frame.includes(secret), `${secret} not in the error frame`)
    assert.equal(
      error.data?.upstream_message,
      'denied for [redacted], [redacted], [redacted], [redacted]; ready: true',
    )

    await platform.app.close()
    const lines = platform.logs.lines()
    assert.ok(
      lines.some((l) => l.msg === 'mcp server stderr' && /\[redacted\] ready true$/.test(l.stderr)),
      'the stderr line is logged, secrets cut out',
    )
    for (const secret of SECRETS) assert.ok(!platform.logs.text.includes(secret), `${secret} not in the logs`)
  } finally {
    await platform.close()
    await llm.close()
  }
})

test('what a server env makes secret: env: values and names saying token, key, secret, password, …', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'redaction-test-'))
  try {
    const paths = await writeConfigFiles(dir, baseConfig('http://127.0.0.1:9/v1'), {
      mcpServers: {
        demo: {
          command: 'node',
          env: {
            ...PLAIN_ENV,
            FROM_REF: 'env:PLANTED',
            API_TOKEN: 'literal-token-1',
            db_password: 'literal-password-2',
            ClientSecret: 'literal-secret-3',
            SIGNING_KEY: 'literal-key-4',
            AWS_CREDENTIALS: 'literal-credentials-5',
            AUTH_HEADER: 'literal-auth-6',
          },
        },
      },
    })
    const config = await loadConfig({ ...paths, env: { PLANTED: FROM_REF } })
    assert.deepEqual(
      [...config.secrets].sort(),
      [
        FROM_REF,
        'literal-token-1',
        'literal-password-2',
        'literal-secret-3',
        'literal-key-4',
        'literal-credentials-5',
        'literal-auth-6',
      ].sort(),
    )
    // A child still gets the parent's ordinary variables that happen to equal a plain env value.
    const parent = { CI: 'true', PORT: '2000', HOLDS_SECRET: FROM_REF, ALSO: 'literal-token-1' }
    assert.deepEqual(childEnv(parent, config.secrets, {}), { CI: 'true', PORT: '2000' })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a log line is redacted in its string values only: escapes, keys and numbers are kept', () => {
  const redactor = new Redactor()
  // `n123x` also matches the escape of a newline before `123x`; `pa"ss"word` is escaped in a line.
  redactor.add(['n123x', 'pa"ss"word', '4242', 'key-as-key'])
  const logs = new LogCapture()
  const log = createLogger({ level: 'info', redactor, stream: logs })
  log.info({ text: 'a\n123x', quoted: 'is pa"ss"word?', port: 4242, 'key-as-key': 'n123x!' }, 'say 4242')
  const [line] = logs.lines()
  assert.deepEqual(
    { text: line?.text, quoted: line?.quoted, port: line?.port, key: line?.['key-as-key'], msg: line?.msg },
    { text: 'a\n123x', quoted: 'is [redacted]?', port: 4242, key: '[redacted]!', msg: 'say [redacted]' },
  )
})

test('a literal env value is a secret when a word of its name says so, not a part of a word', () => {
  const secret = [
    'API_TOKEN',
    'db_password',
    'ClientSecret',
    'SIGNING_KEY',
    'AWS_CREDENTIALS',
    'AUTH_HEADER',
    'apiKey',
  ]
  const plain = [
    'MAX_TOKENS',
    'TOKENIZERS_PARALLELISM',
    'AUTHOR',
    'KEYBOARD_LAYOUT',
    'OAUTH_CALLBACK_PORT',
    'MONKEY_MODE',
  ]
  for (const name of secret) assert.equal(isSecretName(name), true, name)
  for (const name of plain) assert.equal(isSecretName(name), false, name)
})
