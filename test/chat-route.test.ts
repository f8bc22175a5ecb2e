// /ws/chat through a real Fastify instance (injectWS) and a real local provider server.
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  defaultReply,
  openAiJson,
  openAiStream,
  startLlmServer,
  type LlmServer,
} from './helpers/llm-server.js'
import { Client, listenOnPort, startPlatform, terminal, textOf, type Platform } from './helpers/platform.js'

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({ baseUrl: llm.baseUrl })
})
after(async () => {
  await platform.close()
  await llm.close()
})
beforeEach(() => {
  llm.requests.length = 0
})

const usage = { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 }

describe('chat', () => {
  test('streams processing, text chunks and one complete frame', async () => {
    llm.reply({
      body: openAiStream(['Hel', 'lo, ', 'wörld ', '😀'], { usage, model: 'test-model-x' }),
      // Pieces that cut characters and SSE frames, each in a tick of its own (deltas that arrive
      // together go out as one chunk).
      chunkSize: 7,
      delayMs: 1,
    })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('r1', { text: 'Say hello' })
    client.close()

    assert.equal(frames[0]!.status, 'processing')
    const conversationId = frames[0]!.metadata!.conversation_id as string
    assert.match(conversationId, /^c-[0-9a-f-]{36}$/)
    assert.equal(textOf(frames), 'Hello, wörld 😀')
    assert.ok(frames.filter((f) => f.status === 'chunk').length >= 2, 'text comes in several chunks')
    assert.deepEqual(
      frames.filter((f) => ['complete', 'error', 'cancelled'].includes(f.status)).map((f) => f.status),
      ['complete'],
    )
    const { metadata } = terminal(frames)
    assert.equal(metadata!.conversation_id, conversationId)
    assert.deepEqual(metadata!.usage, usage)
    assert.equal(metadata!.tokens, 15)
    assert.equal(metadata!.finish_reason, 'stop')
    assert.equal(metadata!.model, 'test-model-x')
    assert.equal(metadata!.tool_hops, 0)
    assert.equal(typeof metadata!.duration_ms, 'number')

    const sent = llm.requests[0]!.body
    assert.equal(sent.stream, true)
    assert.equal(sent.model, 'test-model')
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'You are a test assistant.' },
      { role: 'user', content: 'Say hello' },
    ])
  })

  test('non-streaming: the whole answer as one text chunk', async () => {
    llm.reply({ json: openAiJson('All at once.', { usage }) })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('r-ns', { text: 'hi', streaming: false })
    client.close()
    assert.deepEqual(
      frames.filter((f) => f.status === 'chunk').map((f) => f.chunk),
      [{ type: 'text', data: 'All at once.' }],
    )
    assert.equal(terminal(frames).status, 'complete')
    assert.equal(llm.requests[0]!.body.stream, false)
  })

  test('a conversation continues: its history goes to the LLM, and the model override too', async () => {
    const client = await Client.inject(platform.app)
    llm.reply({ body: openAiStream(['First answer.'], { usage }) })
    const first = await client.chatAndWait('c1', { text: 'First question' })
    const conversationId = first[0]!.metadata!.conversation_id
    llm.reply({ body: openAiStream(['Second answer.'], { usage }) })
    const second = await client.chatAndWait('c2', {
      text: 'Second question',
      conversation_id: conversationId,
      model: 'other-model',
    })
    client.close()

    assert.equal(terminal(second).status, 'complete')
    assert.equal(terminal(second).metadata!.conversation_id, conversationId)
    const sent = llm.requests[1]!.body
    assert.equal(sent.model, 'other-model')
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'You are a test assistant.' },
      { role: 'user', content: 'First question' },
      { role: 'assistant', content: 'First answer.' },
      { role: 'user', content: 'Second question' },
    ])
  })

  test('a finished request_id sent again is replayed, not re-run; a failed one runs again', async () => {
    const client = await Client.inject(platform.app)
    llm.reply({ body: openAiStream(['Stored ', 'answer.'], { usage }) })
    const first = await client.chatAndWait('once', { text: 'Only once' })
    const conversationId = first[0]!.metadata!.conversation_id
    const replay = await client.chatAndWait('once', { text: 'Only once', conversation_id: conversationId })
    assert.equal(llm.requests.length, 1, 'the LLM was not called again')
    assert.deepEqual(
      replay.filter((f) => f.status === 'chunk').map((f) => f.chunk),
      [{ type: 'text', data: 'Stored answer.' }],
    )
    assert.equal(terminal(replay).metadata!.replayed, true)
    assert.deepEqual(terminal(replay).metadata!.usage, usage)

    llm.reply({ status: 503, json: { error: { message: 'overloaded' } } })
    const failed = await client.chatAndWait('retry-me', { text: 'Try this', conversation_id: conversationId })
    assert.equal(terminal(failed).error!.code, 502)
    llm.reply({ body: openAiStream(['Worked now.']) })
    const retried = await client.chatAndWait('retry-me', {
      text: 'Try this',
      conversation_id: conversationId,
    })
    client.close()
    assert.equal(textOf(retried), 'Worked now.')
    assert.equal(terminal(retried).metadata!.replayed, undefined)
    // The retry's context has the user's text once, not once per attempt.
    const messages = llm.requests.at(-1)!.body.messages as { role: string; content: string }[]
    assert.equal(messages.filter((m) => m.content === 'Try this').length, 1)
  })

  test('an unknown conversation is 404 and the LLM is not called', async () => {
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('u1', { text: 'hi', conversation_id: 'c-does-not-exist' })
    client.close()
    assert.equal(frames.length, 1)
    assert.equal(frames[0]!.error!.code, 404)
    assert.equal(frames[0]!.error!.type, 'CONVERSATION_NOT_FOUND')
    assert.equal(llm.requests.length, 0)
  })

  test('text longer than max_input_chars is 413', async () => {
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('big', { text: 'x'.repeat(1001) })
    client.close()
    assert.equal(frames[0]!.error!.code, 413)
    assert.equal(llm.requests.length, 0)
  })

  test('one turn at a time per conversation (409); the running one completes', async () => {
    const client = await Client.inject(platform.app)
    llm.reply({ body: openAiStream(['Setup.']) })
    const setup = await client.chatAndWait('s0', { text: 'start' })
    const conversationId = setup[0]!.metadata!.conversation_id
    llm.reply({ body: openAiStream(['slow ', 'answer']), chunkSize: 20, delayMs: 40 })
    client.chat('s1', { text: 'slow one', conversation_id: conversationId })
    await client.until((f) => f.some((x) => x.request_id === 's1' && x.status === 'processing'))
    const busy = await client.chatAndWait('s2', { text: 'too soon', conversation_id: conversationId })
    client.chat('s1', { text: 'same id again' })
    const first = await client.until((f) => f.some((x) => x.request_id === 's1' && x.status === 'complete'))
    client.close()

    assert.deepEqual(
      busy.map((f) => [f.status, f.error?.code, f.error?.type]),
      [['error', 409, 'CONVERSATION_BUSY']],
    )
    const s1 = first.filter((f) => f.request_id === 's1')
    assert.deepEqual(
      s1.filter((f) => f.status === 'error').map((f) => f.error!.type),
      ['REQUEST_IN_PROGRESS'],
    )
    assert.equal(s1.filter((f) => f.status === 'complete').length, 1)
    assert.equal(textOf(s1), 'slow answer')
    assert.equal(llm.requests.filter((r) => r.body.messages.at(-1).content === 'same id again').length, 0)
  })

  test('several conversations run concurrently on one connection', async () => {
    llm.setDefault((req) => ({
      body: openAiStream(['answer to ', req.body.messages.at(-1).content]),
      chunkSize: 16,
      delayMs: 30,
    }))
    try {
      const client = await Client.inject(platform.app)
      const ids = ['p1', 'p2', 'p3']
      for (const id of ids) client.chat(id, { text: `question ${id}` })
      const results = await Promise.all(ids.map((id) => client.request(id)))
      client.close()
      for (const [i, frames] of results.entries()) {
        assert.equal(terminal(frames).status, 'complete')
        assert.equal(textOf(frames), `answer to question ${ids[i]}`)
      }
      const conversations = new Set(results.map((f) => f[0]!.metadata!.conversation_id))
      assert.equal(conversations.size, 3)
      // They overlapped: every request reached the provider before the first one finished.
      const firstDone = client.frames.findIndex((f) => f.status === 'complete')
      const processed = client.frames.slice(0, firstDone).filter((f) => f.status === 'processing')
      assert.equal(processed.length, 3)
    } finally {
      llm.setDefault(defaultReply)
    }
  })

  test('a provider error is a 502 with the upstream status and message', async () => {
    llm.reply({ status: 500, json: { error: { message: 'upstream exploded', type: 'server_error' } } })
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('e1', { text: 'hi' })
    client.close()
    const error = terminal(frames).error!
    assert.equal(error.code, 502)
    assert.equal(error.type, 'LLM_UPSTREAM_ERROR')
    assert.equal(error.data!.upstream_status, 500)
    assert.match(error.message, /upstream exploded/)
  })
})

