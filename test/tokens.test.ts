// Token counts and the context of a turn (architecture.md, Tokens; data flow step 3). Counts go
// through the real tiktoken; the reference numbers below were taken once from tiktoken's own
// `encode_ordinary(text).length` on the whole string.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { get_encoding } from 'tiktoken'
import { errors } from '../src/errors.js'
import type { LlmMessage, ToolSpec } from '../src/llm/types.js'
import { buildContext, checkFixed, type ContextInput, type HistoryMessage } from '../src/tokens/context.js'
import {
  countMessage,
  countTokens,
  countTools,
  encodingFor,
  isExactCut,
  MESSAGE_OVERHEAD,
  REPLY_PRIMING,
  TOOL_OVERHEAD,
} from '../src/tokens/counter.js'

const CL100K = 'gpt-4'
const O200K = 'gpt-4o'

/** A deterministic stream of numbers (mulberry32), so generated texts are the same every run. */
function random(seed: number): (n: number) => number {
  let s = seed
  return (n) => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t)
    return ((t ^ (t >>> 14)) >>> 0) % n
  }
}

function generate(seed: number, length: number, parts: string[]): string {
  const next = random(seed)
  let text = ''
  while (text.length < length) text += parts[next(parts.length)]
  return text.slice(0, length)
}

/** Prose longer than the counter's chunk, with every kind of whitespace next to every kind of character. */
const LONG_PROSE = Array.from(
  { length: 300 },
  (_, i) =>
    `Paragraph ${i}: the quick brown fox (no. ${i * 37}) jumps over the lazy dog's back;  twice,\tthen\n` +
    `again — "naïve" café… ${i % 7 === 0 ? '\n\n    indented code();\n' : ''}It's 3.14%  of  the time! `,
).join('')

/** Lines without a single space: CSV-like data, cut only at line breaks, digits and punctuation. */
const LONG_LINES = Array.from(
  { length: 900 },
  (_, i) => `row${i},${(i * 7919) % 10007},alpha-beta/${i % 13},x=${i}.5;ok\n`,
).join('')

const REFERENCE: Array<{ name: string; text: string; cl100k: number; o200k: number }> = [
  { name: 'ASCII', text: 'Hello, world! How are you today?', cl100k: 9, o200k: 9 },
  {
    name: 'non-ASCII',
    text: 'Grüße aus Köln — naïve café, señor. Привет, мир! こんにちは世界。你好，世界。مرحبا بالعالم',
    cl100k: 44,
    o200k: 29,
  },
  {
    name: 'emoji',
    text: 'Wave 👋🏽, family 👨‍👩‍👧‍👦, flags 🇫🇷🇯🇵, heart on fire ❤️‍🔥 and 🤖✨✨✨',
    cl100k: 60,
    o200k: 41,
  },
  {
    name: 'code',
    text:
      'export async function main(argv: string[]): Promise<number> {\n' +
      "\tconst { values } = parseArgs({ args: argv, options: { port: { type: 'string' } } })\n" +
      '    if (!values.port) return 64 // EX_USAGE\n' +
      '    return await serve(Number(values.port)) ?? 0;\n}\n',
    cl100k: 64,
    o200k: 64,
  },
  {
    name: 'special-token text is plain text',
    text: 'Say <|endoftext|> and <|im_start|>user',
    cl100k: 14,
    o200k: 16,
  },
  { name: 'whitespace runs', text: 'a  b   c\t\td \n\n e  \n  f        g', cl100k: 14, o200k: 14 },
  { name: 'long prose with spaces', text: LONG_PROSE, cl100k: 15231, o200k: 14631 },
  { name: 'long lines without spaces', text: LONG_LINES, cl100k: 15210, o200k: 16110 },
]

test('encodingFor: o200k_base for GPT-4o and later, cl100k_base for the rest', () => {
  assert.equal(encodingFor(CL100K), 'cl100k_base')
  assert.equal(encodingFor(O200K), 'o200k_base')
  assert.equal(encodingFor('gpt-4.1-mini'), 'o200k_base')
  assert.equal(encodingFor('o3'), 'o200k_base')
  assert.equal(encodingFor('llama-3.3-70b-versatile'), 'cl100k_base')
})

