// MCP prompts and resources through the whole platform: list_prompts, get_prompt, list_resources,
// read_resource and chat's `prompt` / `resources`, against our demo server, the reference
// server-everything and a fixture whose lists come in pages, all over real stdio.
import { after, before, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openAiStream, openAiToolCalls, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import {
  demoServer,
  mcpSettled,
  startPlatform,
  terminal,
  type Platform,
  assertError,
  resultOf,
  withClient,
} from './helpers/platform.js'

const EVERYTHING_DIR = fileURLToPath(
  new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/', import.meta.url),
)
const PAGED_SERVER_PATH = fileURLToPath(new URL('./fixtures/paged-server.js', import.meta.url))
/** What test/fixtures/paged-server.ts serves, in pages of 2. */
const PAGED = { resources: 12, templates: 3, prompts: 5 }

/** The demo server's texts (servers/demo.ts). */
const README = '# demo\nAn example MCP server of mcp-platform.'
const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII='
const PIXEL_BYTES = Buffer.from(PIXEL, 'base64').length

/** The static documents server-everything serves as resources (one per file of its docs/). */
const everythingDocs = readdirSync(join(EVERYTHING_DIR, 'docs')).filter((name) =>
  statSync(join(EVERYTHING_DIR, 'docs', name)).isFile(),
)

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers: {
      demo: demoServer(),
      everything: {
        command: process.execPath,
        args: [join(EVERYTHING_DIR, 'index.js'), 'stdio'],
      },
      paged: { command: process.execPath, args: [PAGED_SERVER_PATH] },
    },
  })
  await mcpSettled(platform.app)
  const states = platform.app.mcp.status().map((s) => `${s.name}:${s.state}`)
  assert.deepEqual(states.sort(), ['demo:ready', 'everything:ready', 'paged:ready'])
})
after(async () => {
  await platform?.close()
  await llm?.close()
})
beforeEach(() => {
  llm.requests.length = 0
})

/** A message's content as text: a string as is, OpenAI content parts joined. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content
  if (Array.isArray(content))
    return content.map((part: any) => (typeof part?.text === 'string' ? part.text : '')).join('')
  return ''
}

/** Asserts every key of `expected` has that value in `actual` (other keys are allowed). */
function assertFields(actual: any, expected: Record<string, unknown>, what: string): void {
  assert.ok(actual && typeof actual === 'object', `${what}: ${JSON.stringify(actual)}`)
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(actual[key], value, `${what}.${key} in ${JSON.stringify(actual)}`)
  }
}

test('list_prompts: every prompt of every server with its arguments, every page followed', async () => {
  const { prompts } = resultOf(await withClient(platform.app, (c) => c.ask('list_prompts')))
  const of = (server: string) =>
    (prompts as any[])
      .filter((p) => p.server === server)
      .map((p) => p.name as string)
      .sort()

  assert.deepEqual(of('demo'), ['greeting', 'summarize'], 'times_table stays hidden until unlock')
  assert.deepEqual(of('everything'), [
    'args-prompt',
    'completable-prompt',
    'resource-prompt',
    'simple-prompt',
  ])
  assert.deepEqual(
    of('paged'),
    Array.from({ length: PAGED.prompts }, (_, i) => `prompt-${i + 1}`),
    'all pages of prompts/list',
  )
  assert.equal(prompts.length, 2 + 4 + PAGED.prompts, 'nothing listed twice')

  const find = (server: string, name: string) =>
    prompts.find((p: any) => p.server === server && p.name === name)
  const greeting = find('demo', 'greeting')
  assert.equal(greeting.description, 'Greet someone by name.')
  assert.deepEqual(greeting.arguments, [{ name: 'name', description: 'who to greet', required: true }])
  const summarize = find('demo', 'summarize')
  assert.deepEqual(
    summarize.arguments.map((a: any) => [a.name, Boolean(a.required)]),
    [
      ['topic', true],
      ['style', false],
    ],
  )
  assert.equal(summarize.arguments[1].description, 'e.g. short, bullet points')

  const args = find('everything', 'args-prompt')
  assert.equal(args.description, 'A prompt with two arguments, one required and one optional')
  assert.deepEqual(
    args.arguments.map((a: any) => [a.name, Boolean(a.required)]),
    [
      ['city', true],
      ['state', false],
    ],
  )
  assert.equal(args.arguments[0].description, 'Name of the city')
  // The server lists simple-prompt with no `arguments` at all: the platform still gives a list.
  assert.deepEqual(find('everything', 'simple-prompt').arguments, [])
})