describe('frames', () => {
  test('every invalid field is listed; the request_id is kept when readable', async () => {
    const client = await Client.inject(platform.app)
    client.send({
      action: 'chat',
      request_id: 'v1',
      payload: { text: 5, extra: true, streaming: 'yes' },
      foo: 1,
    })
    const frames = await client.request('v1')
    client.close()
    const error = terminal(frames).error!
    assert.equal(error.code, 400)
    assert.equal(error.message, 'Parameter validation failed')
    const byField = Object.fromEntries(
      (error.data!.validation_errors as { field: string; type: string }[]).map((e) => [e.field, e.type]),
    )
    assert.deepEqual(byField, {
      foo: 'unknown_field',
      'payload.text': 'type_error',
      'payload.extra': 'unknown_field',
      'payload.streaming': 'type_error',
    })
  })

  test('missing fields, a bad request_id, an unknown action', async () => {
    const client = await Client.inject(platform.app)
    client.send({ action: 'chat', request_id: 'bad id!', payload: {} })
    client.send({ action: 'fly', request_id: 'a1', payload: {} })
    client.send({ request_id: 'a2' })
    const nulls = await client.request(null)
    const fly = await client.request('a1')
    const missing = await client.request('a2')
    client.close()
    const fields = (f: typeof nulls) =>
      (f[0]!.error!.data!.validation_errors as { field: string; type: string }[]).map(
        (e) => `${e.field}:${e.type}`,
      )
    assert.deepEqual(fields(nulls).sort(), ['payload.text:missing', 'request_id:pattern_mismatch'])
    assert.deepEqual(fields(fly), ['action:invalid_value'])
    assert.deepEqual(fields(missing).sort(), ['action:missing', 'payload:missing'])
  })

  test('a bad resources item is reported at its own fields, as the form it was meant to be', async () => {
    const client = await Client.inject(platform.app)
    const issuesOf = async (requestId: string, resources: unknown[]) => {
      client.chat(requestId, { text: 'hi', resources })
      const error = terminal(await client.request(requestId)).error!
      assert.equal(error.type, 'VALIDATION_FAILED')
      return error.data!.validation_errors as { field: string; message: string; type: string }[]
    }
    const cases = [
      await issuesOf('res1', [{ uri: 'demo://readme', extra: 1 }]),
      await issuesOf('res2', [{ server: 'demo' }]),
      await issuesOf('res3', ['']),
      await issuesOf('res4', [123]),
      await issuesOf('res5', ['demo://readme', { server: 'demo', uri: 'x'.repeat(2049) }, null, [], true]),
    ]
    client.close()
    const fields = (issues: (typeof cases)[number]) => issues.map((i) => `${i.field}:${i.type}`)
    assert.deepEqual(fields(cases[0]!), [
      'payload.resources.0.server:missing',
      'payload.resources.0.extra:unknown_field',
    ])
    assert.deepEqual(fields(cases[1]!), ['payload.resources.0.uri:missing'])
    assert.deepEqual(fields(cases[2]!), ['payload.resources.0:too_short'])
    assert.deepEqual(cases[3], [
      { field: 'payload.resources.0', message: 'Expected a string or {server, uri}', type: 'type_error' },
    ])
    assert.deepEqual(fields(cases[4]!), [
      'payload.resources.1.uri:too_long',
      'payload.resources.2:type_error',
      'payload.resources.3:type_error',
      'payload.resources.4:type_error',
    ])
  })

  test('non-JSON, non-object and binary frames get 400 and the connection stays open', async () => {
    const client = await Client.inject(platform.app)
    client.send('{not json')
    client.send('[1,2]')
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true })
    await client.until((f) => f.length === 3)
    client.send({ action: 'ping', request_id: 'after', payload: {} })
    const pong = await client.request('after')
    client.close()
    for (const frame of client.frames.slice(0, 3)) {
      assert.equal(frame.request_id, null)
      assert.equal(frame.status, 'error')
      assert.equal(frame.error!.code, 400)
      assert.equal(frame.error!.type, 'INVALID_FRAME')
    }
    assert.deepEqual(pong, [{ request_id: 'after', status: 'complete', result: { pong: true } }])
  })

  test('a frame over websocket.max_message_bytes closes the connection with 1009', async () => {
    const client = await Client.inject(platform.app)
    client.chat('huge', { text: 'x'.repeat(5000) })
    assert.equal(await client.closed, 1009)
    // The server is unharmed.
    const other = await Client.inject(platform.app)
    other.send({ action: 'ping', request_id: 'p', payload: {} })
    assert.equal(terminal(await other.request('p')).status, 'complete')
    other.close()
  })
})