test('token counts equal tiktoken reference counts', () => {
  assert.ok(LONG_PROSE.length > 40_000 && LONG_LINES.length > 20_000, 'long texts span several chunks')
  for (const { name, text, cl100k, o200k } of REFERENCE) {
    assert.equal(countTokens(text, CL100K), cl100k, `${name}, cl100k_base`)
    assert.equal(countTokens(text, O200K), o200k, `${name}, o200k_base`)
  }
})

// Text that exercises the cut rules: ASCII and not, digits next to anything, apostrophes,
// combining marks, numerals that are not ASCII, `/` after a line break, every kind of whitespace.
const MIXED = [
  'ab', 'Xy', 'é', 'e\u0301', '1', '22', '.', ',', '/', "'s", "'", "'LL", '-', '(', ';', '😀', '日', '²',
  '\u0661', '𝟏', ' ', '  ', '\t', '\n', '.\n', '\n/', '\r\n', '\r', '\u00a0', '\u3000', '\u0085',
  '\ufeff', ' \n', 'the', '<|endoftext|>',
] // prettier-ignore

test('every place the counter may cut text is a piece boundary for tiktoken', () => {
  for (const encoding of ['cl100k_base', 'o200k_base'] as const) {
    const enc = get_encoding(encoding)
    const count = (text: string) => enc.encode_ordinary(text).length
    let checked = 0
    try {
      for (let seed = 1; seed <= 2000; seed++) {
        const text = generate(seed, 24, MIXED)
        const whole = count(text)
        for (let i = 1; i < text.length; i++) {
          if (!isExactCut(text, i)) continue
          checked++
          const apart = count(text.slice(0, i)) + count(text.slice(i))
          assert.equal(
            apart,
            whole,
            `${encoding}: ${JSON.stringify(text.slice(0, i))} | ${JSON.stringify(text.slice(i))}`,
          )
        }
      }
    } finally {
      enc.free()
    }
    assert.ok(checked > 5000, `${checked} cuts checked`)
  }
})

test('long generated text counts exactly as tiktoken on the whole string', () => {
  for (const [model, encoding] of [
    [CL100K, 'cl100k_base'],
    [O200K, 'o200k_base'],
  ] as const) {
    const enc = get_encoding(encoding)
    try {
      for (let seed = 1; seed <= 10; seed++) {
        const text = generate(seed, 40_000, MIXED)
        assert.equal(countTokens(text, model), enc.encode_ordinary(text).length, `${encoding}, seed ${seed}`)
      }
    } finally {
      enc.free()
    }
  }
})

test('a long run without whitespace is counted in pieces, close to tiktoken', () => {
  // Letters are one piece for tiktoken: cut blindly, each cut may cost a token.
  const letters = generate(7, 20_000, [...'abcdefghijklmnopqrstuvwxyz'])
  for (const [model, reference] of [
    [CL100K, 10_839],
    [O200K, 10_403],
  ] as const) {
    const ours = countTokens(letters, model)
    assert.ok(Math.abs(ours - reference) / reference < 0.01, `${model}: ${ours} vs ${reference}`)
  }
  // Emoji after one letter: a blind cut at an even offset would split a surrogate pair.
  const emoji = [
    { text: 'x' + '😀'.repeat(5000), cl100k: 10_001, o200k: 5001 },
    { text: 'x' + '👍🏽🎉'.repeat(2000), cl100k: 18_001, o200k: 10_001 },
  ]
  for (const { text, cl100k, o200k } of emoji) {
    for (const [model, reference] of [
      [CL100K, cl100k],
      [O200K, o200k],
    ] as const) {
      const ours = countTokens(text, model)
      assert.ok(Math.abs(ours - reference) / reference < 0.001, `${model}: ${ours} vs ${reference}`)
    }
  }
})