test('get_prompt: the messages as the server gave them, arguments filled in, optional ones optional', async () => {
  await withClient(platform.app, async (c) => {
    const greeting = resultOf(
      await c.ask('get_prompt', { server: 'demo', name: 'greeting', arguments: { name: 'Ada' } }),
    )
    assert.deepEqual(greeting.messages, [
      { role: 'user', content: { type: 'text', text: 'Please greet Ada warmly.' } },
    ])

    const short = resultOf(
      await c.ask('get_prompt', { server: 'demo', name: 'summarize', arguments: { topic: 'MCP' } }),
    )
    assert.deepEqual(short.messages, [{ role: 'user', content: { type: 'text', text: 'Summarize MCP.' } }])
    const styled = resultOf(
      await c.ask('get_prompt', {
        server: 'demo',
        name: 'summarize',
        arguments: { topic: 'MCP', style: 'bullet points' },
      }),
    )
    assert.deepEqual(styled.messages[0].content.text, 'Summarize MCP as bullet points.')

    const simple = resultOf(await c.ask('get_prompt', { server: 'everything', name: 'simple-prompt' }))
    assert.deepEqual(simple.messages, [
      { role: 'user', content: { type: 'text', text: 'This is a simple prompt without arguments.' } },
    ])
    const weather = resultOf(
      await c.ask('get_prompt', {
        server: 'everything',
        name: 'args-prompt',
        arguments: { city: 'Lyon', state: 'Rhône' },
      }),
    )
    assert.equal(weather.messages[0].content.text, "What's weather in Lyon, Rhône?")

    // A message that embeds a resource comes through unchanged.
    const embedded = resultOf(
      await c.ask('get_prompt', {
        server: 'everything',
        name: 'resource-prompt',
        arguments: { resourceType: 'Text', resourceId: '2' },
      }),
    )
    assert.equal(embedded.messages.length, 2)
    assert.equal(embedded.messages[1].role, 'user')
    assert.equal(embedded.messages[1].content.type, 'resource')
    assertFields(
      embedded.messages[1].content.resource,
      { uri: 'demo://resource/dynamic/text/2', mimeType: 'text/plain' },
      'embedded resource',
    )
    assert.match(embedded.messages[1].content.resource.text, /^Resource 2: This is a plaintext resource/)

    // The last page of a paginated list is reachable too.
    const last = resultOf(await c.ask('get_prompt', { server: 'paged', name: `prompt-${PAGED.prompts}` }))
    assert.equal(last.messages[0].content.text, `This is prompt-${PAGED.prompts}.`)
  })
})

