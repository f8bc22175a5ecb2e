// The tokenizer is not built at start (start-up does not wait for it), nor in a client's first turn:
// it is built when the first client connects, before that client has asked anything.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { tokenizerLoaded } from '../src/tokens/counter.js'
import { startLlmServer } from './helpers/llm-server.js'
import { Client, onCleanup, startPlatform } from './helpers/platform.js'

test('the tokenizer is built when the first client connects, not at start and not in its first turn', async (t) => {
  const llm = await startLlmServer()
  onCleanup(t, () => llm.close())
  const platform = await startPlatform({ baseUrl: llm.baseUrl })
  onCleanup(t, () => platform.close())
  assert.equal(tokenizerLoaded(), false, 'not built at start')

  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))
  for (let waited = 0; !tokenizerLoaded() && waited < 5000; waited += 10) await sleep(10)
  assert.equal(tokenizerLoaded(), true, 'built once a client is connected')
  assert.equal(llm.requests.length, 0, 'before any request of that client')
})