test('countMessage: content, tool call names and arguments, and the per-message overhead', () => {
  // 'Hello, world! How are you today?' is REFERENCE[0].
  const hello = REFERENCE[0]!
  assert.equal(countMessage({ role: 'user', content: hello.text }, CL100K), MESSAGE_OVERHEAD + hello.cl100k)
  assert.equal(countMessage({ role: 'user', content: hello.text }, O200K), MESSAGE_OVERHEAD + hello.o200k)
  assert.equal(countMessage({ role: 'user', content: '' }, CL100K), MESSAGE_OVERHEAD)

  const call: LlmMessage = {
    role: 'assistant',
    content: 'Let me look.',
    tool_calls: [
      { id: 'call_1', name: 'weather__get_forecast', arguments: '{"city":"Paris","days":3}' },
      { id: 'call_2', name: 'files__read', arguments: '{"path":"/etc/hosts"}' },
    ],
  }
  // content 'Let me look.', names and arguments, each counted with tiktoken.
  assert.equal(countMessage(call, CL100K), MESSAGE_OVERHEAD + 28)
  const result: LlmMessage = { role: 'tool', tool_call_id: 'call_1', content: 'Sunny, 21 °C' }
  assert.equal(countMessage(result, CL100K), MESSAGE_OVERHEAD + 7)
})

test('countTools: the JSON the provider receives for each tool, plus a per-tool overhead', () => {
  const tool: ToolSpec = {
    name: 'weather__get_forecast',
    description: 'Forecast for a city',
    input_schema: {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } },
      required: ['city'],
    },
  }
  // What src/llm/openai.ts sends for it ($schema removed): 52 tokens in cl100k_base, 54 in o200k_base.
  const wire =
    '{"type":"function","function":{"name":"weather__get_forecast","description":"Forecast for a city",' +
    '"parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1}},' +
    '"required":["city"]}}}'
  assert.equal(countTokens(wire, CL100K), 52)
  assert.equal(countTools([tool], CL100K), TOOL_OVERHEAD + 52)
  assert.equal(countTools([tool], O200K), TOOL_OVERHEAD + 54)
  assert.equal(countTools([tool, tool], CL100K), 2 * (TOOL_OVERHEAD + 52))
  assert.equal(countTools([], CL100K), 0)
})

// --- Context ---------------------------------------------------------------------------------

const SYSTEM = 'You are a helpful assistant.'
const USER = 'And what about tomorrow?'
const SYSTEM_TOKENS = countMessage({ role: 'system', content: SYSTEM }, CL100K)
const FIXED = SYSTEM_TOKENS + REPLY_PRIMING + countMessage({ role: 'user', content: USER }, CL100K)

/** History messages with stored counts of 100 tokens each, so budgets are easy to reason about. */
function turns(n: number, tokens = 100): HistoryMessage[] {
  return Array.from({ length: n }, (_, i) => {
    const message: LlmMessage = { role: i % 2 ? 'assistant' : 'user', content: `message ${i}` }
    return { message, tokens }
  })
}

/** A context whose room for history is exactly `room` tokens. */
function input(history: HistoryMessage[], room: number, over: Partial<ContextInput> = {}): ContextInput {
  return {
    system: SYSTEM,
    tools: [],
    history,
    user: USER,
    model: CL100K,
    maxTokens: FIXED + room + 500,
    reserveTokens: 500,
    preserveRecent: 0,
    ...over,
  }
}

const contents = (messages: LlmMessage[]) => messages.map((m) => m.content)

test('context: everything fits, in order, with system first and the new message last', () => {
  const history = turns(4)
  const { messages, accounting } = buildContext(input(history, 10_000))
  assert.deepEqual(contents(messages), [SYSTEM, 'message 0', 'message 1', 'message 2', 'message 3', USER])
  assert.equal(accounting.messages_kept, 4)
  assert.equal(accounting.messages_trimmed, 0)
  assert.equal(accounting.history_total, 400)
  assert.equal(accounting.history_kept, 400)
  assert.equal(accounting.total, FIXED + 400)
  assert.equal(accounting.budget, FIXED + 10_000)
  assert.equal(accounting.over_budget, false)
  assert.deepEqual(accounting.per_message.slice(1, -1), [100, 100, 100, 100])
  assert.equal(accounting.per_message.reduce((a, b) => a + b, 0) + accounting.reply_priming, accounting.total)
})

