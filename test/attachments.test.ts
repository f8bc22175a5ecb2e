// What a chat turn must settle before it is stored, through the whole platform with the demo MCP
// server: a finished request is replayed without fetching its prompt and resources again (even
// with their server gone); a message that cannot fit the context is refused before it is stored;
// a missing prompt argument is named as the chat frame has it.
import { after, before, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { MemoryStore } from '../src/store/memory.js'
import type { RequestPeek } from '../src/store/types.js'
import { openAiStream, startLlmServer, type LlmServer } from './helpers/llm-server.js'
import {
  Client,
  demoServer,
  mcpSettled,
  startPlatform,
  terminal,
  textOf,
  type Platform,
  assertError,
  resultOf,
  withClient,
} from './helpers/platform.js'

/** A memory store whose peekRequest can be made to answer `running`, as a stale read would. */
class StaleStore extends MemoryStore {
  stale = false
  override peekRequest(principal: string, requestId: string): Promise<RequestPeek> {
    return this.stale ? Promise.resolve({ state: 'running' }) : super.peekRequest(principal, requestId)
  }
}

/** The demo server's readme (servers/demo.ts). */
const README = '# demo\nAn example MCP server of mcp-platform.'

let llm: LlmServer
let store: StaleStore
let platform: Platform
/** Prompts got and resources read through the platform's MCP registry. */
const fetched = { prompts: 0, resources: 0 }

before(async () => {
  llm = await startLlmServer()
  store = new StaleStore()
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    store,
    servers: { demo: demoServer() },
    patch: (c) => {
      c.chat.service.max_input_chars = 20_000
      c.websocket.max_message_bytes = 65_536
    },
  })
  await mcpSettled(platform.app)
  assert.deepEqual(
    platform.app.mcp.status().map((s) => s.state),
    ['ready'],
  )
  countFetches(platform.app)
})
after(async () => {
  await platform?.close()
  await llm?.close()
})
beforeEach(() => {
  llm.requests.length = 0
  fetched.prompts = 0
  fetched.resources = 0
  store.stale = false
})

function countFetches(app: FastifyInstance): void {
  const mcp = app.mcp
  const getPrompt = mcp.getPrompt.bind(mcp)
  const readResource = mcp.readResource.bind(mcp)
  mcp.getPrompt = (...args) => {
    fetched.prompts++
    return getPrompt(...args)
  }
  mcp.readResource = (...args) => {
    fetched.resources++
    return readResource(...args)
  }
}

async function historyOf(client: Client, conversationId: string): Promise<any[]> {
  return resultOf(await client.ask('get_history', { conversation_id: conversationId })).events as any[]
}

const ATTACHED = {
  text: 'What do these say?',
  prompt: { server: 'demo', name: 'greeting', arguments: { name: 'Ada' } },
  resources: ['demo://readme', { server: 'demo', uri: 'demo://notes/7' }],
}

test('a finished chat with a prompt and resources is replayed without fetching them, even with their server gone', async (t) => {
  const conversationId = await withClient(platform.app, async (c) => {
    llm.reply({ body: openAiStream(['Hello Ada, ', 'the readme and note 7.']) })
    const metadata = resultOf(await c.ask('chat', ATTACHED, 'attached-1'))
    assert.deepEqual(fetched, { prompts: 1, resources: 2 })
    assert.ok(JSON.stringify(llm.requests[0]!.body.messages).includes('Please greet Ada warmly.'))

    // Sent again while the server is up: replayed, nothing fetched or sent to the LLM.
    const again = await c.act('chat', ATTACHED, 'attached-1')
    assert.equal(terminal(again).metadata!.replayed, true, JSON.stringify(terminal(again)))
    assert.equal(textOf(again), 'Hello Ada, the readme and note 7.')
    assert.deepEqual(fetched, { prompts: 1, resources: 2 }, 'nothing fetched again')
    assert.equal(llm.requests.length, 1)
    return metadata.conversation_id as string
  })

  // Another platform over the same store, whose `demo` server cannot start.
  const other = await startPlatform({
    baseUrl: llm.baseUrl,
    store,
    servers: { demo: { command: process.execPath, args: ['-e', 'process.exit(3)'] } },
  })
  t.after(() => other.close())
  await mcpSettled(other.app)
  assert.deepEqual(
    other.app.mcp.status().map((s) => s.state),
    ['failed'],
  )
  await withClient(other.app, async (c) => {
    const replay = await c.act('chat', ATTACHED, 'attached-1')
    const done = terminal(replay)
    assert.equal(done.status, 'complete', JSON.stringify(done))
    assert.equal(done.metadata!.replayed, true)
    assert.equal(done.metadata!.conversation_id, conversationId)
    assert.equal(textOf(replay), 'Hello Ada, the readme and note 7.')
    // A new request needing the server fails: it is down indeed.
    const fresh = await c.ask('chat', ATTACHED, 'attached-2')
    assert.equal(fresh.status, 'error')
    assert.equal(fresh.error!.code, 503, JSON.stringify(fresh.error))
    assert.equal(llm.requests.length, 1, 'the LLM was never asked again')
  })
})

