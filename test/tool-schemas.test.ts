// Tool schemas every provider accepts, and one bad tool that does not take its server down. Our
// schema server (test/fixtures/schema-server.ts: a top-level anyOf, a recursive $ref, two invalid
// tools, a normal one) through the whole platform, against stand-in providers that refuse what
// the real APIs refuse (the rules, their documentation and error texts: helpers/rules-tool-schemas.ts).
// Then the adapter alone, for what the integration does not show (other shapes, the Gemini profile).
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import {
  adaptToolSchema,
  MAX_INLINED,
  schemaProfile,
  type AdaptedSchema,
  type SchemaProfile,
} from '../src/llm/tool-schema.js'
import { checkTools } from '../src/mcp/listing.js'
import {
  anthropicDefaultReply,
  anthropicStream,
  anthropicToolUse,
  openAiStream,
  openAiToolCalls,
  startLlmServer,
  type LlmServer,
} from './helpers/llm-server.js'
import {
  Client,
  mcpSettled,
  startPlatform,
  terminal,
  textOf,
  type ConfigObject,
  type Frame,
  type Platform,
} from './helpers/platform.js'
import { anthropicRefusals, openAiRefusals, type Rule } from './helpers/provider-rules.js'
import {
  ANTHROPIC_TOOL_RULES,
  GEMINI_TOOL_RULES,
  geminiRefusals,
  OPENAI_TOOL_RULES,
} from './helpers/rules-tool-schemas.js'

const SCHEMA_SERVER = fileURLToPath(new URL('./fixtures/schema-server.js', import.meta.url))
const schemaServer = (...args: string[]): ConfigObject => ({
  command: process.execPath,
  args: [SCHEMA_SERVER, ...args],
})

/** The fixture's `find` schema as the server sends it (a zod union under `type: "object"`). */
const FIND_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  anyOf: [
    {
      type: 'object',
      properties: { kind: { type: 'string', const: 'file' }, path: { type: 'string' } },
      required: ['kind', 'path'],
      additionalProperties: false,
    },
    {
      type: 'object',
      properties: {
        kind: { type: 'string', const: 'url' },
        url: { type: 'string', format: 'uri' },
        tags: { type: 'array' },
      },
      required: ['kind', 'url'],
      additionalProperties: false,
    },
  ],
}

const chunks = (frames: Frame[], type: string) =>
  frames.filter((f) => f.status === 'chunk' && f.chunk!.type === type).map((f) => f.chunk!.data)

const openAiBody = (schema: unknown) => ({
  tools: [{ type: 'function', function: { name: 's__find', parameters: schema } }],
})
const anthropicBody = (schema: unknown) => ({ tools: [{ name: 's__find', input_schema: schema }] })
const refusalOf = (rules: Rule[], body: Record<string, unknown>) =>
  rules.map((rule) => rule(body)).find((message) => message !== undefined)

test('the stand-ins refuse the union schema as the server gives it (the rules bite)', () => {
  assert.match(
    refusalOf(OPENAI_TOOL_RULES, openAiBody(FIND_SCHEMA)) ?? '',
    /^Invalid schema for function 's__find': schema must have type 'object' and not have 'oneOf'\/'anyOf'/,
  )
  assert.equal(
    refusalOf(ANTHROPIC_TOOL_RULES, anthropicBody(FIND_SCHEMA)),
    'tools.0.custom.input_schema: input_schema does not support oneOf, allOf, or anyOf at the top level',
  )
  assert.match(refusalOf(GEMINI_TOOL_RULES, openAiBody(FIND_SCHEMA)) ?? '', /Unknown name "\$schema"/)
  // Without its top-level union, the array without items is next in line on OpenAI.
  const { anyOf, ...plain } = FIND_SCHEMA
  const withTags = { ...plain, properties: { tags: (anyOf[1] as any).properties.tags } }
  assert.equal(
    refusalOf(OPENAI_TOOL_RULES, openAiBody(withTags)),
    "Invalid schema for function 's__find': In context=('properties', 'tags'), array schema missing items.",
  )
})

