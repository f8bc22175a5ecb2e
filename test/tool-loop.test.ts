// The tool loop through the whole platform: /ws/chat, a local provider server that asks for tool
// calls, and our demo MCP server over real stdio.
import { after, before, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  defaultReply,
  openAiStream,
  openAiToolCalls,
  startLlmServer,
  type LlmServer,
} from './helpers/llm-server.js'
import {
  Client,
  demoServer,
  mcpSettled,
  startPlatform,
  terminal,
  textOf,
  type Frame,
  type Platform,
} from './helpers/platform.js'

let llm: LlmServer
let platform: Platform

before(async () => {
  llm = await startLlmServer()
  platform = await startPlatform({
    baseUrl: llm.baseUrl,
    servers: {
      demo: demoServer(),
      quick: demoServer({ tool_timeout: 0.3, tools: { allow: ['slow', 'echo'] } }),
    },
  })
  await mcpSettled(platform.app)
})
after(async () => {
  await platform.close()
  await llm.close()
})
beforeEach(() => {
  llm.requests.length = 0
})

const chunks = (frames: Frame[], type: string) =>
  frames.filter((f) => f.status === 'chunk' && f.chunk!.type === type).map((f) => f.chunk!.data)

test('list_tools: every tool as the LLM sees it, allow lists applied', async () => {
  const client = await Client.inject(platform.app)
  client.send({ action: 'list_tools', request_id: 't', payload: {} })
  const [frame] = await client.request('t')
  client.close()
  const tools = frame!.result!.tools as {
    name: string
    server: string
    input_schema: any
    annotations: any
  }[]
  const names = tools.map((t) => t.name).sort()
  assert.deepEqual(names, [
    'demo__add',
    'demo__echo',
    'demo__fail',
    'demo__slow',
    'demo__unlock',
    'quick__echo',
    'quick__slow',
  ])
  const add = tools.find((t) => t.name === 'demo__add')!
  assert.equal(add.server, 'demo')
  assert.deepEqual(add.input_schema.required, ['a', 'b'])
  assert.equal(add.annotations.readOnlyHint, true)
})

test('two tool calls of one reply run concurrently; results go back to the LLM; the answer completes', async () => {
  llm.reply({
    body: openAiToolCalls(
      [
        { id: 'call_add', name: 'demo__add', arguments: { a: 2, b: 40 } },
        { id: 'call_slow', name: 'demo__slow', arguments: { seconds: 0.3, steps: 2 } },
      ],
      { text: 'Let me check. ' },
    ),
  })
  llm.reply({ body: openAiStream(['The sum ', 'is 42.']) })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('tools', { text: 'Add 2 and 40, and wait a bit' })
  client.close()

  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  assert.equal(terminal(frames).metadata!.tool_hops, 1)
  assert.equal(terminal(frames).metadata!.finish_reason, 'stop')
  assert.equal(terminal(frames).metadata!.tokens, 30, 'usage summed over both LLM calls')
  assert.equal(textOf(frames), 'Let me check. The sum is 42.')
  assert.deepEqual(chunks(frames, 'tool_call'), [
    { id: 'call_add', name: 'demo__add', server: 'demo', arguments: { a: 2, b: 40 } },
    { id: 'call_slow', name: 'demo__slow', server: 'demo', arguments: { seconds: 0.3, steps: 2 } },
  ])
  const results = chunks(frames, 'tool_result')
  // The quick one finished first although it was asked second: they ran concurrently.
  assert.deepEqual(
    results.map((r) => r.id),
    ['call_add', 'call_slow'],
  )
  assert.deepEqual(results[0], { id: 'call_add', name: 'demo__add', is_error: false, content: '42' })
  assert.equal(results[1].content, 'done after 0.3 s')
  assert.equal(chunks(frames, 'progress').length, 2, 'progress of the slow tool is forwarded')

  const [first, second] = llm.requests.map((r) => r.body)
  assert.ok(
    first.tools.some((t: any) => t.function.name === 'demo__add' && t.function.parameters.type === 'object'),
  )
  assert.equal(first.tools[0].function.parameters.$schema, undefined)
  assert.deepEqual(second.messages.slice(-3), [
    {
      role: 'assistant',
      content: 'Let me check. ',
      tool_calls: [
        { id: 'call_add', type: 'function', function: { name: 'demo__add', arguments: '{"a":2,"b":40}' } },
        {
          id: 'call_slow',
          type: 'function',
          function: { name: 'demo__slow', arguments: '{"seconds":0.3,"steps":2}' },
        },
      ],
    },
    { role: 'tool', tool_call_id: 'call_add', content: '42' },
    { role: 'tool', tool_call_id: 'call_slow', content: 'done after 0.3 s' },
  ])

  // The calls and results are stored, and the next turn's history carries them.
  const conversationId = frames[0]!.metadata!.conversation_id
  const events = await platform.app.chatStore.history('anonymous', conversationId)
  assert.deepEqual(
    events!.map((e) => e.type),
    ['user_message', 'tool_call', 'tool_result', 'tool_result', 'assistant_message'],
  )
  llm.reply({ body: openAiStream(['ok']) })
  const next = await Client.inject(platform.app)
  await next.chatAndWait('after-tools', { text: 'thanks', conversation_id: conversationId })
  next.close()
  const history = llm.requests.at(-1)!.body.messages
  assert.deepEqual(
    history.map((m: any) => m.role),
    ['system', 'user', 'assistant', 'tool', 'tool', 'assistant', 'user'],
  )
})

