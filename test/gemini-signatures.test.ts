// Gemini 3 behind its OpenAI-compatible endpoint: the thought signature it puts on a tool call
// goes back with that call in the next request, or Gemini refuses the request (and the turn).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openAiStream, startLlmServer } from './helpers/llm-server.js'
import { Client, demoServer, mcpSettled, onCleanup, startPlatform, terminal } from './helpers/platform.js'
import { openAiRefusals } from './helpers/provider-rules.js'
import { geminiThoughtSignatures } from './helpers/rules-reasoning.js'

const MODEL = 'gemini-3-pro-preview'
const SIGNATURE = 'CvcBAXLI2nz-signature-of-the-first-call'

/** A streamed tool call as Gemini's OpenAI-compatible endpoint sends one: the signature beside it. */
function geminiToolCall(id: string, name: string, args: object): string {
  const chunk = (delta: object, finish: string | null = null) =>
    `data: ${JSON.stringify({ id: 'gem-1', object: 'chat.completion.chunk', created: 1763900000, model: MODEL, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
  return [
    chunk({
      role: 'assistant',
      tool_calls: [
        {
          index: 0,
          id,
          type: 'function',
          function: { name, arguments: JSON.stringify(args) },
          extra_content: { google: { thought_signature: SIGNATURE } },
        },
      ],
    }),
    chunk({}, 'tool_calls'),
    'data: [DONE]\n\n',
  ].join('')
}

test('a Gemini 3 tool turn: the thought signature goes back with its call, in this turn and later ones', async (t) => {
  const llm = await startLlmServer({ refuse: openAiRefusals(geminiThoughtSignatures) })
  onCleanup(t, () => llm.close())
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (config) => {
      config.llm.providers = {
        gemini: {
          type: 'openai',
          base_url: llm.baseUrl,
          api_key: 'env:GEMINI_KEY',
          model: MODEL,
          max_tokens: 1000,
        },
      }
      config.llm.active = 'gemini'
    },
    env: { GEMINI_KEY: 'gemini-key-for-tests' },
    servers: { demo: demoServer() },
  })
  onCleanup(t, () => platform.close())
  await mcpSettled(platform.app)
  const client = await Client.inject(platform.app)
  onCleanup(t, () => Promise.resolve(client.close()))

  // The stand-in refuses a call without its signature: the rule bites.
  llm.reply({ body: geminiToolCall('call_a', 'demo__add', { a: 2, b: 3 }) })
  llm.reply({ body: openAiStream(['Five.'], { model: MODEL }) })
  const frames = await client.chatAndWait('g1', { text: '2 + 3?' })
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(terminal(frames)))
  const second = llm.requests[1]!.body
  const call = second.messages.find((m: any) => m.role === 'assistant').tool_calls[0]
  assert.deepEqual(call.extra_content, { google: { thought_signature: SIGNATURE } })
  assert.equal(second.messages.find((m: any) => m.role === 'tool').content, '5')

  // A later turn reads the call from the store: its signature is still there.
  llm.reply({ body: openAiStream(['You are welcome.'], { model: MODEL }) })
  const conversation = frames[0]!.metadata!.conversation_id as string
  const later = await client.chatAndWait('g2', { text: 'thanks', conversation_id: conversation })
  assert.equal(terminal(later).status, 'complete')
  const stored = llm.requests[2]!.body.messages.find((m: any) => m.role === 'assistant' && m.tool_calls)
  assert.deepEqual(stored.tool_calls[0].extra_content, { google: { thought_signature: SIGNATURE } })

  // get_history shows the call, not the provider's own data on it.
  const history = await client.ask('get_history', { conversation_id: conversation })
  const events = (history.result as { events: any[] }).events
  const toolCall = events.find((e) => e.type === 'tool_call')
  assert.deepEqual(toolCall.tool_calls, [{ id: 'call_a', name: 'demo__add', arguments: '{"a":2,"b":3}' }])

  // The client's tool_call chunk shows the call, not the provider's signature.
  const shown = frames.find((f) => f.status === 'chunk' && f.chunk!.type === 'tool_call')!.chunk!
    .data as object
  assert.deepEqual(Object.keys(shown).sort(), ['arguments', 'id', 'name', 'server'])
})

test('the rule bites: a request whose tool call lacks its signature is refused', () => {
  const body = {
    model: MODEL,
    messages: [
      { role: 'user', content: 'hi' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c', type: 'function', function: { name: 'demo__add', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 'c', content: '5' },
    ],
  }
  assert.match(geminiThoughtSignatures(body) ?? '', /^Function call is missing a thought_signature/)
})