/** /ready's entry for the server named `name`. */
async function readyServer(platform: Platform, name: string): Promise<Record<string, any>> {
  const res = await platform.app.inject({ method: 'GET', url: '/ready' })
  const body = res.json()
  const server = body.checks.mcp.servers.find((s: { name: string }) => s.name === name)
  assert.ok(server, JSON.stringify(body))
  return server
}

describe('openai wire: a stand-in that refuses what OpenAI refuses', () => {
  let llm: LlmServer
  let platform: Platform

  before(async () => {
    llm = await startLlmServer({ refuse: openAiRefusals(...OPENAI_TOOL_RULES) })
    platform = await startPlatform({ baseUrl: llm.baseUrl, servers: { s: schemaServer() } })
    await mcpSettled(platform.app)
  })
  after(async () => {
    await platform.close()
    await llm.close()
  })
  beforeEach(() => {
    llm.requests.length = 0
  })

  test('the server is ready with its valid tools; the invalid ones are reported in /ready and the log', async () => {
    const server = await readyServer(platform, 's')
    assert.equal(server.state, 'ready', JSON.stringify(server))
    assert.equal(server.error, undefined)
    assert.equal(server.tools, 3, 'find, tree and echo are offered')
    const notes = new Map<string, { action: string; reason: string }>(
      server.tool_notes.map((n: any) => [n.tool, n]),
    )
    assert.deepEqual([...notes.keys()].sort(), ['bad_schema', 'find', 'not_object'])
    assert.equal(notes.get('not_object')!.action, 'left_out')
    assert.match(notes.get('not_object')!.reason, /not an object schema \(type "array"\)/)
    assert.equal(notes.get('bad_schema')!.action, 'left_out')
    assert.match(notes.get('bad_schema')!.reason, /not valid JSON Schema: .*type/)
    assert.equal(notes.get('find')!.action, 'adapted')
    assert.match(notes.get('find')!.reason, /top-level anyOf \(2 alternatives\) merged/)
    assert.match(notes.get('find')!.reason, /items: \{\} added/)

    // One warning per tool of the listing, as JSON.
    const warnings = platform.logs.lines().filter((l) => l.server === 's' && l.tool !== undefined)
    assert.deepEqual(warnings.map((l) => [l.level, l.msg, l.tool, l.action]).sort(), [
      ['warn', 'mcp tool adapted for the provider', 'find', 'adapted'],
      ['warn', 'mcp tool left out', 'bad_schema', 'left_out'],
      ['warn', 'mcp tool left out', 'not_object', 'left_out'],
    ])
    assert.ok(warnings.every((l) => typeof l.reason === 'string' && l.reason.length > 0))
  })

  test('list_tools shows each tool as the LLM sees it: the union merged and described', async () => {
    const client = await Client.inject(platform.app)
    const result = (await client.ask('list_tools')).result!
    client.close()
    const tools = new Map<string, any>(result.tools.map((t: any) => [t.name, t]))
    assert.deepEqual([...tools.keys()].sort(), ['s__echo', 's__find', 's__tree'])
    const find = tools.get('s__find')
    assert.equal(find.input_schema.type, 'object')
    assert.equal(find.input_schema.anyOf, undefined)
    assert.deepEqual(find.input_schema.properties.kind, { type: 'string', enum: ['file', 'url'] })
    assert.deepEqual(find.input_schema.required, ['kind'], 'only what every alternative requires')
    assert.deepEqual(find.input_schema.properties.tags.items, {})
    assert.match(find.description, /^Find a file or a web page\.\n\n/)
    assert.match(
      find.description,
      /at least one of these forms: \(1\) kind: "file", path; \(2\) kind: "url", url/,
    )
    // OpenAI resolves $ref: the recursive schema goes as it is.
    assert.equal(tools.get('s__tree').input_schema.properties.root.$ref, '#/$defs/node')
  })

  test('a chat offers the tools as OpenAI accepts them; the union tool is called with valid arguments and runs', async () => {
    llm.reply({
      body: openAiToolCalls([
        { id: 'call_find', name: 's__find', arguments: { kind: 'url', url: 'https://example.com/a' } },
      ]),
    })
    llm.reply({ body: openAiStream(['Found it.']) })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('find', { text: 'Find example.com' })
    client.close()
    assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
    assert.equal(textOf(frames), 'Found it.')
    assert.deepEqual(chunks(frames, 'tool_result'), [
      { id: 'call_find', name: 's__find', is_error: false, content: 'found the url https://example.com/a' },
    ])
    assert.equal(llm.requests.length, 2, 'neither request was refused')
    const offered = llm.requests[0]!.body.tools.map((t: any) => t.function.name).sort()
    assert.deepEqual(offered, ['s__echo', 's__find', 's__tree'])
  })

  test("arguments the LLM's schema allows but the server's does not: the field errors go back to the LLM", async () => {
    llm.reply({ body: openAiToolCalls([{ id: 'call_bad', name: 's__find', arguments: { kind: 'file' } }]) })
    llm.reply({ body: openAiStream(['Sorry.']) })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('find-bad', { text: 'Find a file' })
    client.close()
    assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
    const [result] = chunks(frames, 'tool_result')
    assert.equal(result.is_error, true)
    assert.match(result.content, /^Invalid arguments for s__find:/)
    assert.match(result.content, /\/path: is required/)
    const toolMessage = llm.requests[1]!.body.messages.at(-1)
    assert.deepEqual([toolMessage.role, toolMessage.content], ['tool', result.content])
  })

  test('the recursive $ref tool is called and runs', async () => {
    const root = { name: 'a', children: [{ name: 'b', children: [{ name: 'c' }] }, { name: 'd' }] }
    llm.reply({ body: openAiToolCalls([{ id: 'call_tree', name: 's__tree', arguments: { root } }]) })
    llm.reply({ body: openAiStream(['Four.']) })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('tree', { text: 'Count' })
    client.close()
    assert.deepEqual(chunks(frames, 'tool_result')[0], {
      id: 'call_tree',
      name: 's__tree',
      is_error: false,
      content: '4 nodes',
    })
  })

  test("a result is still checked against the tool's output schema (the tools listed leniently are remembered)", async () => {
    llm.reply({
      body: openAiToolCalls([
        { id: 'call_ok', name: 's__echo', arguments: { text: 'hi' } },
        { id: 'call_wrong', name: 's__echo', arguments: { text: 'hi', wrong: true } },
      ]),
    })
    llm.reply({ body: openAiStream(['Done.']) })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('echo', { text: 'Echo' })
    client.close()
    const [ok, wrong] = chunks(frames, 'tool_result')
    assert.deepEqual([ok.is_error, ok.content], [false, 'hi'])
    assert.equal(wrong.is_error, true)
    assert.match(wrong.content, /output schema/)
  })
})