test('get_prompt errors: unknown server 404, unknown prompt 404, missing or non-string argument 400', async () => {
  await withClient(platform.app, async (c) => {
    assertError(
      await c.ask('get_prompt', { server: 'nowhere', name: 'greeting', arguments: { name: 'Ada' } }),
      404,
      'MCP_SERVER_NOT_FOUND',
    )
    assertError(
      await c.ask('get_prompt', { server: 'demo', name: 'no-such-prompt' }),
      404,
      'PROMPT_NOT_FOUND',
    )
    // A prompt of another server is not this server's.
    assertError(await c.ask('get_prompt', { server: 'demo', name: 'simple-prompt' }), 404, 'PROMPT_NOT_FOUND')

    const missingField = async (payload: Record<string, unknown>, field: string) => {
      const frame = await c.ask('get_prompt', payload)
      assertError(frame, 400, 'VALIDATION_FAILED')
      const issues = frame.error!.data?.validation_errors as any[]
      assert.ok(Array.isArray(issues), JSON.stringify(frame.error))
      assert.ok(
        issues.some((i) => i.field === field && i.type === 'missing'),
        `${field} missing in ${JSON.stringify(issues)}`,
      )
    }
    await missingField({ server: 'demo', name: 'greeting', arguments: {} }, 'payload.arguments.name')
    await missingField({ server: 'demo', name: 'greeting' }, 'payload.arguments.name')
    await missingField(
      { server: 'demo', name: 'summarize', arguments: { style: 'short' } },
      'payload.arguments.topic',
    )
    await missingField(
      { server: 'everything', name: 'args-prompt', arguments: { state: 'TX' } },
      'payload.arguments.city',
    )

    assertError(
      await c.ask('get_prompt', { server: 'demo', name: 'greeting', arguments: { name: 42 } }),
      400,
      'VALIDATION_FAILED',
    )
    assertError(
      await c.ask('get_prompt', { server: 'demo', name: 'greeting', arguments: { name: ['Ada'] } }),
      400,
      'VALIDATION_FAILED',
    )
  })
})

test('list_resources: resources and templates of every server, every page followed', async () => {
  const { resources } = resultOf(await withClient(platform.app, (c) => c.ask('list_resources')))
  const of = (server: string) => (resources as any[]).filter((r) => r.server === server)
  for (const r of resources as any[]) {
    assert.ok('uri' in r !== 'uri_template' in r, `a resource or a template: ${JSON.stringify(r)}`)
    assert.equal(typeof r.name, 'string')
  }

  const demo = of('demo')
  assert.deepEqual(demo.map((r) => r.uri ?? r.uri_template).sort(), [
    'demo://notes/{id}',
    'demo://pixel.png',
    'demo://readme',
  ])
  assertFields(
    demo.find((r) => r.uri === 'demo://readme'),
    { name: 'readme', mime_type: 'text/markdown', description: 'What this server is.' },
    'readme',
  )
  assertFields(
    demo.find((r) => r.uri === 'demo://pixel.png'),
    { name: 'pixel', mime_type: 'image/png' },
    'pixel',
  )
  assertFields(
    demo.find((r) => r.uri_template === 'demo://notes/{id}'),
    { name: 'note', mime_type: 'text/plain', description: 'A note by id.' },
    'notes template',
  )

  // server-everything: one resource per file of its docs/, and two templates.
  const everything = of('everything')
  assert.deepEqual(
    everything
      .filter((r) => r.uri)
      .map((r) => r.uri)
      .sort(),
    everythingDocs.map((name) => `demo://resource/static/document/${encodeURIComponent(name)}`).sort(),
  )
  assert.deepEqual(
    everything
      .filter((r) => r.uri_template)
      .map((r) => r.uri_template)
      .sort(),
    ['demo://resource/dynamic/blob/{resourceId}', 'demo://resource/dynamic/text/{resourceId}'],
  )
  assertFields(
    everything.find((r) => r.uri_template === 'demo://resource/dynamic/blob/{resourceId}'),
    { name: 'Dynamic Blob Resource', mime_type: 'application/octet-stream' },
    'blob template',
  )
  assertFields(
    everything.find((r) => r.uri === 'demo://resource/static/document/features.md'),
    { name: 'features.md', mime_type: 'text/markdown' },
    'features.md',
  )

  // The paged fixture serves 2 per page: only following nextCursor to the end finds them all.
  const paged = of('paged')
  assert.equal(paged.filter((r) => r.uri).length, PAGED.resources, 'every page of resources/list')
  assert.deepEqual(
    new Set(paged.filter((r) => r.uri).map((r) => r.uri)),
    new Set(Array.from({ length: PAGED.resources }, (_, i) => `paged://item/${i + 1}`)),
  )
  assert.equal(
    paged.filter((r) => r.uri_template).length,
    PAGED.templates,
    'every page of resources/templates/list',
  )

  assert.equal(resources.length, demo.length + everything.length + paged.length, 'no other server')
  assert.equal(resources.length, 3 + everythingDocs.length + 2 + PAGED.resources + PAGED.templates)
})