test('a finished chat with attachments is replayed even while another turn runs in its conversation', async () => {
  await withClient(platform.app, async (c) => {
    const payload = { text: 'Read this.', resources: ['demo://readme'] }
    llm.reply({ body: openAiStream(['Read.']) })
    const first = resultOf(await c.ask('chat', payload, 'busy-att-1'))
    const conversation_id = first.conversation_id as string
    // A slow turn holds the conversation.
    llm.reply({ body: openAiStream(['slow ', 'answer']), chunkSize: 200, delayMs: 300 })
    c.chat('busy-slow', { text: 'Take your time.', conversation_id })
    await c.until((f) => f.some((x) => x.request_id === 'busy-slow' && x.status === 'processing'))
    const again = resultOf(await c.ask('chat', { ...payload, conversation_id }, 'busy-att-1'))
    assert.equal(again.replayed, true)
    assert.equal(terminal(await c.request('busy-slow')).status, 'complete')
  })
})

test('a request the peek finds running is a 409 before anything is fetched; sent again later, it runs with them', async () => {
  await withClient(platform.app, async (c) => {
    const payload = { text: 'Read this.', resources: ['demo://readme'] }
    store.stale = true
    assertError(await c.ask('chat', payload, 'stale-1'), 409, 'REQUEST_IN_PROGRESS')
    assert.equal(llm.requests.length, 0, 'nothing was sent to the LLM')
    assert.equal(fetched.resources, 0, 'nothing was fetched')

    store.stale = false
    llm.reply({ body: openAiStream(['It is the demo readme.']) })
    const ran = resultOf(await c.ask('chat', payload, 'stale-1'))
    assert.equal(ran.replayed, undefined)
    assert.equal(fetched.resources, 1)
    const sent = llm.requests[0]!.body.messages as { role: string; content: string }[]
    assert.deepEqual(
      sent.map((m) => m.role),
      ['system', 'user'],
    )
    assert.ok(sent[1]!.content.includes(README), sent[1]!.content)

    const events = await historyOf(c, ran.conversation_id as string)
    assert.deepEqual(
      events.map((e) => [e.type, e.status, e.request_id, e.attachments?.resources?.length]),
      [
        ['user_message', 'complete', 'stale-1', 1],
        ['assistant_message', 'complete', 'stale-1', undefined],
      ],
    )

    // Without attachments nothing is peeked: beginTurn decides, and the turn runs.
    store.stale = true
    llm.reply({ body: openAiStream(['Plain.']) })
    resultOf(await c.ask('chat', { text: 'Plain text.' }, 'stale-2'))
    assert.equal(llm.requests.length, 2)
  })
})

/** A note of the demo server whose URI and text are each about 670 tokens. */
const bigNote = (n: number) => `demo://notes/${n}${'1234567890'.repeat(200)}`

test('a message that cannot fit the context is refused before it is stored; the conversation goes on', async () => {
  await withClient(platform.app, async (c) => {
    llm.reply({ body: openAiStream(['First answer.']) })
    const first = resultOf(await c.ask('chat', { text: 'First question.' }))
    const conversationId = first.conversation_id as string
    const conversations = async () =>
      (resultOf(await c.ask('list_conversations', {})).conversations as unknown[]).length
    const listed = await conversations()

    const big = { text: 'Summarize these.', resources: [1, 2, 3].map(bigNote) }
    const tooLarge = assertError(
      await c.ask('chat', { ...big, conversation_id: conversationId }),
      413,
      'CONTEXT_TOO_LARGE',
    )
    assert.ok(
      (tooLarge.data?.message_tokens as number) > (tooLarge.data?.budget as number),
      JSON.stringify(tooLarge),
    )
    assert.equal(fetched.resources, 3)
    assertError(await c.ask('chat', big), 413, 'CONTEXT_TOO_LARGE')
    // Plain text too: 'word ' is one token.
    const long = { text: 'word '.repeat(3600) }
    assertError(await c.ask('chat', { ...long, conversation_id: conversationId }), 413, 'CONTEXT_TOO_LARGE')
    assertError(await c.ask('chat', long), 413, 'CONTEXT_TOO_LARGE')
    assert.equal(llm.requests.length, 1, 'nothing was sent to the LLM')

    assert.deepEqual(
      (await historyOf(c, conversationId)).map((e) => [e.type, e.content]),
      [
        ['user_message', 'First question.'],
        ['assistant_message', 'First answer.'],
      ],
      'nothing of the refused turns was stored',
    )
    assert.equal(await conversations(), listed, 'no conversation was created')

    llm.reply({ body: openAiStream(['Second answer.']) })
    resultOf(await c.ask('chat', { text: 'Second question.', conversation_id: conversationId }))
    const sent = JSON.stringify(llm.requests[1]!.body.messages)
    assert.ok(sent.includes('First answer.') && sent.includes('Second question.'), sent)
    assert.ok(!sent.includes('1234567890'), 'the refused resources are nowhere')
  })
})

test('a missing prompt argument is named where the chat frame has it', async () => {
  await withClient(platform.app, async (c) => {
    const prompt = { server: 'demo', name: 'greeting', arguments: {} }
    const inChat = assertError(await c.ask('chat', { text: 'Hi', prompt }), 400, 'VALIDATION_FAILED')
    assert.deepEqual(
      (inChat.data?.validation_errors as { field: string }[]).map((e) => e.field),
      ['payload.prompt.arguments.name'],
    )
    const alone = assertError(await c.ask('get_prompt', prompt), 400, 'VALIDATION_FAILED')
    assert.deepEqual(
      (alone.data?.validation_errors as { field: string }[]).map((e) => e.field),
      ['payload.arguments.name'],
    )
    assert.equal(llm.requests.length, 0)
  })
})
