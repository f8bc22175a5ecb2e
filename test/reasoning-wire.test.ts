// Reasoning models on both wires, against a real local server that refuses what the real APIs
// refuse (test/helpers/rules-reasoning.ts): the fields a request carries for each provider and
// model (reply limit, sampling, reasoning effort, thinking), reasoning read from the documented
// streams and replies, and reasoning sent back where the provider requires it.
import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ProviderConfig } from '../src/config/types.js'
import { AnthropicProvider } from '../src/llm/anthropic.js'
import { OpenAiProvider } from '../src/llm/openai.js'
import type { LlmEvent, LlmMessage, LlmProvider, LlmRequest, ReasoningPart } from '../src/llm/types.js'
import { collect } from './helpers/llm-events.js'
import {
  anthropicDefaultReply,
  fixture,
  openAiJson,
  startLlmServer,
  type LlmServer,
  type LlmServerOptions,
} from './helpers/llm-server.js'
import { anthropicRefusals, openAiRefusals } from './helpers/provider-rules.js'
import {
  ANTHROPIC_REASONING_RULES,
  OPENAI_REASONING_RULES,
  REDACTED_DATA,
  deepSeekReasoningBack,
  groqNoReasoningContent,
  sign,
} from './helpers/rules-reasoning.js'

const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  // Servers first: closing a pool waits for requests still in flight.
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function server(options: LlmServerOptions = {}): Promise<LlmServer> {
  const s = await startLlmServer(options)
  cleanup.push(() => s.close())
  return s
}

function provider(
  s: LlmServer,
  config: Partial<ProviderConfig> & Pick<ProviderConfig, 'name' | 'model'>,
): LlmProvider {
  const full: ProviderConfig = { type: 'openai', base_url: s.baseUrl, max_tokens: 4096, ...config }
  const request = { timeout: 5, max_retries: 0, max_response_bytes: 8_388_608 }
  const p =
    full.type === 'anthropic' ? new AnthropicProvider(full, request) : new OpenAiProvider(full, request)
  // Closed after every server: closing a pool waits for its requests.
  cleanup.unshift(() => p.close())
  return p
}

function chat(p: LlmProvider, request: Partial<LlmRequest> = {}): Promise<LlmEvent[]> {
  const full: LlmRequest = { messages: [{ role: 'user', content: 'Hi' }], stream: true, ...request }
  return collect(p.chat(full, new AbortController().signal))
}

/** The body fields a test looks at, absent ones left out. */
function fieldsOf(body: Record<string, unknown>, names: string[]): Record<string, unknown> {
  return Object.fromEntries(names.filter((n) => body[n] !== undefined).map((n) => [n, body[n]]))
}
const FIELDS = [
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'reasoning_effort',
  'reasoning',
]

