// `npm run demo`: the whole flow with no API key. Starts a local stand-in for the LLM provider,
// starts the platform against it with our demo MCP server, connects a WebSocket client and sends
// four chat turns: one that calls a tool, one that continues the conversation, one not streamed,
// one with an MCP resource attached.
// Every frame is printed as it arrives.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { buildApp } from '../src/app.js'
import { startStandInLlm } from './stand-in-llm.js'

const config = (baseUrl: string) => `
llm:
  active: stand-in
  providers:
    stand-in:
      type: openai
      base_url: ${baseUrl}
      model: stand-in-model
      temperature: 0.7
      max_tokens: 1000
      top_p: 1
  request: { timeout: 10, max_retries: 0, max_response_bytes: 8388608 }
chat:
  service:
    system_prompt: You are a helpful assistant.
    max_input_chars: 10000
    streaming: { enabled: true }
    context: { max_tokens: 4000, reserve_tokens: 500, preserve_recent: 5 }
    max_tool_hops: 8
    tool_timeout: 30
    turn_timeout: 300
store: { type: memory }
websocket:
  { host: 127.0.0.1, port: 0, max_message_bytes: 1048576, max_buffered_bytes: 4194304, max_concurrent_requests: 16 }
mcp:
  connection: { max_reconnect_attempts: 2, connection_timeout: 10, initial_reconnect_delay: 0.5 }
  max_message_bytes: 16777216
logging: { level: warn }
`

type Frame = {
  request_id: string
  status: string
  chunk?: { type: string; data: unknown }
  metadata?: Record<string, unknown>
}

async function chat(ws: WebSocket, requestId: string, payload: Record<string, unknown>): Promise<Frame> {
  console.log(`\n>>> ${JSON.stringify({ action: 'chat', request_id: requestId, payload })}`)
  ws.send(JSON.stringify({ action: 'chat', request_id: requestId, payload }))
  let answer = ''
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const frame = JSON.parse((data as Buffer).toString('utf8')) as Frame
      if (frame.request_id !== requestId) return
      console.log(`<<< ${JSON.stringify(frame)}`)
      if (frame.chunk?.type === 'text') answer += String(frame.chunk.data)
      if (['complete', 'error', 'cancelled'].includes(frame.status)) {
        ws.off('message', onMessage)
        console.log(`\n    answer: ${answer}`)
        resolve(frame)
      }
    }
    ws.on('message', onMessage)
  })
}

/** Waits until /ready says 200: the MCP servers have had their first try to connect. */
async function untilReady(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(url)
    const body = (await res.json()) as { checks?: { mcp?: unknown } }
    if (res.ok) {
      console.log(`ready: ${JSON.stringify(body.checks?.mcp)}`)
      return
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error('the platform did not become ready')
}

async function main(): Promise<void> {
  const llm = await startStandInLlm()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-platform-demo-'))
  await writeFile(join(dir, 'config.yaml'), config(llm.baseUrl))
  // Our demo MCP server (servers/demo.ts), so the LLM has tools to call.
  const demoServer = fileURLToPath(new URL('../servers/demo.js', import.meta.url))
  await writeFile(
    join(dir, 'servers_config.json'),
    JSON.stringify({ mcpServers: { demo: { command: process.execPath, args: [demoServer] } } }),
  )
  const app = await buildApp({ env: {}, cwd: dir })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const url = `ws://127.0.0.1:${port}/ws/chat`
  console.log(`platform listening; stand-in provider at ${llm.baseUrl}\nconnecting to ${url}`)

  await untilReady(`http://127.0.0.1:${port}/ready`)

  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  const first = await chat(ws, 'demo-1', { text: 'What is 2 plus 40?' })
  const conversationId = first.metadata?.conversation_id
  await chat(ws, 'demo-2', { text: 'And what did I ask before?', conversation_id: conversationId })
  await chat(ws, 'demo-3', {
    text: 'Answer in one piece, please.',
    conversation_id: conversationId,
    streaming: false,
  })
  // A resource of the demo server goes with the text; the stand-in echoes what it received.
  await chat(ws, 'demo-4', {
    text: 'What does the attached readme say?',
    conversation_id: conversationId,
    resources: ['demo://readme'],
  })

  ws.close()
  await app.close()
  await llm.close()
  await rm(dir, { recursive: true, force: true })
}

await main()