test('context: trimming keeps the newest messages that fit', () => {
  const { messages, accounting } = buildContext(input(turns(10), 350))
  assert.deepEqual(contents(messages), [SYSTEM, 'message 7', 'message 8', 'message 9', USER])
  assert.equal(accounting.messages_kept, 3)
  assert.equal(accounting.messages_trimmed, 7)
  assert.equal(accounting.history_kept, 300)
  assert.equal(accounting.history_total, 1000)
  assert.ok(accounting.total <= accounting.budget)
})

test('context: trimming stops at the first message that does not fit, leaving no gap', () => {
  const history = turns(4)
  history[1]!.tokens = 1000 // an older small message (0) would fit, but lies beyond it
  const { messages } = buildContext(input(history, 350))
  assert.deepEqual(contents(messages), [SYSTEM, 'message 2', 'message 3', USER])
})

test('context: the last preserve_recent messages are kept even over budget, and it is reported', () => {
  const history = turns(6, 1000)
  const { messages, accounting } = buildContext(input(history, 500, { preserveRecent: 3 }))
  assert.deepEqual(contents(messages), [SYSTEM, 'message 3', 'message 4', 'message 5', USER])
  assert.equal(accounting.messages_preserved, 3)
  assert.equal(accounting.total, FIXED + 3000)
  assert.equal(accounting.over_budget, true)

  // Within budget, older messages still join them while they fit.
  const roomy = buildContext(input(turns(6), 450, { preserveRecent: 2 }))
  assert.deepEqual(contents(roomy.messages).slice(1, -1), [
    'message 2',
    'message 3',
    'message 4',
    'message 5',
  ])
  assert.equal(roomy.accounting.over_budget, false)
})

/** user, assistant asking for two tools, their two results, the answer: 100 tokens each. */
function toolExchange(): HistoryMessage[] {
  const messages: LlmMessage[] = [
    { role: 'user', content: 'weather in Paris and Rome?' },
    {
      role: 'assistant',
      content: '',
      tool_calls: [
        { id: 'call_a', name: 'weather__now', arguments: '{"city":"Paris"}' },
        { id: 'call_b', name: 'weather__now', arguments: '{"city":"Rome"}' },
      ],
    },
    { role: 'tool', tool_call_id: 'call_a', content: 'Paris: 18 °C' },
    { role: 'tool', tool_call_id: 'call_b', content: 'Rome: 24 °C' },
    { role: 'assistant', content: 'Paris 18 °C, Rome 24 °C.' },
  ]
  return messages.map((message) => ({ message, tokens: 100 }))
}

test('context: a tool call and its two results are kept or dropped as one unit', () => {
  const all = buildContext(input(toolExchange(), 400))
  assert.deepEqual(
    all.messages.slice(1, -1).map((m) => m.role),
    ['assistant', 'tool', 'tool', 'assistant'],
    'room for the answer and the whole unit (300)',
  )
  const short = buildContext(input(toolExchange(), 399))
  assert.deepEqual(contents(short.messages), [SYSTEM, 'Paris 18 °C, Rome 24 °C.', USER], 'never part of it')
  assert.equal(short.accounting.messages_trimmed, 4)

  // preserve_recent reaching into the unit keeps all of it, even over budget.
  const history = toolExchange().slice(0, 4)
  const preserved = buildContext(input(history, 0, { preserveRecent: 1 }))
  assert.deepEqual(
    preserved.messages.slice(1, -1).map((m) => m.role),
    ['assistant', 'tool', 'tool'],
  )
  assert.equal(preserved.accounting.messages_preserved, 3)
  assert.equal(preserved.accounting.over_budget, true)
})

test('context: a tool result whose call is not in the history is dropped', () => {
  const [, call, resultA, resultB, answer] = toolExchange()
  const stray: HistoryMessage = {
    message: { role: 'tool', tool_call_id: 'call_zzz', content: 'lost' },
    tokens: 100,
  }
  // Results whose call was trimmed before the history begins; one that answers no call at all,
  // right after a call's own results.
  const history = [resultA!, resultB!, ...turns(1), call!, resultA!, resultB!, stray, answer!]
  const { messages, accounting } = buildContext(input(history, 10_000, { preserveRecent: 8 }))
  assert.deepEqual(contents(messages), [
    SYSTEM,
    'message 0',
    '',
    'Paris: 18 °C',
    'Rome: 24 °C',
    'Paris 18 °C, Rome 24 °C.',
    USER,
  ])
  assert.equal(accounting.orphans_dropped, 3)
  assert.equal(accounting.messages_trimmed, 3)
  assert.equal(accounting.history_total, 800)
  assert.equal(accounting.history_kept, 500)
})

