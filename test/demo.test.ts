// `npm run demo` (its compiled script) prints a streamed answer, with no API key and no network.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

test('the offline demo streams four turns, one with a tool call, one with a resource', async () => {
  const script = fileURLToPath(new URL('../demo/run.js', import.meta.url))
  const { stdout } = await promisify(execFile)(process.execPath, [script], {
    env: { PATH: process.env.PATH },
    timeout: 30_000,
  })
  const frames = stdout
    .split('\n')
    .filter((l) => l.startsWith('<<< '))
    .map((l) => JSON.parse(l.slice(4)))
  const statuses = (id: string) => frames.filter((f) => f.request_id === id).map((f) => f.status as string)
  for (const id of ['demo-1', 'demo-2', 'demo-3', 'demo-4']) {
    assert.equal(statuses(id)[0], 'processing', id)
    assert.equal(statuses(id).at(-1), 'complete', id)
  }
  assert.ok(statuses('demo-1').filter((s) => s === 'chunk').length > 5, 'the first answer streams in pieces')
  assert.equal(
    statuses('demo-3').filter((s) => s === 'chunk').length,
    1,
    'the non-streaming answer is one chunk',
  )
  assert.match(stdout, /answer: You said: "And what did I ask before\?"\. This is turn 2 of our conversation/)
  // The first turn called the demo server's add tool and answered with its result.
  const chunks = frames.filter((f) => f.request_id === 'demo-1' && f.status === 'chunk').map((f) => f.chunk)
  assert.deepEqual(chunks.find((c) => c.type === 'tool_call')?.data.arguments, { a: 2, b: 40 })
  assert.equal(chunks.find((c) => c.type === 'tool_result')?.data.content, '42')
  assert.match(stdout, /answer: The tool answered 42/)
  // The fourth turn's user message carried the demo server's readme.
  assert.match(
    stdout,
    /answer: You said: "<resource uri="demo:\/\/readme" server="demo" mime_type="text\/markdown">\n# demo\n/,
  )
})
