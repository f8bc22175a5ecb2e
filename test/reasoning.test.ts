// Reasoning models through the whole platform (/ws/chat, the demo MCP server over stdio, a local
// stand-in provider that refuses what the real API refuses: test/helpers/rules-reasoning.ts): a
// gpt-5 configuration chats; reasoning reaches the client as `reasoning` chunks and is stored with
// the reply it belongs to; Anthropic thinking with tool use goes back signed with the tool results;
// check-config says what is left out of requests.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { countMessage } from '../src/tokens/counter.js'
import {
  anthropicDefaultReply,
  anthropicJson,
  anthropicStream,
  fixture,
  openAiStream,
  startLlmServer,
  type LlmServer,
  type LlmServerOptions,
} from './helpers/llm-server.js'
import {
  baseConfig,
  Client,
  demoServer,
  mcpSettled,
  onCleanup,
  resultOf,
  startPlatform,
  terminal,
  textOf,
  writeConfigFiles,
  type ConfigObject,
  type Frame,
  type Platform,
} from './helpers/platform.js'
import { SERVER } from './helpers/process.js'
import { anthropicRefusals, openAiRefusals } from './helpers/provider-rules.js'
import {
  ANTHROPIC_REASONING_RULES,
  OPENAI_REASONING_RULES,
  REDACTED_DATA,
  deepSeekReasoningBack,
  sign,
} from './helpers/rules-reasoning.js'

async function setUp(
  t: TestContext,
  options: LlmServerOptions,
  provider: ConfigObject,
  tools = false,
): Promise<{ llm: LlmServer; platform: Platform; client: Client }> {
  const llm = await startLlmServer(options)
  onCleanup(t, () => llm.close())
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (config) => {
      const { name, ...entry } = provider
      config.llm.providers = { [name]: { ...entry, base_url: llm.baseUrl } }
      config.llm.active = name
    },
    servers: tools ? { demo: demoServer() } : {},
  })
  onCleanup(t, () => platform.close())
  if (tools) await mcpSettled(platform.app)
  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))
  return { llm, platform, client }
}

const chunks = (frames: Frame[], type: string): unknown[] =>
  frames.filter((f) => f.status === 'chunk' && f.chunk!.type === type).map((f) => f.chunk!.data)
const reasoningOf = (frames: Frame[]): string => chunks(frames, 'reasoning').join('')

async function history(client: Client, conversationId: string): Promise<Record<string, any>[]> {
  return resultOf(await client.ask('get_history', { conversation_id: conversationId })).events
}

/** A whole stored event as get_history shows it, reduced to what these tests look at. */
const shape = (e: Record<string, any>) => ({
  type: e.type,
  ...(e.reasoning === undefined ? {} : { reasoning: e.reasoning }),
})

test('a gpt-5 configuration chats, streamed and not; a chat naming gpt-4o gets what gpt-4o takes', async (t) => {
  const { llm, platform, client } = await setUp(
    t,
    { refuse: openAiRefusals(...OPENAI_REASONING_RULES) },
    {
      name: 'openai',
      api_key: 'sk-test-reasoning-0123456789',
      model: 'gpt-5',
      temperature: 0.7,
      top_p: 0.9,
      max_tokens: 2000,
      reasoning_effort: 'low',
    },
  )
  for (const streaming of [true, false]) {
    const frames = await client.chatAndWait(`gpt5-${streaming}`, { text: 'Hi', streaming })
    assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
    assert.equal(textOf(frames), 'Hello from the stand-in.')
    const body = llm.requests.at(-1)!.body
    assert.equal(body.stream, streaming)
    assert.equal(body.model, 'gpt-5')
    assert.equal(body.max_completion_tokens, 2000)
    assert.equal(body.reasoning_effort, 'low')
    for (const refused of ['max_tokens', 'temperature', 'top_p'])
      assert.equal(body[refused], undefined, refused)
  }
  const frames = await client.chatAndWait('gpt4o', { text: 'Hi', model: 'gpt-4o' })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  const body = llm.requests.at(-1)!.body
  assert.deepEqual(
    [body.model, body.max_completion_tokens, body.temperature, body.top_p, body.reasoning_effort],
    ['gpt-4o', 2000, 0.7, 0.9, undefined],
  )
  // What is left out is said once, at start.
  const warned = platform.app.platformConfig.warnings.map((w) => w.path)
  assert.deepEqual(warned, ['llm.providers.openai.temperature', 'llm.providers.openai.top_p'])
  assert.match(platform.logs.text, /configuration adapted/)
})