test('read_resource: text, blob and template URIs, with or without naming the server', async () => {
  await withClient(platform.app, async (c) => {
    const readme = resultOf(await c.ask('read_resource', { server: 'demo', uri: 'demo://readme' }))
    assert.deepEqual(readme.contents, [{ uri: 'demo://readme', mimeType: 'text/markdown', text: README }])
    // Listed by one server only: `server` may be left out.
    const again = resultOf(await c.ask('read_resource', { uri: 'demo://readme' }))
    assert.deepEqual(again.contents, readme.contents)

    const pixel = resultOf(await c.ask('read_resource', { uri: 'demo://pixel.png' }))
    assert.deepEqual(pixel.contents, [{ uri: 'demo://pixel.png', mimeType: 'image/png', blob: PIXEL }])

    const note = resultOf(await c.ask('read_resource', { server: 'demo', uri: 'demo://notes/7' }))
    assert.deepEqual(note.contents, [{ uri: 'demo://notes/7', mimeType: 'text/plain', text: 'Note 7.' }])
    const noteByTemplate = resultOf(await c.ask('read_resource', { uri: 'demo://notes/42' }))
    assert.equal(noteByTemplate.contents[0].text, 'Note 42.', 'found by its template alone')

    const doc = resultOf(await c.ask('read_resource', { uri: 'demo://resource/static/document/features.md' }))
    assertFields(
      doc.contents[0],
      {
        uri: 'demo://resource/static/document/features.md',
        mimeType: 'text/markdown',
        text: readFileSync(join(EVERYTHING_DIR, 'docs', 'features.md'), 'utf8'),
      },
      'features.md',
    )
    const dynamic = resultOf(await c.ask('read_resource', { uri: 'demo://resource/dynamic/text/3' }))
    assert.match(dynamic.contents[0].text, /^Resource 3: This is a plaintext resource created at /)
    const blob = resultOf(
      await c.ask('read_resource', { server: 'everything', uri: 'demo://resource/dynamic/blob/4' }),
    )
    assert.equal(blob.contents[0].text, undefined)
    assert.match(
      Buffer.from(blob.contents[0].blob, 'base64').toString('utf8'),
      /^Resource 4: This is a base64 blob/,
    )

    const lastPage = resultOf(await c.ask('read_resource', { uri: `paged://item/${PAGED.resources}` }))
    assert.deepEqual(lastPage.contents, [
      { uri: `paged://item/${PAGED.resources}`, mimeType: 'text/plain', text: `Item ${PAGED.resources}.` },
    ])
  })
})

test('read_resource errors: nobody has it 404, unknown server 404', async () => {
  await withClient(platform.app, async (c) => {
    assertError(await c.ask('read_resource', { uri: 'demo://no-such-thing' }), 404, 'RESOURCE_NOT_FOUND')
    assertError(await c.ask('read_resource', { uri: 'nowhere://at/all' }), 404, 'RESOURCE_NOT_FOUND')
    assertError(
      await c.ask('read_resource', { server: 'nowhere', uri: 'demo://readme' }),
      404,
      'MCP_SERVER_NOT_FOUND',
    )
    // Named server, but it does not have that resource (another server does).
    assertError(
      await c.ask('read_resource', { server: 'demo', uri: 'demo://resource/static/document/features.md' }),
      404,
      'RESOURCE_NOT_FOUND',
    )
    assertError(await c.ask('read_resource', { server: 'demo' }), 400, 'VALIDATION_FAILED')
  })
})

