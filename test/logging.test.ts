// Logs are JSON, one line per turn with timings, failures carry error.type, secrets never appear.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openAiStream, startLlmServer } from './helpers/llm-server.js'
import { Client, startPlatform, terminal } from './helpers/platform.js'

const SECRET_FROM_ENV = 'sk-env-planted-5f1d2c9a7b3e'
const SECRET_IN_FILE = 'sk-file-planted-8e4a6c2d0f1b'

test('a turn logs one JSON line with its timings; secrets from env and file never appear', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    env: { PLANTED_KEY: SECRET_FROM_ENV, LOG_LEVEL: 'trace' },
    patch: (c) => {
      c.llm.providers.local.api_key = 'env:PLANTED_KEY'
      c.auth = { api_keys: [{ name: 'alice', key: SECRET_IN_FILE }] }
    },
  })
  try {
    // The provider echoes the key it was sent in its error message, as some real ones do.
    llm.reply({ body: openAiStream(['fine']) })
    llm.reply((req) => ({
      status: 401,
      json: { error: { message: `Incorrect API key provided: ${String(req.headers.authorization)}` } },
    }))
    const client = await Client.inject(platform.app, { authorization: `Bearer ${SECRET_IN_FILE}` })
    const ok = await client.chatAndWait('t1', { text: 'hello' })
    const failed = await client.chatAndWait('t2', { text: 'again' })
    client.close()

    assert.equal(terminal(ok).status, 'complete')
    assert.equal(
      llm.requests[0]!.headers.authorization,
      `Bearer ${SECRET_FROM_ENV}`,
      'the key did reach the provider',
    )
    const error = terminal(failed).error!
    assert.equal(error.code, 502)
    assert.ok(!JSON.stringify(failed).includes(SECRET_FROM_ENV), 'no secret in an error frame')
    assert.match(error.message, /\[redacted\]/)

    const lines = platform.logs.lines()
    const turn = lines.find((l) => l.msg === 'turn' && l.request_id === 't1')
    assert.ok(turn, 'one line for the turn')
    assert.equal(turn.outcome, 'complete')
    assert.equal(turn.principal, 'alice')
    for (const key of ['first_token_ms', 'llm_ms', 'total_ms'])
      assert.equal(typeof turn.timings[key], 'number', key)
    const failure = lines.find((l) => l.msg === 'turn failed' && l.request_id === 't2')
    assert.equal(failure?.error.type, 'LLM_UPSTREAM_ERROR')

    await platform.app.close()
    const all = platform.logs.text
    assert.ok(!all.includes(SECRET_FROM_ENV), 'the env secret is not in the logs')
    assert.ok(!all.includes(SECRET_IN_FILE), 'the file secret is not in the logs')
  } finally {
    await platform.close()
    await llm.close()
  }
})
