// Token counts computed once (issue 13): a tool definition goes through the tokenizer once, not
// in every turn (nor twice in one, for the size check and the context build); a changed tool list
// has its new definitions counted; what is read back equals a fresh count; where the provider
// reports no usage, the platform's count equals a fresh count of exactly what the provider got;
// tiktoken is loaded when first needed, not when the app is imported. Real tiktoken, the real
// platform, the demo MCP server over stdio, the stand-in provider.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { LlmMessage, ToolSpec } from '../src/llm/types.js'
import {
  countMessage,
  countTokens,
  countTool,
  countTools,
  REPLY_PRIMING,
  TOOL_OVERHEAD,
  toolDefinitionsCounted,
} from '../src/tokens/counter.js'
import { openAiStream, openAiToolCalls, startLlmServer } from './helpers/llm-server.js'
import { Client, demoServer, mcpSettled, onCleanup, startPlatform, terminal } from './helpers/platform.js'

const CL100K = 'gpt-4'
const O200K = 'gpt-4o'

/** A tool's count made afresh from the JSON the openai wire sends for it (`body.tools[i]`). */
function wireCount(wire: unknown, model: string): number {
  return TOOL_OVERHEAD + countTokens(JSON.stringify(wire), model)
}

/** The same for a definition whose schema the wire sends as it is (no `$schema`, an object). */
function freshCount(tool: ToolSpec, model: string): number {
  const { name, description, input_schema: parameters } = tool
  return wireCount({ type: 'function', function: { name, description, parameters } }, model)
}

test('a tool definition is counted once per encoding, found again by its content; a changed one is counted', () => {
  const tool: ToolSpec = {
    name: 'dictionary__lookup',
    description: 'Look a word up.',
    input_schema: { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] },
  }
  const start = toolDefinitionsCounted()
  const first = countTool(tool, CL100K)
  assert.equal(first, freshCount(tool, CL100K))
  assert.equal(toolDefinitionsCounted(), start + 1)
  for (let turn = 0; turn < 3; turn++) assert.equal(countTools([tool, tool], CL100K), 2 * first)
  assert.equal(toolDefinitionsCounted(), start + 1, 'read back, not counted again')

  // Another encoding is another count.
  assert.equal(countTool(tool, O200K), freshCount(tool, O200K))
  assert.equal(toolDefinitionsCounted(), start + 2)

  // The same definition listed again (new objects, as a server's new listing gives): found by its
  // content, not counted again.
  assert.equal(countTool(structuredClone(tool), CL100K), first)
  assert.equal(toolDefinitionsCounted(), start + 2)

  // A changed description on the same schema object, a changed schema, a new name: each counted.
  const described = { ...tool, description: 'Look a word up in the dictionary, with its etymology.' }
  assert.equal(countTool(described, CL100K), freshCount(described, CL100K))
  assert.ok(countTool(described, CL100K) > first)
  const schema = structuredClone(tool.input_schema)
  ;(schema.properties as Record<string, unknown>).language = { type: 'string', enum: ['en', 'fr'] }
  const widened = { ...tool, input_schema: schema }
  assert.equal(countTool(widened, CL100K), freshCount(widened, CL100K))
  const renamed = { ...tool, name: 'dictionary_2__lookup' }
  assert.equal(countTool(renamed, CL100K), freshCount(renamed, CL100K))
  assert.equal(toolDefinitionsCounted(), start + 5)
  // The first definition still reads back as it was.
  assert.equal(countTool(tool, CL100K), first)
  assert.equal(toolDefinitionsCounted(), start + 5)
})

test('turns read the tool counts back; a tool added by list_changed is the one counted; counts equal fresh ones', async (t) => {
  const llm = await startLlmServer()
  onCleanup(t, () => llm.close())
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    env: { DEBUG_TOKENS: '1' },
    servers: { demo: demoServer(), quick: demoServer({ tools: { allow: ['slow', 'echo'] } }) },
  })
  onCleanup(t, () => platform.close())
  await mcpSettled(platform.app)
  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))

  const listed = () => platform.app.mcp.list()
  // What the last request offered, counted afresh.
  const sent = () => llm.requests.at(-1)!.body.tools as { function: { name: string } }[]
  const fresh = () => sent().reduce((n, tool) => n + wireCount(tool, 'test-model'), 0)
  const accounting = () =>
    platform.logs
      .lines()
      .filter((l) => l.msg === 'token accounting')
      .map((l) => l.tokens as { tools: number })
  /** One turn, and how many tool definitions went through the tokenizer during it. */
  const turn = async (id: string): Promise<number> => {
    const before = toolDefinitionsCounted()
    const frames = await client.chatAndWait(id, { text: 'hello' })
    assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
    return toolDefinitionsCounted() - before
  }

  assert.equal(listed().length, 7)
  assert.equal(llm.requests.length, 0)
  // The first turn counts each definition once: the size check counts them, the context build of
  // the same turn reads them back.
  assert.equal(await turn('t1'), 7)
  assert.equal(accounting().at(-1)!.tools, fresh())
  // Later turns count none of them.
  assert.equal(await turn('t2'), 0)
  assert.equal(await turn('t3'), 0)
  assert.equal(accounting().at(-1)!.tools, fresh())

  // The LLM calls demo's unlock: the server adds multiply and says tools/list_changed; the
  // registry lists demo's tools again (all of them new objects).
  llm.reply({ body: openAiToolCalls([{ id: 'call_u', name: 'demo__unlock', arguments: {} }]) })
  llm.reply({ body: openAiStream(['Unlocked.']) })
  assert.equal(await turn('unlock'), 0)
  const deadline = Date.now() + 5000
  while (!listed().some((tool) => tool.name === 'demo__multiply')) {
    assert.ok(Date.now() < deadline, 'multiply was listed')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.equal(listed().length, 8)
  // Only the new definition goes through the tokenizer; the total is what a fresh count gives.
  const withMultiply = accounting().length
  assert.equal(await turn('t4'), 1)
  assert.equal(accounting().length, withMultiply + 1)
  assert.equal(accounting().at(-1)!.tools, fresh())
  const multiply = sent().find((tool) => tool.function.name === 'demo__multiply')
  assert.ok(multiply, 'multiply was offered')
  assert.equal(accounting().at(-1)!.tools, accounting().at(-2)!.tools + wireCount(multiply, 'test-model'))
  assert.equal(await turn('t5'), 0)
})