describe('cancel', () => {
  test('cancel stops a running turn at once; the provider sees its connection closed', async (t) => {
    const before = llm.closedEarly()
    // The provider pauses 3 s between pieces: a cancel that waited for it would show.
    llm.reply({ body: openAiStream(['one ', 'two ', 'three ', 'four']), chunkSize: 200, delayMs: 3000 })
    const client = await Client.inject(platform.app)
    client.chat('slow', { text: 'count' })
    await client.until((f) => f.some((x) => x.request_id === 'slow' && x.status === 'chunk'), 10_000)
    const chunksBefore = client.frames.filter((f) => f.status === 'chunk').length
    const sent = performance.now()
    client.send({ action: 'cancel', request_id: 'k1', payload: { target_request_id: 'slow' } })
    const cancel = await client.request('k1')
    const turn = await client.request('slow')
    t.diagnostic(`cancelled ${Math.round(performance.now() - sent)} ms after the cancel was sent`)
    assert.equal(
      client.frames.filter((f) => f.status === 'chunk').length,
      chunksBefore,
      'no more of the answer came between the cancel and the end of the turn',
    )
    await llm.waitForClosedEarly(before + 1)
    const unknown = await (async () => {
      client.send({ action: 'cancel', request_id: 'k2', payload: { target_request_id: 'nothing' } })
      return client.request('k2')
    })()
    client.close()
    assert.deepEqual(cancel, [{ request_id: 'k1', status: 'complete', result: { cancelled: true } }])
    assert.equal(terminal(turn).status, 'cancelled')
    const conversationId = turn[0]!.metadata!.conversation_id
    assert.equal(terminal(turn).metadata!.conversation_id, conversationId)
    assert.equal(terminal(unknown).error!.code, 404)
    // What was said so far is kept, marked as interrupted.
    const events = await platform.app.chatStore.history('anonymous', conversationId)
    const last = events!.at(-1)!
    assert.equal(last.type, 'assistant_message')
    assert.equal(last.status, 'interrupted')
    assert.equal(last.content, textOf(turn))
    assert.ok(last.content.length > 0)
  })

  test('closing the socket aborts the turn and the upstream request', async () => {
    const before = llm.closedEarly()
    llm.reply({ body: openAiStream(['a ', 'b ', 'c ', 'd']), chunkSize: 30, delayMs: 100 })
    // A real port: the socket closing must reach the server as it would from a real client.
    const client = await Client.connect((await listenOnPort(platform)).url)
    client.chat('gone', { text: 'count' })
    await client.until((f) => f.some((x) => x.request_id === 'gone' && x.status === 'chunk'))
    client.close()
    await llm.waitForClosedEarly(before + 1)
    assert.ok(llm.closedEarly() > before)
  })
})