test('the same resource on two servers: RESOURCE_AMBIGUOUS unless the server is named', async (t) => {
  const dup = await startPlatform({
    baseUrl: llm.baseUrl,
    servers: { demo: demoServer(), demo2: demoServer() },
  })
  t.after(() => dup.close())
  await mcpSettled(dup.app)

  await withClient(dup.app, async (c) => {
    const listed = resultOf(await c.ask('list_resources', {}))
    assert.deepEqual(
      (listed.resources as any[])
        .filter((r) => r.uri === 'demo://readme')
        .map((r) => r.server)
        .sort(),
      ['demo', 'demo2'],
    )
    for (const uri of ['demo://readme', 'demo://notes/7']) {
      const frame = await c.ask('read_resource', { uri })
      assertError(frame, 400, 'RESOURCE_AMBIGUOUS')
      assert.match(frame.error!.message, /demo2/, 'the message names the servers')
    }
    const named = resultOf(await c.ask('read_resource', { server: 'demo2', uri: 'demo://notes/7' }))
    assert.equal(named.contents[0].text, 'Note 7.')

    // The same in a chat: an ambiguous bare URI fails before the LLM, a {server, uri} one works.
    const ambiguous = await c.ask('chat', { text: 'read it', resources: ['demo://readme'] })
    assertError(ambiguous, 400, 'RESOURCE_AMBIGUOUS')
    assert.equal(llm.requests.length, 0, 'nothing was sent to the LLM')

    llm.reply({ body: openAiStream(['Read.']) })
    const done = await c.ask('chat', {
      text: 'read it',
      resources: [{ server: 'demo2', uri: 'demo://readme' }],
    })
    assert.equal(done.status, 'complete', JSON.stringify(done))
    assert.equal(llm.requests.length, 1)
    assert.ok(contentText(llm.requests[0]!.body.messages.at(-1).content).includes(README))
  })
})

test('chat with a prompt: its messages go before the user text, are stored, and stay in later turns', async () => {
  await withClient(platform.app, async (c) => {
    llm.reply({ body: openAiStream(['Hello Ada!']) })
    const first = await c.chatAndWait('greet-1', {
      text: 'And keep it short.',
      prompt: { server: 'demo', name: 'greeting', arguments: { name: 'Ada' } },
    })
    assert.equal(terminal(first).status, 'complete', JSON.stringify(terminal(first)))
    const conversationId = first[0]!.metadata!.conversation_id as string

    const sent = llm.requests[0]!.body.messages as any[]
    assert.deepEqual(
      sent.map((m) => m.role),
      ['system', 'user', 'user'],
      JSON.stringify(sent),
    )
    assert.equal(contentText(sent[1].content), 'Please greet Ada warmly.', 'the prompt message, text as is')
    assert.ok(contentText(sent[2].content).includes('And keep it short.'))
    assert.ok(!contentText(sent[2].content).includes('Please greet Ada'), 'not repeated in the user message')

    const history = resultOf(await c.ask('get_history', { conversation_id: conversationId }))
    const events = history.events as any[]
    assert.deepEqual(
      events.map((e) => e.type),
      ['user_message', 'assistant_message'],
    )
    assert.ok(String(events[0].content).includes('And keep it short.'))
    assert.deepEqual(events[0].attachments?.prompt, {
      server: 'demo',
      name: 'greeting',
      arguments: { name: 'Ada' },
      messages: [{ role: 'user', content: 'Please greet Ada warmly.' }],
    })

    llm.reply({ body: openAiStream(['Done.']) })
    const second = await c.chatAndWait('greet-2', { text: 'Now in French.', conversation_id: conversationId })
    assert.equal(terminal(second).status, 'complete', JSON.stringify(terminal(second)))
    const later = llm.requests[1]!.body.messages as any[]
    assert.deepEqual(
      later.map((m) => m.role),
      ['system', 'user', 'user', 'assistant', 'user'],
      JSON.stringify(later),
    )
    assert.equal(
      contentText(later[1].content),
      'Please greet Ada warmly.',
      'the prompt is still in the history',
    )
    assert.ok(contentText(later[2].content).includes('And keep it short.'))
    assert.equal(contentText(later[3].content), 'Hello Ada!')
    assert.ok(contentText(later[4].content).includes('Now in French.'))

    const secondTurn = (
      resultOf(await c.ask('get_history', { conversation_id: conversationId })).events as any[]
    ).at(-2)
    assert.equal(secondTurn.type, 'user_message')
    assert.equal(secondTurn.attachments?.prompt, undefined, 'the second turn had no prompt')
  })
})