test('a failing tool never fails the turn: bad arguments, isError, unknown tool, timeout', async () => {
  llm.reply({
    body: openAiToolCalls([
      { id: 'c1', name: 'demo__add', arguments: { a: 'two' } },
      { id: 'c2', name: 'demo__fail', arguments: { reason: 'on purpose' } },
      { id: 'c3', name: 'nowhere__tool', arguments: {} },
      { id: 'c4', name: 'quick__slow', arguments: { seconds: 5 } },
      { id: 'c5', name: 'demo__echo', arguments: '{"text": ' },
    ]),
  })
  llm.reply({ body: openAiStream(['Some tools failed.']) })
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait('failing', { text: 'try everything' })
  client.close()

  assert.equal(terminal(frames).status, 'complete')
  const results = Object.fromEntries(chunks(frames, 'tool_result').map((r) => [r.id, r]))
  for (const id of ['c1', 'c2', 'c3', 'c4', 'c5']) assert.equal(results[id].is_error, true, id)
  assert.match(results.c1.content, /a/)
  assert.match(results.c1.content, /b/)
  assert.match(results.c2.content, /failed: on purpose/)
  assert.match(results.c3.content, /unknown tool/i)
  assert.match(results.c4.content, /timed out/i)
  assert.match(results.c5.content, /JSON/)
  const toolMessages = llm.requests[1]!.body.messages.filter((m: any) => m.role === 'tool')
  assert.equal(toolMessages.length, 5, 'every failure went back to the LLM as its result')
})

test('after max_tool_hops rounds the turn ends with tool_limit_reached and says so', async () => {
  llm.setDefault(() => ({
    body: openAiToolCalls([{ id: `c_${Date.now()}`, name: 'demo__echo', arguments: { text: 'again' } }]),
  }))
  try {
    const client = await Client.inject(platform.app)
    const frames = await client.chatAndWait('loop', { text: 'loop forever' })
    const done = terminal(frames)
    assert.equal(done.status, 'complete')
    assert.equal(done.metadata!.finish_reason, 'tool_limit_reached')
    assert.equal(done.metadata!.tool_hops, 3)
    assert.equal(llm.requests.length, 4, 'three rounds run, the fourth request for tools refused')
    assert.equal(chunks(frames, 'tool_result').length, 3)
    assert.match(textOf(frames), /limit of 3 rounds of tool calls/)
    // Sent again: replayed as it ended, limit and all.
    const again = terminal(await client.chatAndWait('loop', { text: 'loop forever' }))
    client.close()
    assert.equal(again.metadata!.replayed, true)
    assert.deepEqual([again.metadata!.finish_reason, again.metadata!.tool_hops], ['tool_limit_reached', 3])
    assert.equal(llm.requests.length, 4, 'the replay did not ask the LLM')
  } finally {
    llm.setDefault(defaultReply)
  }
})