test('the openai wire: reply limit, sampling and effort as each provider and model takes them', async () => {
  // OpenAI's models (on OpenAI, or Azure behind a custom entry) meet OpenAI's rules; the others a
  // server that takes what those providers document.
  const strict = await server({ refuse: openAiRefusals(...OPENAI_REASONING_RULES) })
  const lenient = await server()
  const settings = { temperature: 0.7, top_p: 0.9 }
  const cases: [
    string,
    Partial<ProviderConfig> & Pick<ProviderConfig, 'name' | 'model'>,
    string | undefined,
    Record<string, unknown>,
  ][] = [
    // OpenAI: max_completion_tokens for every model; reasoning models get no sampling settings.
    [
      'openai gpt-5',
      { name: 'openai', model: 'gpt-5', ...settings, reasoning_effort: 'high' },
      undefined,
      { max_completion_tokens: 4096, reasoning_effort: 'high' },
    ],
    ['openai o3', { name: 'openai', model: 'o3', ...settings }, undefined, { max_completion_tokens: 4096 }],
    [
      'openai o4-mini via a chat override of gpt-4o-mini',
      { name: 'openai', model: 'gpt-4o-mini', ...settings },
      'o4-mini',
      { max_completion_tokens: 4096 },
    ],
    // The configured effort is for the configured reasoning model; a chat naming gpt-4o gets none.
    [
      'openai gpt-4o via a chat override of gpt-5',
      { name: 'openai', model: 'gpt-5', ...settings, reasoning_effort: 'low' },
      'gpt-4o',
      { max_completion_tokens: 4096, ...settings },
    ],
    [
      'openai gpt-5.1 without effort samples',
      { name: 'openai', model: 'gpt-5.1', ...settings },
      undefined,
      { max_completion_tokens: 4096, ...settings },
    ],
    [
      'openai gpt-5.1 with effort reasons',
      { name: 'openai', model: 'gpt-5.1', ...settings, reasoning_effort: 'medium' },
      undefined,
      { max_completion_tokens: 4096, reasoning_effort: 'medium' },
    ],
    // An effort the model does not take is left out, not sent to be refused.
    [
      'openai o3 with minimal (gpt-5 only)',
      { name: 'openai', model: 'o3', ...settings, reasoning_effort: 'minimal' },
      undefined,
      { max_completion_tokens: 4096 },
    ],
    [
      'openai gpt-5.1 with minimal (gpt-5 only)',
      { name: 'openai', model: 'gpt-5.1', reasoning_effort: 'minimal' },
      undefined,
      { max_completion_tokens: 4096 },
    ],
    [
      'openai gpt-5-chat-latest does not reason',
      { name: 'openai', model: 'gpt-5-chat-latest', ...settings },
      undefined,
      { max_completion_tokens: 4096, ...settings },
    ],
    // Groq documents max_completion_tokens and a top-level reasoning_effort.
    [
      'groq',
      { name: 'groq', model: 'openai/gpt-oss-120b', ...settings, reasoning_effort: 'low' },
      undefined,
      { max_completion_tokens: 4096, ...settings, reasoning_effort: 'low' },
    ],
    // OpenRouter documents max_tokens and reasoning: {effort}.
    [
      'openrouter',
      { name: 'openrouter', model: 'openai/o3', ...settings, reasoning_effort: 'high' },
      undefined,
      { max_tokens: 4096, ...settings, reasoning: { effort: 'high' } },
    ],
    // Other servers: max_tokens, unless the configuration names the other field.
    [
      'custom',
      { name: 'ollama', model: 'qwen3', ...settings, reasoning_effort: 'none' },
      undefined,
      { max_tokens: 4096, ...settings, reasoning_effort: 'none' },
    ],
    [
      'custom with max_tokens_field',
      { name: 'azure', model: 'o3-mini', max_tokens_field: 'max_completion_tokens', ...settings },
      undefined,
      { max_completion_tokens: 4096 },
    ],
    [
      'nothing configured is nothing sent',
      { name: 'openai', model: 'gpt-4o' },
      undefined,
      { max_completion_tokens: 4096 },
    ],
  ]
  for (const [name, config, override, expected] of cases) {
    const openAiModel = /^(o\d|gpt-)/.test(override ?? config.model)
    const s = openAiModel ? strict : lenient
    for (const stream of [true, false]) {
      const from = s.requests.length
      const events = await chat(provider(s, config), { stream, ...(override ? { model: override } : {}) })
      assert.equal(events.at(-1)?.type, 'done', `${name} (stream ${stream}): ${JSON.stringify(events)}`)
      const body = s.requests[from]!.body
      assert.equal(body.model, override ?? config.model, name)
      assert.deepEqual(fieldsOf(body, FIELDS), expected, `${name} (stream ${stream})`)
    }
  }
})