test('chat with resources: text attached to the user message, binary described, stored, kept later', async () => {
  await withClient(platform.app, async (c) => {
    llm.reply({ body: openAiStream(['I see a readme and an image.']) })
    const first = await c.chatAndWait('res-1', {
      text: 'What are these?',
      resources: [
        'demo://readme',
        'demo://pixel.png',
        { server: 'everything', uri: 'demo://resource/dynamic/text/5' },
      ],
    })
    assert.equal(terminal(first).status, 'complete', JSON.stringify(terminal(first)))
    const conversationId = first[0]!.metadata!.conversation_id as string

    const sent = llm.requests[0]!.body.messages as any[]
    assert.deepEqual(
      sent.map((m) => m.role),
      ['system', 'user'],
      JSON.stringify(sent),
    )
    const user = contentText(sent[1].content)
    assert.ok(user.includes('What are these?'), user)
    assert.ok(user.includes(README), `the readme's text is attached: ${user}`)
    assert.match(user, /Resource 5: This is a plaintext resource created at /, 'the template resource too')
    assert.ok(user.includes('image/png'), `the png is described by its type: ${user}`)
    assert.match(user, new RegExp(`\\b${PIXEL_BYTES}\\b`), `and its size in bytes (${PIXEL_BYTES}): ${user}`)
    assert.ok(!user.includes(PIXEL) && !user.includes(PIXEL.slice(0, 16)), 'the base64 is not inlined')
    assert.ok(!JSON.stringify(llm.requests[0]!.body).includes(PIXEL.slice(0, 16)), 'nowhere in the request')

    const events = resultOf(await c.ask('get_history', { conversation_id: conversationId })).events as any[]
    assert.equal(events[0].type, 'user_message')
    const stored = events[0].attachments?.resources as any[]
    assert.ok(Array.isArray(stored) && stored.length === 3, JSON.stringify(events[0]))
    assertFields(
      stored[0],
      { server: 'demo', uri: 'demo://readme', mime_type: 'text/markdown', text: README },
      'stored readme',
    )
    assertFields(
      stored[1],
      { server: 'demo', uri: 'demo://pixel.png', mime_type: 'image/png', bytes: PIXEL_BYTES },
      'stored pixel',
    )
    assert.equal(stored[1].text, undefined)
    assert.ok(!JSON.stringify(stored[1]).includes(PIXEL.slice(0, 16)), 'the blob itself is not stored')
    assertFields(stored[2], { server: 'everything', uri: 'demo://resource/dynamic/text/5' }, 'stored dynamic')
    assert.match(stored[2].text, /^Resource 5: /)
    assert.equal(events[0].attachments?.prompt, undefined)

    llm.reply({ body: openAiStream(['ok']) })
    const second = await c.chatAndWait('res-2', { text: 'Thanks.', conversation_id: conversationId })
    assert.equal(terminal(second).status, 'complete', JSON.stringify(terminal(second)))
    const later = llm.requests[1]!.body.messages as any[]
    assert.deepEqual(
      later.map((m) => m.role),
      ['system', 'user', 'assistant', 'user'],
    )
    const earlier = contentText(later[1].content)
    assert.ok(earlier.includes(README) && earlier.includes('What are these?'), earlier)
    assert.ok(earlier.includes('image/png') && !earlier.includes(PIXEL.slice(0, 16)))
    assert.equal(contentText(later[3].content).includes(README), false, 'attached once, to its own turn')
  })
})