test('a server killed during a call: is_error result, the turn completes, the server comes back', async () => {
  const pid = platform.app.mcp.status().find((s) => s.name === 'demo')!.pid!
  llm.reply({ body: openAiToolCalls([{ id: 'k1', name: 'demo__slow', arguments: { seconds: 5 } }]) })
  llm.reply({ body: openAiStream(['The tool died.']) })
  const client = await Client.inject(platform.app)
  client.chat('kill', { text: 'slow please' })
  await client.until((f) => f.some((x) => x.request_id === 'kill' && x.chunk?.type === 'tool_call'))
  process.kill(pid, 'SIGKILL')
  const frames = await client.request('kill')
  assert.equal(terminal(frames).status, 'complete')
  const [result] = chunks(frames, 'tool_result')
  assert.equal(result.is_error, true)

  const deadline = Date.now() + 10_000
  while (platform.app.mcp.status().find((s) => s.name === 'demo')!.state !== 'ready') {
    assert.ok(Date.now() < deadline, 'the server was reconnected')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.notEqual(platform.app.mcp.status().find((s) => s.name === 'demo')!.pid, pid)
  llm.reply({ body: openAiToolCalls([{ id: 'k2', name: 'demo__add', arguments: { a: 1, b: 1 } }]) })
  llm.reply({ body: openAiStream(['2']) })
  const again = await client.chatAndWait('after-kill', { text: 'add' })
  client.close()
  assert.deepEqual(chunks(again, 'tool_result')[0], {
    id: 'k2',
    name: 'demo__add',
    is_error: false,
    content: '2',
  })
})

test('/ready reports each MCP server', async () => {
  const res = await platform.app.inject('/ready')
  assert.equal(res.statusCode, 200)
  const { mcp } = res.json().checks
  assert.equal(mcp.ready, true)
  const demo = mcp.servers.find((s: any) => s.name === 'demo')
  assert.equal(demo.state, 'ready')
  assert.equal(demo.tools, 5)
  assert.equal(mcp.servers.find((s: any) => s.name === 'quick').tools, 2)
})

test('parallel results are stored as they finish and read back in the order of the calls', async () => {
  const client = await Client.inject(platform.app)
  llm.reply({
    body: openAiToolCalls([
      { id: 'call_slow', name: 'demo__slow', arguments: { seconds: 0.2, steps: 1 } },
      { id: 'call_quick', name: 'demo__echo', arguments: { text: 'quick' } },
    ]),
  })
  llm.reply({ body: openAiStream(['Both done.']) })
  const frames = await client.chatAndWait('parallel-1', { text: 'Run both' })
  const conversationId = frames[0]!.metadata!.conversation_id
  // The quick one finished, and was stored, first.
  assert.deepEqual(
    chunks(frames, 'tool_result').map((r: any) => r.id),
    ['call_quick', 'call_slow'],
  )
  const order = (body: any) =>
    body.messages.filter((m: any) => m.role === 'tool').map((m: any) => m.tool_call_id)
  assert.deepEqual(order(llm.requests[1]!.body), ['call_slow', 'call_quick'])

  llm.reply({ body: openAiStream(['You are welcome.']) })
  await client.chatAndWait('parallel-2', { text: 'thanks', conversation_id: conversationId })
  client.close()
  assert.deepEqual(
    order(llm.requests[2]!.body),
    ['call_slow', 'call_quick'],
    'history in the order of the calls',
  )
})
