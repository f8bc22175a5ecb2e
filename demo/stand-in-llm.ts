// A local stand-in for an OpenAI-compatible provider, so the demo runs with no API key and no
// network: it answers every chat completion by streaming a short reply, word by word, in the
// real wire format (server-sent events, usage in a final chunk, [DONE]).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

interface ChatBody {
  model?: string
  stream?: boolean
  messages?: { role: string; content?: string }[]
}

function answerTo(body: ChatBody): string {
  const messages = body.messages ?? []
  const last = [...messages].reverse().find((m) => m.role === 'user')?.content ?? ''
  const turns = messages.filter((m) => m.role === 'user').length
  return (
    `You said: "${last}". This is turn ${turns} of our conversation, answered by a local stand-in ` +
    `for the LLM provider and streamed to you word by word.`
  )
}

export async function startStandInLlm(
  delayMs = 25,
): Promise<{ baseUrl: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (raw += chunk))
    req.on('end', () => {
      void (async () => {
        const body = JSON.parse(raw || '{}') as ChatBody
        const model = body.model ?? 'stand-in'
        const text = answerTo(body)
        const usage = {
          prompt_tokens: raw.length >> 2,
          completion_tokens: text.split(' ').length,
          total_tokens: 0,
        }
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        if (!body.stream) {
          res.setHeader('content-type', 'application/json')
          const message = { role: 'assistant', content: text }
          res.end(JSON.stringify({ model, choices: [{ index: 0, message, finish_reason: 'stop' }], usage }))
          return
        }
        res.setHeader('content-type', 'text/event-stream')
        const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`)
        const words = text.split(/(?<= )/)
        for (const word of words) {
          if (res.destroyed) return
          send({ model, choices: [{ index: 0, delta: { content: word }, finish_reason: null }] })
          await sleep(delayMs)
        }
        send({ model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })
        send({ model, choices: [], usage })
        res.end('data: [DONE]\n\n')
      })()
    })
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