test('a chat whose prompt or resource fails ends with that error and sends nothing to the LLM', async () => {
  await withClient(platform.app, async (c) => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ prompt: { server: 'demo', name: 'no-such-prompt' } }, 404, 'PROMPT_NOT_FOUND'],
      [
        { prompt: { server: 'nowhere', name: 'greeting', arguments: { name: 'Ada' } } },
        404,
        'MCP_SERVER_NOT_FOUND',
      ],
      [{ prompt: { server: 'demo', name: 'greeting', arguments: {} } }, 400, 'VALIDATION_FAILED'],
      [{ resources: ['demo://no-such-thing'] }, 404, 'RESOURCE_NOT_FOUND'],
      [{ resources: ['demo://readme', 'demo://no-such-thing'] }, 404, 'RESOURCE_NOT_FOUND'],
      [{ resources: [{ server: 'nowhere', uri: 'demo://readme' }] }, 404, 'MCP_SERVER_NOT_FOUND'],
    ]
    for (const [extra, code, type] of cases) {
      const frame = await c.ask('chat', { text: 'Hello', ...extra })
      assertError(frame, code, type)
    }
    assert.equal(llm.requests.length, 0, 'no request reached the LLM')
  })
})

test('list_changed: after demo__unlock, times_table and demo://unlocked are listed and usable', async () => {
  await withClient(platform.app, async (c) => {
    // Hidden before: not listed, and asking for them is a 404.
    assertError(
      await c.ask('get_prompt', { server: 'demo', name: 'times_table', arguments: { n: '7' } }),
      404,
      'PROMPT_NOT_FOUND',
    )
    assertError(await c.ask('read_resource', { uri: 'demo://unlocked' }), 404, 'RESOURCE_NOT_FOUND')

    llm.reply({ body: openAiToolCalls([{ id: 'call_unlock', name: 'demo__unlock', arguments: {} }]) })
    llm.reply({ body: openAiStream(['Unlocked.']) })
    const frames = await c.chatAndWait('unlock', { text: 'Unlock everything' })
    assert.equal(terminal(frames).status, 'complete', JSON.stringify(terminal(frames)))
    const result = frames.find((f) => f.chunk?.type === 'tool_result')
    assert.equal(result?.chunk?.data.is_error, false, JSON.stringify(result))

    const deadline = Date.now() + 5000
    let prompts: any[] = []
    let resources: any[] = []
    while (Date.now() < deadline) {
      prompts = resultOf(await c.ask('list_prompts', {})).prompts
      resources = resultOf(await c.ask('list_resources', {})).resources
      if (prompts.some((p) => p.name === 'times_table') && resources.some((r) => r.uri === 'demo://unlocked'))
        break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const table = prompts.find((p) => p.server === 'demo' && p.name === 'times_table')
    assert.ok(
      table,
      `times_table listed after unlock: ${JSON.stringify(prompts.filter((p) => p.server === 'demo'))}`,
    )
    assert.deepEqual(
      table.arguments.map((a: any) => [a.name, Boolean(a.required)]),
      [['n', true]],
    )
    const unlocked = resources.find((r) => r.server === 'demo' && r.uri === 'demo://unlocked')
    assert.ok(
      unlocked,
      `demo://unlocked listed after unlock: ${JSON.stringify(resources.filter((r) => r.server === 'demo'))}`,
    )
    assertFields(
      unlocked,
      { mime_type: 'text/plain', description: 'Exists once unlock has run.' },
      'unlocked',
    )
    assert.equal(prompts.filter((p) => p.server === 'paged').length, PAGED.prompts, 'other servers untouched')

    const got = resultOf(
      await c.ask('get_prompt', { server: 'demo', name: 'times_table', arguments: { n: '7' } }),
    )
    assert.deepEqual(got.messages, [
      { role: 'user', content: { type: 'text', text: 'Write the times table of 7.' } },
    ])
    const read = resultOf(await c.ask('read_resource', { uri: 'demo://unlocked' }))
    assert.deepEqual(read.contents, [{ uri: 'demo://unlocked', mimeType: 'text/plain', text: 'unlocked' }])
    const tools = resultOf(await c.ask('list_tools', {})).tools as any[]
    assert.ok(
      tools.some((tool) => tool.name === 'demo__multiply'),
      'the tool list changed too',
    )
  })
})
