// A local stand-in for an OpenAI-compatible provider, so the demo runs with no API key and no
// network. It speaks the real wire format (server-sent events, usage in a final chunk, [DONE])
// and behaves like a small model that knows one trick: asked about two numbers while a `__add`
// tool is offered, it calls that tool, then answers with what the tool said.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

interface WireMessage {
  role: string
  content?: string | null
}
interface ChatBody {
  model?: string
  stream?: boolean
  messages?: WireMessage[]
  tools?: { function: { name: string } }[]
}

type Reply = { text: string } | { call: { name: string; arguments: string } }

function replyTo(body: ChatBody): Reply {
  const messages = body.messages ?? []
  const last = messages.at(-1)
  if (last?.role === 'tool') {
    return { text: `The tool answered ${String(last.content)}, so that is my answer.` }
  }
  const text = last?.content ?? ''
  const numbers = text.match(/-?\d+(\.\d+)?/g)
  const add = body.tools?.find((t) => t.function.name.endsWith('__add'))
  if (add && numbers && numbers.length >= 2) {
    return {
      call: {
        name: add.function.name,
        arguments: JSON.stringify({ a: Number(numbers[0]), b: Number(numbers[1]) }),
      },
    }
  }
  const turns = messages.filter((m) => m.role === 'user').length
  return {
    text: `You said: "${text}". This is turn ${turns} of our conversation, answered by a local stand-in for the LLM provider.`,
  }
}

export async function startStandInLlm(
  delayMs = 25,
): Promise<{ baseUrl: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (raw += chunk))
    req.on('end', () => void answer(raw, res, delayMs))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

async function answer(raw: string, res: import('node:http').ServerResponse, delayMs: number): Promise<void> {
  const body = JSON.parse(raw || '{}') as ChatBody
  const model = body.model ?? 'stand-in'
  const reply = replyTo(body)
  const completion = 'text' in reply ? reply.text.split(' ').length : 20
  const usage = {
    prompt_tokens: raw.length >> 2,
    completion_tokens: completion,
    total_tokens: (raw.length >> 2) + completion,
  }
  const toolCall =
    'call' in reply ? { id: `call_${Date.now()}`, type: 'function', function: reply.call } : undefined
  const finish = toolCall ? 'tool_calls' : 'stop'

  if (!body.stream) {
    res.setHeader('content-type', 'application/json')
    const message = {
      role: 'assistant',
      content: 'text' in reply ? reply.text : null,
      tool_calls: toolCall && [toolCall],
    }
    res.end(JSON.stringify({ model, choices: [{ index: 0, message, finish_reason: finish }], usage }))
    return
  }
  res.setHeader('content-type', 'text/event-stream')
  const send = (delta: unknown, finish_reason: string | null = null) =>
    res.write(`data: ${JSON.stringify({ model, choices: [{ index: 0, delta, finish_reason }] })}\n\n`)
  if (toolCall) {
    send({ role: 'assistant', tool_calls: [{ index: 0, ...toolCall }] })
  } else {
    for (const word of (reply as { text: string }).text.split(/(?<= )/)) {
      if (res.destroyed) return
      send({ content: word })
      await sleep(delayMs)
    }
  }
  send({}, finish)
  res.write(`data: ${JSON.stringify({ model, choices: [], usage })}\n\n`)
  res.end('data: [DONE]\n\n')
}