/** DeepSeek's stream of a final answer after thinking (the shape of deepseek-reasoning-tool-calls.sse). */
function deepSeekAnswer(reasoning: string, text: string): string {
  const chunk = (delta: object, finish: string | null = null, usage?: object) =>
    `data: ${JSON.stringify({ id: 'ds-2', object: 'chat.completion.chunk', created: 1763900001, model: 'deepseek-reasoner', choices: usage ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`
  return [
    chunk({ role: 'assistant', content: null, reasoning_content: '' }),
    chunk({ content: null, reasoning_content: reasoning }),
    chunk({ content: text, reasoning_content: null }),
    chunk({ content: '', reasoning_content: null }, 'stop'),
    chunk({}, null, { prompt_tokens: 400, completion_tokens: 20, total_tokens: 420 }),
    'data: [DONE]\n\n',
  ].join('')
}

test('DeepSeek: reasoning_content reaches the client as reasoning chunks, is stored, and goes back with tool calls', async (t) => {
  const { llm, client } = await setUp(
    t,
    { refuse: openAiRefusals(deepSeekReasoningBack) },
    {
      name: 'deepseek',
      type: 'openai',
      api_key: 'sk-deepseek-test-0123456789',
      model: 'deepseek-reasoner',
      max_tokens: 2000,
    },
    true,
  )
  const FIRST = 'The user wants 2 + 40; demo__add does that — call it.'
  llm.reply({ body: fixture('deepseek-reasoning-tool-calls.sse'), chunkSize: 11 })
  llm.reply({ body: deepSeekAnswer('The tool said 42.', 'The sum is 42.') })
  const frames = await client.chatAndWait('ds-1', { text: 'Add 2 and 40' })
  const done = terminal(frames)
  assert.equal(done.status, 'complete', JSON.stringify(frames))
  assert.equal(reasoningOf(frames), `${FIRST}The tool said 42.`)
  assert.equal(textOf(frames), 'The sum is 42.')
  const order = frames.filter((f) => f.status === 'chunk').map((f) => f.chunk!.type)
  assert.ok(order.lastIndexOf('reasoning') < order.indexOf('text'), order.join(' '))
  assert.ok(order.indexOf('reasoning') < order.indexOf('tool_call'), order.join(' '))

  // The second call of the turn carries the first reply's reasoning with its tool calls (the
  // stand-in refuses it otherwise, as DeepSeek does).
  assert.equal(llm.requests.length, 2)
  const assistant = llm.requests[1]!.body.messages.find((m: any) => m.role === 'assistant')
  assert.equal(assistant.reasoning_content, FIRST)

  const conversationId = done.metadata!.conversation_id as string
  const events = await history(client, conversationId)
  assert.deepEqual(events.map(shape), [
    { type: 'user_message' },
    { type: 'tool_call', reasoning: FIRST },
    { type: 'tool_result' },
    { type: 'assistant_message', reasoning: 'The tool said 42.' },
  ])
  assert.ok(
    events.every((e) => e.reasoning_parts === undefined),
    'the provider form stays in the store',
  )
  // Sent again in later turns, so counted with the event.
  const call = events[1]!
  const bare = countMessage(
    { role: 'assistant', content: call.content, tool_calls: call.tool_calls },
    'deepseek-reasoner',
  )
  assert.ok(call.token_count > bare, `${call.token_count} > ${bare}`)

  // A later turn: DeepSeek wants it in every later request, and gets it.
  llm.reply({ body: openAiStream(['You are welcome.']) })
  const later = await client.chatAndWait('ds-2', { text: 'Thanks', conversation_id: conversationId })
  assert.equal(terminal(later).status, 'complete', JSON.stringify(later))
  const again = llm.requests[2]!.body.messages.find((m: any) => m.role === 'assistant' && m.tool_calls)
  assert.equal(again.reasoning_content, FIRST)
})

test('OpenRouter: reasoning deltas reach the client and are stored with the answer', async (t) => {
  const { llm, client } = await setUp(
    t,
    {},
    {
      name: 'openrouter',
      api_key: 'sk-or-test-0123456789abcdef',
      model: 'anthropic/claude-sonnet-4.5',
      max_tokens: 2000,
      reasoning_effort: 'medium',
    },
  )
  llm.reply({ body: fixture('openrouter-reasoning.sse') })
  const frames = await client.chatAndWait('or-1', { text: 'What is 2 + 40?' })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  // Its two deltas (which come in one piece, so most likely as one chunk).
  assert.equal(chunks(frames, 'reasoning').join(''), 'Two plus forty is 42.')
  assert.equal(textOf(frames), 'It is 42.')
  assert.deepEqual(llm.requests[0]!.body.reasoning, { effort: 'medium' })
  const events = await history(client, terminal(frames).metadata!.conversation_id as string)
  assert.deepEqual(events.map(shape), [
    { type: 'user_message' },
    { type: 'assistant_message', reasoning: 'Two plus forty is 42.' },
  ])
})