test('the stand-in is strict: what the platform no longer sends is refused as OpenAI refuses it', async () => {
  const s = await server({ refuse: openAiRefusals(...OPENAI_REASONING_RULES) })
  const send = async (body: Record<string, unknown>) => {
    const res = await fetch(`${s.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], ...body }),
    })
    return { status: res.status, message: ((await res.json()) as any).error?.message as string | undefined }
  }
  assert.deepEqual(await send({ model: 'gpt-5', max_tokens: 10 }), {
    status: 400,
    message:
      "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
  })
  assert.deepEqual(await send({ model: 'o3', max_completion_tokens: 10, temperature: 0.7 }), {
    status: 400,
    message:
      "Unsupported value: 'temperature' does not support 0.7 with this model. Only the default (1) value is supported.",
  })
  assert.equal((await send({ model: 'gpt-5.1', temperature: 0.7, reasoning_effort: 'high' })).status, 400)
  assert.equal((await send({ model: 'gpt-4o', reasoning_effort: 'high' })).status, 400)
  assert.equal((await send({ model: 'gpt-4o', max_tokens: 10, temperature: 0.7, top_p: 0.9 })).status, 200)
})

test('the anthropic wire: sampling and thinking as each Claude model takes them', async () => {
  const s = await server({ refuse: anthropicRefusals(...ANTHROPIC_REASONING_RULES) })
  s.setDefault(anthropicDefaultReply)
  const base = { type: 'anthropic' as const, name: 'anthropic', temperature: 0.7, top_p: 0.9 }
  const cases: [
    string,
    Partial<ProviderConfig> & Pick<ProviderConfig, 'name' | 'model'>,
    Record<string, unknown>,
  ][] = [
    // Claude 3.7 and 4.0 take both.
    [
      'claude-3-7-sonnet',
      { ...base, model: 'claude-3-7-sonnet-20250219' },
      { max_tokens: 4096, temperature: 0.7, top_p: 0.9 },
    ],
    [
      'claude-sonnet-4',
      { ...base, model: 'claude-sonnet-4-20250514' },
      { max_tokens: 4096, temperature: 0.7, top_p: 0.9 },
    ],
    // Since Opus 4.1: one of the two, temperature.
    [
      'claude-sonnet-4-5',
      { ...base, model: 'claude-sonnet-4-5-20250929' },
      { max_tokens: 4096, temperature: 0.7 },
    ],
    [
      'claude-opus-4-1',
      { ...base, model: 'claude-opus-4-1-20250805' },
      { max_tokens: 4096, temperature: 0.7 },
    ],
    [
      'top_p alone stays',
      { ...base, temperature: undefined, model: 'claude-haiku-4-5' },
      { max_tokens: 4096, top_p: 0.9 },
    ],
    // Thinking: no temperature, top_p only from 0.95.
    [
      'thinking',
      { ...base, model: 'claude-sonnet-4-5', thinking: { budget_tokens: 2048 } },
      { max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 2048 } },
    ],
    [
      'thinking keeps top_p 0.97',
      { ...base, top_p: 0.97, model: 'claude-sonnet-4-20250514', thinking: { budget_tokens: 2048 } },
      { max_tokens: 4096, top_p: 0.97, thinking: { type: 'enabled', budget_tokens: 2048 } },
    ],
    // Opus 4.7: no sampling settings, adaptive thinking only; effort in output_config.
    [
      'claude-opus-4-7',
      { ...base, model: 'claude-opus-4-7', thinking: { budget_tokens: 2048 }, reasoning_effort: 'xhigh' },
      {
        max_tokens: 4096,
        thinking: { type: 'adaptive', display: 'summarized' },
        output_config: { effort: 'xhigh' },
      },
    ],
    [
      'claude-sonnet-4-6 takes effort',
      { ...base, top_p: undefined, model: 'claude-sonnet-4-6', reasoning_effort: 'low' },
      { max_tokens: 4096, temperature: 0.7, output_config: { effort: 'low' } },
    ],
    [
      'claude-sonnet-4-5 takes no effort',
      { ...base, top_p: undefined, model: 'claude-sonnet-4-5', reasoning_effort: 'low' },
      { max_tokens: 4096, temperature: 0.7 },
    ],
  ]
  for (const [name, config, expected] of cases) {
    for (const stream of [true, false]) {
      const from = s.requests.length
      const events = await chat(provider(s, config), { stream })
      assert.equal(events.at(-1)?.type, 'done', `${name}: ${JSON.stringify(events)}`)
      const body = s.requests[from]!.body
      assert.deepEqual(
        fieldsOf(body, ['max_tokens', 'temperature', 'top_p', 'top_k', 'thinking', 'output_config']),
        expected,
        `${name} (stream ${stream})`,
      )
    }
  }
})

test('reasoning_content deltas (DeepSeek), cut anywhere: reasoning events, then the part to send back', async () => {
  const s = await server()
  const p = provider(s, { name: 'deepseek', model: 'deepseek-reasoner' })
  for (const chunkSize of [undefined, 1, 7, 64]) {
    s.reply({ body: fixture('deepseek-reasoning-tool-calls.sse'), ...(chunkSize ? { chunkSize } : {}) })
    const events = await chat(p)
    const reasoning = events
      .filter((e) => e.type === 'reasoning')
      .map((e) => (e.type === 'reasoning' ? e.text : ''))
    assert.equal(
      reasoning.join(''),
      'The user wants 2 + 40; demo__add does that — call it.',
      `chunkSize ${chunkSize}`,
    )
    assert.deepEqual(
      events.filter((e) => e.type !== 'reasoning'),
      [
        {
          type: 'reasoning_part',
          part: { type: 'reasoning_content', text: 'The user wants 2 + 40; demo__add does that — call it.' },
        },
        {
          type: 'tool_call',
          call: { id: 'call_00_kR3tS7', name: 'demo__add', arguments: '{"a": 2, "b": 40}' },
        },
        {
          type: 'done',
          finish_reason: 'tool_calls',
          model: 'deepseek-reasoner',
          usage: { prompt_tokens: 310, completion_tokens: 64, total_tokens: 374 },
        },
      ],
      `chunkSize ${chunkSize}`,
    )
  }
})

test('reasoning deltas (OpenRouter): reasoning events before the text, nothing kept to send back', async () => {
  const s = await server()
  s.reply({ body: fixture('openrouter-reasoning.sse'), chunkSize: 5 })
  const events = await chat(provider(s, { name: 'openrouter', model: 'anthropic/claude-sonnet-4.5' }))
  assert.deepEqual(events, [
    { type: 'reasoning', text: 'Two plus forty' },
    { type: 'reasoning', text: ' is 42.' },
    { type: 'text', text: 'It is ' },
    { type: 'text', text: '42.' },
    {
      type: 'done',
      finish_reason: 'stop',
      model: 'anthropic/claude-sonnet-4.5',
      usage: { prompt_tokens: 14, completion_tokens: 31, total_tokens: 45 },
    },
  ])
})

test('a whole reply: message.reasoning_content and message.reasoning come first, whole', async () => {
  const s = await server()
  const p = provider(s, { name: 'vllm', model: 'qwen3' })
  const reply = (message: Record<string, unknown>) => {
    const json = openAiJson('Forty-two.') as any
    json.choices[0].message = { ...json.choices[0].message, ...message }
    return { json }
  }
  s.reply(reply({ reasoning_content: 'Add them.' }))
  assert.deepEqual((await chat(p, { stream: false })).slice(0, 3), [
    { type: 'reasoning', text: 'Add them.' },
    { type: 'text', text: 'Forty-two.' },
    { type: 'reasoning_part', part: { type: 'reasoning_content', text: 'Add them.' } },
  ])
  // Groq and Ollama name it `reasoning`; a server sending both sends one text twice.
  s.reply(reply({ reasoning: 'Add them.' }))
  assert.deepEqual((await chat(p, { stream: false })).slice(0, 2), [
    { type: 'reasoning', text: 'Add them.' },
    { type: 'text', text: 'Forty-two.' },
  ])
  s.reply(reply({ reasoning: 'Add them.', reasoning_content: 'Add them.' }))
  const both = await chat(p, { stream: false })
  assert.equal(both.filter((e) => e.type === 'reasoning').length, 1)
})

const THINKING = "The user wants 2 + 40. I'll use demo__add — it adds two numbers."
const THINKING_PARTS: ReasoningPart[] = [
  { type: 'thinking', thinking: THINKING, signature: sign(THINKING) },
  { type: 'redacted_thinking', data: REDACTED_DATA },
]

test('Anthropic thinking blocks, cut anywhere: reasoning events, then each block with its signature', async () => {
  const s = await server()
  const p = provider(s, {
    type: 'anthropic',
    name: 'anthropic',
    model: 'claude-sonnet-4-5',
    thinking: { budget_tokens: 2048 },
  })
  for (const chunkSize of [undefined, 1, 9, 100]) {
    s.reply({ body: fixture('anthropic-thinking-tool-use.sse'), ...(chunkSize ? { chunkSize } : {}) })
    assert.deepEqual(
      await chat(p),
      [
        { type: 'reasoning', text: 'The user wants 2 + 40.' },
        { type: 'reasoning', text: " I'll use demo__add — it adds two numbers." },
        { type: 'text', text: 'Let me add those.' },
        ...THINKING_PARTS.map((part) => ({ type: 'reasoning_part', part })),
        { type: 'tool_call', call: { id: 'toolu_01Thk', name: 'demo__add', arguments: '{"a": 2, "b": 40}' } },
        {
          type: 'done',
          finish_reason: 'tool_calls',
          model: 'claude-sonnet-4-5-20250929',
          usage: { prompt_tokens: 520, completion_tokens: 181, total_tokens: 701 },
        },
      ],
      `chunkSize ${chunkSize}`,
    )
  }
  // A whole message: the same blocks.
  s.reply({
    json: {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      content: [
        { type: 'thinking', thinking: THINKING, signature: sign(THINKING) },
        { type: 'redacted_thinking', data: REDACTED_DATA },
        { type: 'text', text: 'Let me add those.' },
        { type: 'tool_use', id: 'toolu_1', name: 'demo__add', input: { a: 2, b: 40 } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 5, output_tokens: 5 },
    },
  })
  const whole = await chat(p, { stream: false })
  assert.deepEqual(whole.slice(0, 4), [
    { type: 'reasoning', text: THINKING },
    { type: 'text', text: 'Let me add those.' },
    ...THINKING_PARTS.map((part) => ({ type: 'reasoning_part', part })),
  ])
})

test('Anthropic: thinking goes back first in the assistant messages of the open tool-use cycle, only there', async () => {
  const s = await server({ refuse: anthropicRefusals(...ANTHROPIC_REASONING_RULES) })
  s.setDefault(anthropicDefaultReply)
  const call = (id: string) => [{ id, name: 'demo__add', arguments: '{"a":2,"b":40}' }]
  const earlier: ReasoningPart[] = [{ type: 'thinking', thinking: 'Earlier.', signature: sign('Earlier.') }]
  const messages: LlmMessage[] = [
    { role: 'user', content: 'Add 2 and 40' },
    { role: 'assistant', content: '', tool_calls: call('toolu_a'), reasoning: earlier },
    { role: 'tool', tool_call_id: 'toolu_a', content: '42' },
    { role: 'assistant', content: 'It is 42.' },
    { role: 'user', content: 'And again' },
    { role: 'assistant', content: 'Adding.', tool_calls: call('toolu_b'), reasoning: THINKING_PARTS },
    { role: 'tool', tool_call_id: 'toolu_b', content: '42' },
    // A second round of the same turn: Claude does not think again after tool results.
    { role: 'assistant', content: '', tool_calls: call('toolu_c') },
    { role: 'tool', tool_call_id: 'toolu_c', content: '42' },
  ]
  const thinking = provider(s, {
    type: 'anthropic',
    name: 'anthropic',
    model: 'claude-sonnet-4-5',
    thinking: { budget_tokens: 2048 },
  })
  await chat(thinking, { messages })
  const sent = s.requests.at(-1)!.body.messages as { role: string; content: { type: string }[] }[]
  const types = sent.map((m) => `${m.role}: ${m.content.map((b) => b.type).join(' ')}`)
  assert.deepEqual(types, [
    'user: text',
    'assistant: tool_use', // an earlier turn's thinking is left out
    'user: tool_result',
    'assistant: text',
    'user: text',
    'assistant: thinking redacted_thinking text tool_use',
    'user: tool_result',
    'assistant: tool_use',
    'user: tool_result',
  ])
  assert.deepEqual(sent[5]!.content.slice(0, 2), [
    { type: 'thinking', thinking: THINKING, signature: sign(THINKING) },
    { type: 'redacted_thinking', data: REDACTED_DATA },
  ])
  // Without them the strict stand-in refuses, as the API does.
  const bare = messages.map((m) => (m.role === 'assistant' ? { ...m, reasoning: undefined } : m))
  await assert.rejects(chat(thinking, { messages: bare }), /must start with a thinking block/)
  // Thinking off: none is sent.
  await chat(provider(s, { type: 'anthropic', name: 'anthropic', model: 'claude-sonnet-4-5' }), { messages })
  assert.doesNotMatch(JSON.stringify(s.requests.at(-1)!.body), /thinking/)
})

test('the openai wire gives reasoning_content back with tool calls to servers that need it, never to Groq', async () => {
  const history: LlmMessage[] = [
    { role: 'user', content: 'Add 2 and 40' },
    {
      role: 'assistant',
      content: '',
      tool_calls: [{ id: 'call_1', name: 'demo__add', arguments: '{"a":2,"b":40}' }],
      reasoning: [{ type: 'reasoning_content', text: 'Use the tool.' }],
    },
    { role: 'tool', tool_call_id: 'call_1', content: '42' },
  ]
  const deepseek = await server({ refuse: openAiRefusals(deepSeekReasoningBack) })
  await chat(provider(deepseek, { name: 'deepseek', model: 'deepseek-reasoner' }), { messages: history })
  assert.equal(deepseek.requests[0]!.body.messages[1].reasoning_content, 'Use the tool.')
  const groq = await server({ refuse: openAiRefusals(groqNoReasoningContent) })
  const events = await chat(provider(groq, { name: 'groq', model: 'qwen/qwen3-32b' }), { messages: history })
  assert.equal(events.at(-1)?.type, 'done')
  assert.equal(groq.requests[0]!.body.messages[1].reasoning_content, undefined)
})
