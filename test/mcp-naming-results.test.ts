// The pure parts of the MCP registry: LLM-facing tool names and tool results as text.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { assignToolNames, llmToolName, MAX_TOOL_NAME_LENGTH } from '../src/mcp/naming.js'
import { toolOutcome } from '../src/mcp/results.js'
import { base64Bytes } from '../src/util/base64.js'

const SAFE = /^[A-Za-z0-9_-]{1,64}$/

test('a tool is named SERVER__TOOL, with characters outside [A-Za-z0-9_-] replaced', () => {
  assert.equal(llmToolName({ server: 'demo', tool: 'add' }), 'demo__add')
  assert.equal(llmToolName({ server: 'files', tool: 'read-file' }), 'files__read-file')
  assert.equal(llmToolName({ server: 'files', tool: 'read.file v2/ä' }), 'files__read_file_v2__')
})

test('a name over 64 characters is cut and suffixed with a stable hash of the full name', () => {
  const long = 'x'.repeat(80)
  const name = llmToolName({ server: 'srv', tool: long })
  assert.equal(name.length, MAX_TOOL_NAME_LENGTH)
  assert.match(name, SAFE)
  assert.match(name, /^srv__x+_[0-9a-f]{8}$/)
  assert.equal(
    llmToolName({ server: 'srv', tool: long }),
    name,
    'the same tool gets the same name every time',
  )
  const other = llmToolName({ server: 'srv', tool: `${long}y` })
  assert.notEqual(other, name, 'tools sharing the first 55 characters still differ')
  assert.equal(other.slice(0, 55), name.slice(0, 55))
  const exactly64 = `srv__${'y'.repeat(59)}`
  assert.equal(llmToolName({ server: 'srv', tool: 'y'.repeat(59) }), exactly64, '64 characters is still fine')
})

test('colliding names are resolved the same way whatever the order of the tools', () => {
  const tools = [
    { server: 'a', tool: 'x.y' },
    { server: 'a', tool: 'x_y' },
    { server: 'a', tool: 'b__c' },
    { server: 'a__b', tool: 'c' },
    { server: 'z', tool: 'plain' },
  ]
  const names = assignToolNames(tools)
  assert.equal(new Set(names).size, tools.length, 'every tool has its own name')
  for (const name of names) assert.match(name, SAFE)
  assert.equal(names[1], 'a__x_y', 'the tool whose name needed no change keeps it')
  assert.match(names[0] as string, /^a__x_y_[0-9a-f]{8}$/)
  assert.equal(names[2], 'a__b__c', 'between two exact names, the first by original name wins')
  assert.match(names[3] as string, /^a__b__c_[0-9a-f]{8}$/)
  assert.equal(names[4], 'z__plain')

  const reversed = assignToolNames([...tools].reverse()).reverse()
  assert.deepEqual(reversed, names)
})

test('base64 sizes are computed without decoding', () => {
  for (const text of ['', 'a', 'ab', 'abc', 'abcd', 'hello world!']) {
    const data = Buffer.from(text).toString('base64')
    assert.equal(base64Bytes(data), text.length, JSON.stringify(text))
    assert.equal(base64Bytes(data.replace(/=+$/, '')), text.length, `${JSON.stringify(text)} without padding`)
  }
})

test('base64 sizes of line-wrapped data (MIME) count the data only, as Buffer decodes it', () => {
  const bytes = Buffer.from(Array.from({ length: 200 }, (_, i) => i))
  const wrapped = bytes.toString('base64').replace(/.{76}/g, '$&\r\n')
  assert.ok(wrapped.includes('\r\n'))
  assert.equal(base64Bytes(wrapped), 200)
  assert.equal(base64Bytes(wrapped), Buffer.from(wrapped, 'base64').length)
})

test('text content goes to the LLM as it is, blocks joined by new lines', () => {
  const outcome = toolOutcome({
    content: [
      { type: 'text', text: 'first' },
      { type: 'text', text: 'second\nline' },
    ],
  })
  assert.deepEqual(outcome, { content: 'first\nsecond\nline', is_error: false })
})

test('structured content is sent as JSON only when there is no text block', () => {
  const structured = { temperature: 33, conditions: 'Cloudy' }
  assert.deepEqual(toolOutcome({ content: [], structuredContent: structured }), {
    content: JSON.stringify(structured),
    is_error: false,
  })
  const both = toolOutcome({ content: [{ type: 'text', text: '33 degrees' }], structuredContent: structured })
  assert.equal(both.content, '33 degrees', 'said once, not twice')
})

test('images and audio are described by type, mime type and size', () => {
  const png = Buffer.alloc(68).toString('base64')
  const wav = Buffer.alloc(1000).toString('base64')
  const outcome = toolOutcome({
    content: [
      { type: 'text', text: 'Here it is:' },
      { type: 'image', data: png, mimeType: 'image/png' },
      { type: 'audio', data: wav, mimeType: 'audio/wav' },
    ],
  })
  assert.equal(outcome.content, 'Here it is:\n[image: image/png, 68 bytes]\n[audio: audio/wav, 1000 bytes]')
  assert.doesNotMatch(outcome.content, /AAAA/, 'no base64 inlined')
})

test('embedded resources show their URI and text; a blob is described, not inlined', () => {
  const blob = Buffer.from('binary stuff').toString('base64')
  const outcome = toolOutcome({
    content: [
      { type: 'resource', resource: { uri: 'demo://readme', mimeType: 'text/markdown', text: '# demo' } },
      { type: 'resource', resource: { uri: 'demo://pixel.png', mimeType: 'image/png', blob } },
      { type: 'resource', resource: { uri: 'demo://plain', text: 'no mime' } },
    ],
  })
  assert.equal(
    outcome.content,
    [
      '[resource: demo://readme (text/markdown)]',
      '# demo',
      '[resource: demo://pixel.png (image/png), 12 bytes of binary data, not shown]',
      '[resource: demo://plain]',
      'no mime',
    ].join('\n'),
  )
})

test('resource links show their URI, name, mime type and description', () => {
  const outcome = toolOutcome({
    content: [
      {
        type: 'resource_link',
        uri: 'file:///data/report.pdf',
        name: 'report.pdf',
        mimeType: 'application/pdf',
        description: 'The quarterly report',
      },
      { type: 'resource_link', uri: 'demo://bare', name: 'bare' },
    ],
  })
  assert.equal(
    outcome.content,
    '[resource link: file:///data/report.pdf (report.pdf, application/pdf)] The quarterly report\n' +
      '[resource link: demo://bare (bare)]',
  )
})

test('isError is honoured, and an empty result still says something', () => {
  assert.deepEqual(toolOutcome({ isError: true, content: [{ type: 'text', text: 'failed: boom' }] }), {
    content: 'failed: boom',
    is_error: true,
  })
  assert.deepEqual(toolOutcome({ isError: true, content: [] }), {
    content: 'The tool failed without saying why.',
    is_error: true,
  })
  assert.deepEqual(toolOutcome({ content: [] }), {
    content: '(the tool returned no content)',
    is_error: false,
  })
})

test('a result of the old protocol (toolResult) is sent as JSON', () => {
  assert.deepEqual(toolOutcome({ toolResult: { answer: 42 } }), { content: '{"answer":42}', is_error: false })
})