const THINKING = "The user wants 2 + 40. I'll use demo__add — it adds two numbers."

/** The non-streaming form of anthropic-thinking-tool-use.sse. */
function thinkingToolUseJson(): object {
  return {
    id: 'msg_01Thk',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-5-20250929',
    content: [
      { type: 'thinking', thinking: THINKING, signature: sign(THINKING) },
      { type: 'redacted_thinking', data: REDACTED_DATA },
      { type: 'text', text: 'Let me add those.' },
      { type: 'tool_use', id: 'toolu_01Thk', name: 'demo__add', input: { a: 2, b: 40 } },
    ],
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: { input_tokens: 520, output_tokens: 181 },
  }
}

for (const streaming of [true, false]) {
  test(`Anthropic thinking with tool use (streaming ${streaming}): the thinking goes back signed with the tool results`, async (t) => {
    const { llm, client } = await setUp(
      t,
      { refuse: anthropicRefusals(...ANTHROPIC_REASONING_RULES) },
      {
        name: 'anthropic',
        api_key: 'sk-ant-test-0123456789abcdef',
        model: 'claude-sonnet-4-5',
        temperature: 0.7,
        top_p: 0.9,
        max_tokens: 4096,
        thinking: { budget_tokens: 2048 },
      },
      true,
    )
    llm.setDefault(anthropicDefaultReply)
    if (streaming) {
      llm.reply({ body: fixture('anthropic-thinking-tool-use.sse'), chunkSize: 13 })
      llm.reply({ body: anthropicStream(['The sum ', 'is 42.']) })
    } else {
      llm.reply({ json: thinkingToolUseJson() })
      llm.reply({ json: anthropicJson('The sum is 42.') })
    }
    const frames = await client.chatAndWait(`think-${streaming}`, { text: 'Add 2 and 40', streaming })
    const done = terminal(frames)
    assert.equal(done.status, 'complete', JSON.stringify(frames))
    assert.equal(reasoningOf(frames), THINKING)
    assert.equal(textOf(frames), 'Let me add those.The sum is 42.')
    assert.deepEqual(chunks(frames, 'tool_result'), [
      { id: 'toolu_01Thk', name: 'demo__add', is_error: false, content: '42' },
    ])

    assert.equal(llm.requests.length, 2)
    const [first, second] = llm.requests.map((r) => r.body)
    for (const body of [first, second]) {
      assert.deepEqual(body.thinking, { type: 'enabled', budget_tokens: 2048 })
      // Refused with thinking: left out.
      assert.equal(body.temperature, undefined)
      assert.equal(body.top_p, undefined)
    }
    assert.deepEqual(second.messages.slice(1), [
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: THINKING, signature: sign(THINKING) },
          { type: 'redacted_thinking', data: REDACTED_DATA },
          { type: 'text', text: 'Let me add those.' },
          { type: 'tool_use', id: 'toolu_01Thk', name: 'demo__add', input: { a: 2, b: 40 } },
        ],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01Thk', content: '42' }] },
    ])

    const conversationId = done.metadata!.conversation_id as string
    const events = await history(client, conversationId)
    assert.deepEqual(events.map(shape), [
      { type: 'user_message' },
      { type: 'tool_call', reasoning: THINKING },
      { type: 'tool_result' },
      { type: 'assistant_message' },
    ])
    // Not sent in later turns, so not counted against their context budget.
    const call = events[1]!
    const bare = countMessage({ role: 'assistant', content: call.content, tool_calls: call.tool_calls }, 'x')
    assert.equal(call.token_count, bare)

    // The next turn leaves the earlier thinking out, and the API takes it so.
    const later = await client.chatAndWait(`think-later-${streaming}`, {
      text: 'Thanks',
      conversation_id: conversationId,
      streaming,
    })
    assert.equal(terminal(later).status, 'complete', JSON.stringify(later))
    assert.doesNotMatch(JSON.stringify(llm.requests[2]!.body.messages), /"thinking"|redacted_thinking/)
  })
}