test('context: a new message too large to fit even alone is a 413 that names the numbers', () => {
  const big = 'word '.repeat(3000)
  const userTokens = countMessage({ role: 'user', content: big }, CL100K)
  const budget = 2000
  assert.throws(
    () => buildContext(input([], 0, { user: big, maxTokens: 2500, reserveTokens: 500 })),
    (err: unknown) => {
      assert.ok(err instanceof errors.CONTEXT_TOO_LARGE)
      assert.equal(err.code, 'CONTEXT_TOO_LARGE')
      assert.equal(err.statusCode, 413)
      assert.match(err.message, new RegExp(`\\b${userTokens}\\b.*\\b${budget}\\b`))
      return true
    },
  )
  assert.equal(errors.CONTEXT_TOO_LARGE.seen, 'frame')
  // Exactly at the budget it fits.
  const exact = SYSTEM_TOKENS + REPLY_PRIMING + userTokens
  const fits = buildContext(input([], 0, { user: big, maxTokens: exact + 500, reserveTokens: 500 }))
  assert.equal(fits.accounting.total, fits.accounting.budget)
  assert.throws(() => buildContext(input([], 0, { user: big, maxTokens: exact + 499, reserveTokens: 500 })))
})

test('context: the system prompt and the tool schemas are counted', () => {
  const tool: ToolSpec = {
    name: 'files__read',
    description: 'Read a file',
    input_schema: { type: 'object', properties: { path: { type: 'string' } } },
  }
  const tools = countTools([tool], CL100K)
  const without = buildContext(input(turns(10), 320))
  assert.equal(without.accounting.messages_kept, 3)
  assert.equal(without.accounting.system, SYSTEM_TOKENS)
  assert.equal(without.accounting.tools, 0)
  const withTools = buildContext(input(turns(10), 320, { tools: [tool] }))
  assert.equal(withTools.accounting.tools, tools)
  assert.ok(tools > 20 && tools < 320, `${tools}`)
  const kept = Math.floor((320 - tools) / 100)
  assert.equal(withTools.accounting.messages_kept, kept, 'the schemas take room from the history')
  assert.equal(withTools.accounting.total, FIXED + tools + kept * 100)

  // A longer system prompt leaves less room for history too.
  const longSystem = buildContext(input(turns(10), 320, { system: `${SYSTEM} ${'Be brief. '.repeat(30)}` }))
  assert.ok(longSystem.accounting.messages_kept < 3)
})

test('context: stored counts are used when given, and drive what is kept', () => {
  const history: HistoryMessage[] = [
    { message: { role: 'user', content: 'tiny' }, tokens: 10_000 }, // stored as huge: trimmed
    // Stored as tiny (the least a message can cost): kept.
    { message: { role: 'assistant', content: 'x '.repeat(5000) }, tokens: MESSAGE_OVERHEAD },
  ]
  const { messages, accounting } = buildContext(input(history, 100))
  assert.deepEqual(contents(messages).slice(1, -1), ['x '.repeat(5000)])
  assert.equal(accounting.history_total, 10_000 + MESSAGE_OVERHEAD)
  assert.equal(accounting.history_kept, MESSAGE_OVERHEAD)

  // Without stored counts, both are computed: the long one no longer fits, the short one would
  // but lies beyond it.
  const computed = buildContext(
    input(
      history.map((h) => ({ message: h.message })),
      100,
    ),
  )
  assert.deepEqual(contents(computed.messages), [SYSTEM, USER])
  assert.equal(
    computed.accounting.history_total,
    history.reduce((n, h) => n + countMessage(h.message, CL100K), 0),
  )

  // A stored count for the new message is used too.
  assert.equal(buildContext(input([], 100, { userTokens: 42 })).accounting.user, 42)
})