describe('anthropic wire: a stand-in that refuses what Anthropic refuses', () => {
  let llm: LlmServer
  let platform: Platform

  before(async () => {
    llm = await startLlmServer({ refuse: anthropicRefusals(...ANTHROPIC_TOOL_RULES) })
    llm.setDefault(anthropicDefaultReply)
    platform = await startPlatform({
      baseUrl: llm.baseUrl,
      patch: (config) => {
        config.llm.providers = {
          claude: {
            type: 'anthropic',
            base_url: llm.baseUrl,
            api_key: 'sk-ant-schemas-test',
            model: 'claude-x',
            temperature: 0.5,
            max_tokens: 500,
            top_p: 1,
          },
        }
        config.llm.active = 'claude'
      },
      servers: { s: schemaServer() },
    })
    await mcpSettled(platform.app)
  })
  after(async () => {
    await platform.close()
    await llm.close()
  })

  test('the union tool is called with valid arguments and runs; the invalid tools are reported', async () => {
    llm.reply({
      body: anthropicToolUse([
        { id: 'toolu_find', name: 's__find', input: { kind: 'file', path: '/tmp/x' } },
      ]),
    })
    llm.reply({ body: anthropicStream(['Found it.']) })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('claude-find', { text: 'Find /tmp/x' })
    client.close()
    assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
    assert.equal(textOf(frames), 'Found it.')
    assert.deepEqual(chunks(frames, 'tool_result')[0], {
      id: 'toolu_find',
      name: 's__find',
      is_error: false,
      content: 'found the file /tmp/x',
    })
    assert.equal(llm.requests.length, 2, 'neither request was refused')
    const find = llm.requests[0]!.body.tools.find((t: any) => t.name === 's__find')
    assert.equal(find.input_schema.anyOf, undefined)
    assert.match(find.description, /\(1\) kind: "file", path/)

    const server = await readyServer(platform, 's')
    assert.equal(server.state, 'ready')
    const notes = server.tool_notes.map((n: any) => `${n.tool}:${n.action}`).sort()
    assert.deepEqual(notes, ['bad_schema:left_out', 'find:adapted', 'not_object:left_out'])
    // Anthropic takes an array without items: the only change is the merge.
    const find_note = server.tool_notes.find((n: any) => n.tool === 'find')
    assert.doesNotMatch(find_note.reason, /items/)
  })
})