test('Claude Opus 4.7: adaptive thinking, no sampling settings, its thinking shown and stored', async (t) => {
  const { llm, platform, client } = await setUp(
    t,
    { refuse: anthropicRefusals(...ANTHROPIC_REASONING_RULES) },
    {
      name: 'anthropic',
      api_key: 'sk-ant-test-0123456789abcdef',
      model: 'claude-opus-4-7',
      temperature: 0.5,
      max_tokens: 8000,
      thinking: { budget_tokens: 4000 },
    },
  )
  const json = anthropicJson('Forty-two.', { model: 'claude-opus-4-7' }) as { content: object[] }
  json.content.unshift({ type: 'thinking', thinking: 'Simple sum.', signature: sign('Simple sum.') })
  llm.reply({ json })
  const frames = await client.chatAndWait('opus', { text: '2 + 40?', streaming: false })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  assert.deepEqual(chunks(frames, 'reasoning'), ['Simple sum.'])
  const body = llm.requests[0]!.body
  assert.deepEqual(body.thinking, { type: 'adaptive', display: 'summarized' })
  assert.equal(body.temperature, undefined)
  const events = await history(client, terminal(frames).metadata!.conversation_id as string)
  assert.deepEqual(events.map(shape).at(-1), { type: 'assistant_message', reasoning: 'Simple sum.' })
  assert.deepEqual(
    platform.app.platformConfig.warnings.map((w) => w.path),
    ['llm.providers.anthropic.thinking', 'llm.providers.anthropic.temperature'],
  )
})

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER, ...args], { env: { PATH: process.env.PATH ?? '' } })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

test('check-config prints what is left out of requests, and refuses what no model takes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-reasoning-'))
  try {
    const config = baseConfig('http://127.0.0.1:9/v1')
    Object.assign(config.llm.providers, {
      openai: { api_key: 'env:OPENAI_API_KEY', model: 'o3', temperature: 0.7, top_p: 0.9, max_tokens: 2000 },
      anthropic: {
        api_key: 'env:ANTHROPIC_API_KEY',
        model: 'claude-sonnet-4-5',
        temperature: 0.7,
        top_p: 0.9,
        max_tokens: 4096,
        thinking: { budget_tokens: 2048 },
      },
      claude45: {
        type: 'anthropic',
        base_url: 'http://127.0.0.1:9/v1',
        model: 'claude-haiku-4-5',
        temperature: 0.3,
        top_p: 0.8,
        max_tokens: 1000,
      },
      // gpt-5 takes minimal to high, not none (gpt-5.1's); top_p 1 is the default: left out unsaid.
      gpt5: {
        type: 'openai',
        base_url: 'http://127.0.0.1:9/v1',
        model: 'gpt-5',
        reasoning_effort: 'none',
        top_p: 1,
        max_tokens: 1000,
        max_tokens_field: 'max_completion_tokens',
      },
    })
    const files = await writeConfigFiles(dir, config)
    const ok = await runCli(['check-config', '--config', files.configPath, '--servers', files.serversPath])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(
      ok.stdout,
      [
        'warning: llm.providers.openai.temperature: not sent to o3: OpenAI reasoning models refuse temperature (only the default is supported)',
        'warning: llm.providers.openai.top_p: not sent to o3: OpenAI reasoning models refuse top_p (only the default is supported)',
        'warning: llm.providers.anthropic.temperature: not sent while thinking is on: Anthropic refuses temperature with thinking',
        'warning: llm.providers.anthropic.top_p: not sent while thinking is on: Anthropic takes top_p only between 0.95 and 1 with thinking',
        'warning: llm.providers.claude45.top_p: not sent to claude-haiku-4-5: newer Claude models refuse temperature and top_p together (temperature is sent)',
        'warning: llm.providers.gpt5.reasoning_effort: not sent to gpt-5: it takes minimal, low, medium, high, not none (OpenAI refuses other values)',
        'OK',
        '',
      ].join('\n'),
    )

    config.llm.providers.local.thinking = { budget_tokens: 1024 }
    config.llm.providers.anthropic.thinking = { budget_tokens: 4096 }
    const bad = await writeConfigFiles(dir, config)
    const refused = await runCli(['check-config', '--config', bad.configPath, '--servers', bad.serversPath])
    assert.equal(refused.code, 78)
    assert.match(refused.stderr, /llm\.providers\.local\.thinking: is only for the anthropic wire/)
    assert.match(
      refused.stderr,
      /llm\.providers\.anthropic\.thinking\.budget_tokens: must be less than max_tokens \(4096\), got 4096/,
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
