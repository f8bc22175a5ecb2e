// The context a turn sends fits context.max_tokens - reserve_tokens: through the platform, seen
// in what the provider receives; DEBUG_TOKENS=1 logs the accounting; a message too large is 413.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openAiStream, startLlmServer } from './helpers/llm-server.js'
import { Client, startPlatform, terminal } from './helpers/platform.js'

test('old history is trimmed to the budget, newest kept; DEBUG_TOKENS logs the accounting; too large is 413', async () => {
  const llm = await startLlmServer()
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    env: { DEBUG_TOKENS: '1' },
    patch: (c) => {
      c.chat.service.max_input_chars = 5000
      c.chat.service.context = { max_tokens: 180, reserve_tokens: 60, preserve_recent: 2 }
    },
  })
  try {
    const client = await Client.inject(platform.app)
    let conversationId: string | undefined
    // Each turn adds about 2 × 25 tokens of history: by the fifth the oldest must go.
    for (let n = 1; n <= 5; n++) {
      llm.reply({ body: openAiStream([`Answer number ${n}, `, 'which is a few words long to take room.']) })
      const frames = await client.chatAndWait(`t${n}`, {
        text: `Question number ${n}, with some words to take room in the context.`,
        ...(conversationId ? { conversation_id: conversationId } : {}),
      })
      assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
      conversationId = frames[0]!.metadata!.conversation_id
    }
    const last = llm.requests.at(-1)!.body.messages as { role: string; content: string }[]
    assert.equal(last[0]!.role, 'system')
    assert.match(last.at(-1)!.content, /Question number 5/)
    assert.match(last.at(-2)!.content, /Answer number 4/, 'the newest history is kept')
    assert.ok(!last.some((m) => /number 1\b/.test(m.content)), 'the oldest turn is trimmed')

    const accounting = platform.logs
      .lines()
      .filter((l) => l.msg === 'token accounting')
      .map((l) => l.tokens)
    assert.equal(accounting.length, 5)
    const fifth = accounting.at(-1)
    assert.equal(fifth.budget, 120)
    assert.ok(fifth.messages_trimmed > 0)
    assert.ok(fifth.total <= fifth.budget)
    assert.equal(fifth.per_message.length, last.length)

    const huge = await client.chatAndWait('huge', {
      text: 'word '.repeat(700),
      conversation_id: conversationId,
    })
    const error = terminal(huge).error!
    assert.equal(error.code, 413)
    assert.equal(error.type, 'CONTEXT_TOO_LARGE')
    assert.equal(llm.requests.length, 5, 'nothing was sent to the LLM')
    client.close()
  } finally {
    await platform.close()
    await llm.close()
  }
})
