// docs/protocol.md is generated from the schemas; this fails when one changed without the other.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { renderProtocolDoc } from '../src/chat/protocol-doc.js'

test('docs/protocol.md matches the protocol schemas and error catalogue (run `npm run docs`)', async () => {
  const committed = await readFile(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
  assert.equal(committed, renderProtocolDoc())
})
