// The error table (src/errors.ts), in the manner of fastify's test/internals/errors.test.js: the
// number of codes is pinned (adding one means updating this test), each entry's key is its code,
// each makes an error with a numeric status, each is documented, and docs/protocol.md lists it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, errors, isPlatformError, type ErrorCode } from '../src/errors.js'
import { Authenticator } from '../src/chat/auth.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const codes = Object.keys(errors) as ErrorCode[]
const expectedErrors = 42

test(`the table has ${expectedErrors} codes`, () => {
  assert.equal(codes.length, expectedErrors)
})

test('each key is the code of the errors its entry makes', () => {
  for (const key of codes) assert.equal(new errors[key]().code, key)
})

test('each entry makes a platform error with a numeric status', () => {
  for (const key of codes) {
    const error = new errors[key]()
    assert.ok(error instanceof Error, key)
    assert.ok(error instanceof errors[key], key)
    assert.ok(isPlatformError(error), key)
    assert.ok(Number.isInteger(error.statusCode) && error.statusCode >= 400 && error.statusCode < 600, key)
  }
})

test('each entry is documented: where it shows, and one line of what it means', () => {
  for (const key of codes) {
    assert.ok(['frame', 'upgrade', 'log', 'exit'].includes(errors[key].seen), key)
    const doc = errors[key].doc
    assert.ok(doc.trim().length > 0, `${key} has no documentation`)
    assert.doesNotMatch(doc, /\n|\|/, `${key}: one line, no table separator`)
  }
})

test('docs/protocol.md lists each code with its status and documentation', async () => {
  const doc = await readFile(join(ROOT, 'docs/protocol.md'), 'utf8')
  for (const key of codes) {
    const row = doc.split('\n').find((line) => line.includes(`| \`${key}\` |`))
    assert.ok(row, `${key} is not in docs/protocol.md`)
    assert.ok(row.startsWith(`| ${new errors[key]().statusCode} |`), row)
    assert.ok(row.endsWith(`| ${errors[key].doc} |`), row)
  }
})

test('every upper-case `type` logged or sent in src/ and plugins/ is a code of the table', async () => {
  const emitted = new Set<string>()
  for (const dir of ['src', 'plugins']) {
    for (const file of await readdir(join(ROOT, dir), { recursive: true })) {
      if (!file.endsWith('.ts')) continue
      const source = await readFile(join(ROOT, dir, file), 'utf8')
      for (const [, code] of source.matchAll(/\btype: '([A-Z][A-Z0-9_]+)'/g)) emitted.add(code!)
      for (const [, code] of source.matchAll(/\berrors\.([A-Z][A-Z0-9_]+)\b/g)) emitted.add(code!)
    }
  }
  assert.ok(emitted.has('WEBSOCKET_ERROR') && emitted.has('SHUTTING_DOWN'), 'the scan finds codes')
  for (const code of emitted)
    assert.ok(Object.hasOwn(errors, code), `${code} is emitted but not in the table`)
})

test('a store error carries its detail and its cause', () => {
  const cause = new Error('EIO')
  const error = new errors.STORE_WRITE_FAILED('could not write the event log', { cause })
  assert.ok(error instanceof errors.STORE_WRITE_FAILED)
  assert.equal(error.code, 'STORE_WRITE_FAILED')
  assert.equal(error.statusCode, 503)
  assert.equal(error.message, 'The conversation store failed: could not write the event log')
  assert.equal(error.cause, cause)
  assert.equal(new errors.STORE_CLOSED('the store is closed').cause, undefined)
})

test('ConfigError is CONFIG_INVALID with one line per problem', () => {
  const error = new ConfigError([
    { path: 'websocket.port', message: 'must be an integer' },
    { path: '', message: 'config.yaml not found' },
  ])
  assert.ok(error instanceof ConfigError)
  assert.ok(error instanceof errors.CONFIG_INVALID)
  assert.equal(error.code, 'CONFIG_INVALID')
  assert.equal(error.message, 'websocket.port: must be an integer\nconfig.yaml not found')
  assert.equal(error.problems.length, 2)
})

test('a refused upgrade carries its table error: UNAUTHENTICATED (401), ORIGIN_NOT_ALLOWED (403)', () => {
  const auth = new Authenticator({
    auth: { api_keys: [{ name: 'alice', key: 'k-1' }] },
    websocket: { allowed_origins: ['https://app.example.com'] },
  } as unknown as ConstructorParameters<typeof Authenticator>[0])
  const refused = (headers: Record<string, string>) => {
    const result = auth.authenticate(headers)
    if (result.ok) throw new Error(`accepted: ${JSON.stringify(headers)}`)
    return result
  }
  const missing = refused({})
  assert.deepEqual([missing.error.code, missing.status], ['UNAUTHENTICATED', 401])
  assert.match(missing.message, /^Missing API key/)
  const wrong = refused({ authorization: 'Bearer wrong' })
  assert.deepEqual([wrong.error.code, wrong.status], ['UNAUTHENTICATED', 401])
  assert.match(wrong.message, /^Invalid API key/)
  const origin = refused({ authorization: 'Bearer k-1', origin: 'https://evil.example' })
  assert.deepEqual([origin.error.code, origin.status], ['ORIGIN_NOT_ALLOWED', 403])
  assert.deepEqual(auth.authenticate({ authorization: 'Bearer k-1' }), { ok: true, principal: 'alice' })
})