/** An openai stream without its usage chunk: a provider that reports none. */
function withoutUsage(body: string): string {
  return body
    .split('\n\n')
    .filter((frame) => !frame.includes('"usage"'))
    .join('\n\n')
}

/** A request as the provider received it (openai wire), as the LLM messages the counter reads. */
function received(body: any): { messages: LlmMessage[]; tools: unknown[] } {
  const messages = (body.messages as any[]).map((m): LlmMessage => {
    if (m.role === 'tool') return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content }
    if (m.role === 'assistant') {
      return {
        role: 'assistant',
        content: m.content ?? '',
        tool_calls: (m.tool_calls ?? []).map((c: any) => ({
          id: c.id,
          name: c.function.name,
          arguments: c.function.arguments,
        })),
      }
    }
    return { role: m.role, content: m.content }
  })
  return { messages, tools: body.tools ?? [] }
}

/** What the platform counts for one request: its messages, its tools, the reply priming. */
function promptOf(body: any, model: string): number {
  const { messages, tools } = received(body)
  return (
    messages.reduce((n, m) => n + countMessage(m, model), REPLY_PRIMING) +
    tools.reduce((n: number, tool) => n + wireCount(tool, model), 0)
  )
}

test('a provider that reports no usage: the platform counts exactly what it sent, each message once', async (t) => {
  const llm = await startLlmServer()
  onCleanup(t, () => llm.close())
  const platform = await startPlatform({ baseUrl: llm.baseUrl, servers: { demo: demoServer() } })
  onCleanup(t, () => platform.close())
  await mcpSettled(platform.app)
  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))

  // A tool turn whose replies name the configured model (the same encoding throughout): the second
  // request is the first plus the tool round, counted as it is added.
  const args = '{"a":2,"b":40}'
  llm.reply({
    body: withoutUsage(
      openAiToolCalls([{ id: 'call_1', name: 'demo__add', arguments: args }], { model: 'test-model' }),
    ),
  })
  llm.reply({ body: withoutUsage(openAiStream(['The sum ', 'is 42.'], { model: 'test-model' })) })
  const frames = await client.chatAndWait('no-usage', { text: 'Add 2 and 40' })
  const usage = terminal(frames).metadata!.usage
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  const [first, second] = llm.requests.map((r) => r.body)
  assert.equal(second.messages.length, first.messages.length + 2)
  const model = 'test-model'
  const completion = countTokens(`demo__add${args}`, model) + countTokens('The sum is 42.', model)
  assert.deepEqual(usage, {
    prompt_tokens: promptOf(first, model) + promptOf(second, model),
    completion_tokens: completion,
    total_tokens: promptOf(first, model) + promptOf(second, model) + completion,
  })

  // A reply from a model of another encoding than the one asked for: counted whole for it.
  llm.reply({ body: withoutUsage(openAiStream(['Hi ', 'there.'], { model: 'gpt-4o' })) })
  const other = await client.chatAndWait('other-model', { text: 'hello' })
  const request = llm.requests.at(-1)!.body
  const prompt = promptOf(request, O200K)
  assert.notEqual(prompt, promptOf(request, CL100K), 'the encodings count this request differently')
  assert.deepEqual(terminal(other).metadata!.usage, {
    prompt_tokens: prompt,
    completion_tokens: countTokens('Hi there.', O200K),
    total_tokens: prompt + countTokens('Hi there.', O200K),
  })
})

test('tiktoken is loaded at the first count, not when the app is imported', async () => {
  const app = new URL('../src/app.js', import.meta.url).href
  const counter = new URL('../src/tokens/counter.js', import.meta.url).href
  const script = `
    import { createRequire } from 'node:module'
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('/tiktoken/'))
    await import(${JSON.stringify(app)})
    const { countTokens, tokenizerLoaded } = await import(${JSON.stringify(counter)})
    const before = [tokenizerLoaded(), loaded()]
    const tokens = countTokens('Hello, world!', 'gpt-4')
    console.log(JSON.stringify({ before, after: [tokenizerLoaded(), loaded()], tokens }))
  `
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    timeout: 30_000,
  })
  assert.deepEqual(JSON.parse(stdout), { before: [false, false], after: [true, true], tokens: 4 })
})