test('context: a stored count that leaves less than a message costs is not used; the message is counted', () => {
  // A prompt's messages before a user message, the whole stored as one count. Counted with
  // another encoding than the stored one, the leads alone may come to more than that count.
  const leads: LlmMessage[] = [
    { role: 'user', content: 'Grüße aus Köln — naïve café, señor. Привет, мир! こんにちは世界。' },
    { role: 'assistant', content: 'Wave 👋🏽, family 👨‍👩‍👧‍👦, flags 🇫🇷🇯🇵' },
  ]
  const message: LlmMessage = { role: 'user', content: 'And what does it say about the weather?' }
  const leadTokens = leads.reduce((n, m) => n + countMessage(m, CL100K), 0)
  const own = countMessage(message, CL100K)
  const fromO200k = [...leads, message].reduce((n, m) => n + countMessage(m, O200K), 0)
  assert.ok(fromO200k - leadTokens < MESSAGE_OVERHEAD, `${fromO200k} vs ${leadTokens} + ${own}`)

  for (const tokens of [fromO200k, leadTokens - 5, leadTokens, leadTokens + MESSAGE_OVERHEAD - 1, 0, 1]) {
    const { accounting } = buildContext(input([{ message, leads, tokens }], 10_000))
    assert.equal(accounting.history_total, leadTokens + own, `stored ${tokens}`)
    assert.deepEqual(accounting.per_message.slice(1, 4), [
      countMessage(leads[0]!, CL100K),
      countMessage(leads[1]!, CL100K),
      own,
    ])
  }
  // A remainder a message can cost is taken as the message's count, not counted again.
  const stored = leadTokens + MESSAGE_OVERHEAD
  assert.equal(
    buildContext(input([{ message, leads, tokens: stored }], 10_000)).accounting.history_total,
    stored,
  )
  assert.equal(buildContext(input([{ message, tokens: 2 }], 10_000)).accounting.history_total, own)

  // The same for the new message and its leads.
  const fresh = buildContext(input([], 1000, { userLeads: leads, userTokens: leadTokens - 1 }))
  assert.equal(fresh.accounting.user, leadTokens + countMessage({ role: 'user', content: USER }, CL100K))
})

test('checkFixed: the check buildContext makes, on its own, with the same numbers', () => {
  const tool: ToolSpec = { name: 't', description: 'A tool', input_schema: { type: 'object' } }
  const base = { system: SYSTEM, tools: [tool], model: CL100K, reserveTokens: 500 }
  const userTokens = countMessage({ role: 'user', content: USER }, CL100K)
  const fixed = SYSTEM_TOKENS + countTools([tool], CL100K) + REPLY_PRIMING + userTokens
  assert.deepEqual(checkFixed({ ...base, userTokens, maxTokens: fixed + 500 }), {
    budget: fixed,
    system: SYSTEM_TOKENS,
    tools: countTools([tool], CL100K),
    user: userTokens,
    fixed,
  })
  const context = buildContext(input([], 0, { tools: [tool], maxTokens: fixed + 500 }))
  assert.equal(context.accounting.total, fixed)
  assert.throws(() => checkFixed({ ...base, userTokens, maxTokens: fixed + 499 }), errors.CONTEXT_TOO_LARGE)
  assert.throws(
    () => buildContext(input([], 0, { tools: [tool], maxTokens: fixed + 499 })),
    errors.CONTEXT_TOO_LARGE,
  )
})

test('context: every message costs its content plus the per-message overhead', () => {
  const history = toolExchange().map((h) => ({ message: h.message }))
  const bare = history.reduce((n, { message }) => {
    const calls = message.role === 'assistant' ? (message.tool_calls ?? []) : []
    return n + countTokens(message.content, CL100K) +
      calls.reduce((c, t) => c + countTokens(t.name, CL100K) + countTokens(t.arguments, CL100K), 0)
  }, 0) // prettier-ignore
  const { accounting } = buildContext(input(history, 10_000))
  assert.equal(accounting.history_total, bare + history.length * MESSAGE_OVERHEAD)
  assert.equal(
    accounting.total,
    countTokens(SYSTEM, CL100K) + countTokens(USER, CL100K) + bare +
      (history.length + 2) * MESSAGE_OVERHEAD + REPLY_PRIMING,
  ) // prettier-ignore
})