describe('a Gemini model behind the openai wire: a stand-in that refuses what Gemini refuses', () => {
  let llm: LlmServer
  let platform: Platform

  before(async () => {
    llm = await startLlmServer({ refuse: geminiRefusals(...GEMINI_TOOL_RULES) })
    platform = await startPlatform({
      baseUrl: llm.baseUrl,
      patch: (config) => {
        config.llm.providers.local.model = 'gemini-2.5-flash'
      },
      servers: { s: schemaServer() },
    })
    await mcpSettled(platform.app)
  })
  after(async () => {
    await platform.close()
    await llm.close()
  })

  test('every tool is offered in the OpenAPI subset; the recursive tool runs with a nested tree', async () => {
    const root = { name: 'a', children: [{ name: 'b', children: [{ name: 'c' }] }] }
    llm.reply({ body: openAiToolCalls([{ id: 'call_tree', name: 's__tree', arguments: { root } }]) })
    llm.reply({ body: openAiStream(['Three.']) })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('gemini-tree', { text: 'Count' })
    client.close()
    assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
    assert.equal(chunks(frames, 'tool_result')[0].content, '3 nodes')
    assert.equal(llm.requests.length, 2, 'neither request was refused')
    const tools = llm.requests[0]!.body.tools.map((t: any) => t.function)
    assert.deepEqual(tools.map((t: any) => t.name).sort(), ['s__echo', 's__find', 's__tree'])
    assert.doesNotMatch(JSON.stringify(tools), /\$ref|\$defs|additionalProperties|const|\$schema/)
    const notes = (await readyServer(platform, 's')).tool_notes
    const tree = notes.find((n: any) => n.tool === 'tree')
    assert.match(tree.reason, /references \(\$ref\) inlined/)
    assert.match(tree.reason, /recursive or repeated reference #\/\$defs\/node cut short/)
  })
})

describe('a connection that fails reports its first cause', () => {
  let llm: LlmServer
  let platform: Platform

  before(async () => {
    llm = await startLlmServer()
    platform = await startPlatform({
      baseUrl: llm.baseUrl,
      patch: (config) => {
        config.mcp.connection.max_reconnect_attempts = 0
      },
      servers: { s: schemaServer('--broken-list') },
    })
    await mcpSettled(platform.app)
  })
  after(async () => {
    await platform.close()
    await llm.close()
  })

  test("a tools/list answer without a list: that is the reason, not the child's exit that followed", async () => {
    const server = await readyServer(platform, 's')
    assert.equal(server.state, 'failed')
    assert.equal(server.error, "the server's tools/list answer holds no list of tools")
    const line = platform.logs.lines().find((l) => l.server === 's' && l.state === 'failed')
    assert.equal(line?.error?.message, "the server's tools/list answer holds no list of tools")
  })
})

test('each listed tool is checked alone: an invalid one is left out with why, the others kept', () => {
  const { tools, invalidTools } = checkTools([
    { name: 'ok', inputSchema: { type: 'object' } },
    { name: 'no_schema', description: 'no inputSchema at all' },
    { description: 'no name', inputSchema: { type: 'object' } },
    { name: 'ok', inputSchema: { type: 'object', properties: { again: { type: 'string' } } } },
    {
      name: 'bad_output',
      inputSchema: { type: 'object' },
      outputSchema: { type: 'object', properties: { a: { type: 'strin' } } },
    },
    { name: 'untyped', inputSchema: { properties: { a: { type: 'string' } } } },
    'not a tool',
  ])
  assert.deepEqual(
    tools.map((t) => t.name),
    ['ok', 'untyped'],
    'an input schema without type is taken (the LLM is told "object")',
  )
  const why = Object.fromEntries(invalidTools.map((n) => [n.tool, n.reason]))
  assert.ok(invalidTools.every((n) => n.action === 'left_out'))
  assert.match(why.no_schema!, /^its definition is invalid: inputSchema: /)
  assert.match(why['(tool 3 of the list, no name)']!, /^its definition is invalid: name: /)
  assert.equal(why.ok, 'the server lists another tool of the same name before it')
  assert.match(why.bad_output!, /^its output schema is not valid JSON Schema: .*strin/)
  assert.match(why['(tool 7 of the list, no name)']!, /^its definition is invalid: /)
})

// ---- the adapter alone ----

const PROFILES: SchemaProfile[] = ['openai', 'anthropic', 'gemini']
const RULES: Record<SchemaProfile, { rules: Rule[]; body: (schema: unknown) => Record<string, unknown> }> = {
  openai: { rules: OPENAI_TOOL_RULES, body: openAiBody },
  anthropic: { rules: ANTHROPIC_TOOL_RULES, body: anthropicBody },
  gemini: { rules: GEMINI_TOOL_RULES, body: openAiBody },
}

/** The schema adapted for `profile`, which that provider's rules accept. */
function adapted(schema: Record<string, unknown>, profile: SchemaProfile): AdaptedSchema {
  const result = adaptToolSchema(schema, profile)
  assert.ok(!('refused' in result), `${profile}: ${JSON.stringify(result)}`)
  const { rules, body } = RULES[profile]
  assert.equal(
    refusalOf(rules, body(result.schema)),
    undefined,
    `${profile}: ${JSON.stringify(result.schema)}`,
  )
  return result
}

describe('the adapter', () => {
  test("a zod discriminated union (zod's own JSON Schema, no type at the top): one object schema on every profile", () => {
    const schema = z.toJSONSchema(
      z.discriminatedUnion('op', [
        z.object({ op: z.literal('add'), a: z.number(), b: z.number() }),
        z.object({ op: z.literal('neg'), a: z.number() }),
      ]),
    ) as Record<string, unknown>
    assert.ok(Array.isArray(schema.oneOf ?? schema.anyOf), JSON.stringify(schema))
    for (const profile of PROFILES) {
      const { schema: out, changes, alternatives } = adapted(schema, profile)
      assert.equal(out.type, 'object')
      assert.deepEqual(Object.keys(out.properties as object).sort(), ['a', 'b', 'op'])
      assert.deepEqual(out.required, ['op', 'a'], `${profile}: what both alternatives require`)
      assert.deepEqual((out.properties as any).op.enum, ['add', 'neg'])
      assert.ok(changes.includes('type "object" added at the top'), changes.join('; '))
      assert.match(alternatives ?? '', /\(1\) op: "add", a, b; \(2\) op: "neg", a/)
    }
  })

  test('"at least one of these" (anyOf of required lists beside properties): properties kept, the choice described', () => {
    const schema = {
      type: 'object',
      properties: { id: { type: 'string' }, title: { type: 'string' }, body: { type: 'string' } },
      required: ['id'],
      anyOf: [{ required: ['title'] }, { required: ['body'] }],
    }
    for (const profile of PROFILES) {
      const { schema: out, alternatives } = adapted(schema, profile)
      assert.deepEqual(Object.keys(out.properties as object), ['id', 'title', 'body'])
      assert.deepEqual(out.required, ['id'])
      assert.equal(alternatives, 'The arguments take at least one of these forms: (1) title; (2) body.')
    }
  })

  test('an intersection (allOf, as zod-to-json-schema writes one) merged: every part required, no description needed', () => {
    const schema = {
      type: 'object',
      allOf: [
        { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
        { type: 'object', properties: { b: { type: 'number' }, c: { type: 'boolean' } }, required: ['c'] },
      ],
    }
    for (const profile of PROFILES) {
      const { schema: out, alternatives, changes } = adapted(schema, profile)
      assert.deepEqual(Object.keys(out.properties as object).sort(), ['a', 'b', 'c'])
      assert.deepEqual([...(out.required as string[])].sort(), ['a', 'c'])
      assert.equal(alternatives, undefined)
      assert.match(changes.join('; '), /top-level allOf \(2 parts\) merged/)
    }
  })

  test('a reference into the union (zod-to-json-schema repeating a sub-schema) still resolves after the merge', () => {
    // As zod-to-json-schema writes z.union of two objects sharing a `mode` schema.
    const schema = {
      anyOf: [
        { type: 'object', properties: { mode: { type: 'string', enum: ['a', 'b'] }, x: { type: 'number' } } },
        {
          type: 'object',
          properties: { mode: { $ref: '#/anyOf/0/properties/mode' }, y: { type: 'string' } },
        },
      ],
      $defs: { kept: { type: 'string' } },
    }
    for (const profile of PROFILES) {
      const { schema: out } = adapted(schema, profile)
      const text = JSON.stringify(out)
      assert.ok(!text.includes('#/anyOf/'), `${profile}: ${text}`)
      assert.equal(refusalOf(OPENAI_TOOL_RULES, openAiBody(out)), undefined, profile)
      assert.equal(refusalOf(ANTHROPIC_TOOL_RULES, anthropicBody(out)), undefined, profile)
    }
    // The stand-ins refuse what the merge would have left: a reference that points nowhere.
    const dangling = { type: 'object', properties: { mode: { $ref: '#/anyOf/0/properties/mode' } } }
    assert.match(refusalOf(OPENAI_TOOL_RULES, openAiBody(dangling)) ?? '', /can't resolve reference/)
    assert.match(refusalOf(ANTHROPIC_TOOL_RULES, anthropicBody(dangling)) ?? '', /can't resolve reference/)
    // A reference into $defs is kept for these providers, which resolve it: one to a definition
    // that is not there cannot be, and the tool is left out rather than fail every request.
    const missing = { type: 'object', properties: { mode: { $ref: '#/$defs/missing' } } }
    assert.match(
      (adaptToolSchema(missing, 'openai') as any).refused,
      /cannot be compiled: can't resolve reference #\/\$defs\/missing/,
    )
  })

  test('an adapted schema adapts to itself: nothing more to change', () => {
    for (const profile of PROFILES) {
      const once = adapted(FIND_SCHEMA, profile).schema
      const twice = adapted(once, profile)
      assert.deepEqual(twice.schema, once, profile)
      assert.deepEqual(twice.changes, [], profile)
    }
  })

  test('Gemini: references inlined (recursion cut), type lists, const, formats, bounds and enums rewritten', () => {
    const schema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: {
        when: { type: ['string', 'null'], format: 'date-time' },
        site: { type: 'string', format: 'uri' },
        mode: { const: 'fast' },
        level: { type: 'integer', enum: [1, 2, 3] },
        ratio: { type: 'number', exclusiveMinimum: 0 },
        extra: { type: 'object', additionalProperties: { type: 'string' } },
        pair: { type: 'array', items: [{ type: 'string' }, { type: 'number' }] },
        either: { oneOf: [{ type: 'string' }, { type: 'null' }] },
        anything: {},
        node: { $ref: '#/definitions/node' },
      },
      required: ['when', 'ghost'],
      definitions: {
        node: { type: 'object', properties: { next: { $ref: '#/definitions/node' } } },
      },
    }
    const { schema: out, changes } = adapted(schema, 'gemini')
    const p = out.properties as Record<string, any>
    assert.deepEqual(p.when, { type: 'string', format: 'date-time', nullable: true })
    assert.deepEqual(p.site, { type: 'string', description: '(format: uri)' })
    assert.deepEqual(p.mode, { type: 'string', enum: ['fast'] })
    assert.deepEqual(p.level, { type: 'integer', description: '(one of 1, 2, 3)' })
    assert.deepEqual(p.ratio, { type: 'number', minimum: 0, description: '(greater than 0)' })
    assert.deepEqual(p.extra, { type: 'object' })
    assert.deepEqual(p.pair, { type: 'array', items: { type: 'string' } })
    assert.deepEqual(p.either, { type: 'string', nullable: true })
    assert.ok(Array.isArray(p.anything.anyOf), 'any value: each JSON type')
    // Followed RECURSION_LIMIT times, then a loose object.
    assert.equal(p.node.properties.next.properties.next.type, 'object')
    assert.equal(p.node.properties.next.properties.next.properties, undefined)
    assert.deepEqual(out.required, ['when'], 'a required name that is no property is dropped')
    assert.equal(out.definitions, undefined)
    assert.match(changes.join('; '), /keywords Gemini does not take removed: additionalProperties/)
  })

  test('Anthropic and OpenAI: draft-07 tuples and draft-04 bounds in draft 2020-12 words', () => {
    const schema = {
      type: 'object',
      properties: {
        pair: { type: 'array', items: [{ type: 'string' }, { type: 'number' }], additionalItems: false },
        n: { type: 'number', minimum: 0, exclusiveMinimum: true },
      },
    }
    for (const profile of ['openai', 'anthropic'] as const) {
      const { schema: out, changes } = adapted(schema, profile)
      const p = out.properties as Record<string, any>
      assert.deepEqual(p.pair, {
        type: 'array',
        prefixItems: [{ type: 'string' }, { type: 'number' }],
        items: false,
      })
      assert.deepEqual(p.n, { type: 'number', exclusiveMinimum: 0 })
      assert.ok(changes.includes('draft-07 tuple items written as prefixItems'))
    }
  })

  test('references that would explode are bounded', () => {
    // Each level refers to the next twice: inlined in full, 2^12 copies of the last one.
    const $defs: Record<string, unknown> = { l12: { type: 'string' } }
    for (let i = 11; i >= 0; i--) {
      $defs[`l${i}`] = {
        type: 'object',
        properties: { x: { $ref: `#/$defs/l${i + 1}` }, y: { $ref: `#/$defs/l${i + 1}` } },
      }
    }
    const schema = { type: 'object', properties: { root: { $ref: '#/$defs/l0' } }, $defs }
    const { schema: out } = adapted(schema, 'gemini')
    const refsLeft = JSON.stringify(out).match(/nested further/g)?.length ?? 0
    assert.ok(refsLeft > 0, 'some references were cut')
    assert.ok(JSON.stringify(out).length < MAX_INLINED * 400, `${JSON.stringify(out).length} characters`)
  })

  test('a schema no profile can take is refused, with the reason', () => {
    const result = adaptToolSchema({ type: 'object', properties: { n: { type: 'integr' } } }, 'anthropic')
    assert.ok('refused' in result)
    assert.match(result.refused, /not valid JSON Schema \(draft 2020-12\)/)
  })

  test('the profile: Gemini by model name or endpoint, whatever the wire; otherwise the wire', () => {
    const at = (type: 'openai' | 'anthropic', model: string, base_url = 'https://api.example.com/v1') =>
      schemaProfile({ type, model, base_url })
    assert.equal(at('openai', 'gpt-4o'), 'openai')
    assert.equal(at('anthropic', 'claude-sonnet-4-5'), 'anthropic')
    assert.equal(at('openai', 'google/gemini-2.5-flash'), 'gemini')
    assert.equal(at('openai', 'x', 'https://generativelanguage.googleapis.com/v1beta/openai'), 'gemini')
    assert.equal(at('openai', 'x', 'not a url'), 'openai')
  })
})
