// A real HTTP server standing in for an OpenAI-compatible provider: tests queue the replies it
// sends, byte for byte and piece by piece, and read back the requests it received.
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export interface LlmReply {
  /** Default 200. */
  status?: number
  /** Default content-type text/event-stream (application/json when `json` is given). */
  headers?: Record<string, string>
  /** Raw body, sent as is. */
  body?: string | Buffer
  /** Sent as JSON (non-streaming replies, error bodies). */
  json?: unknown
  /** Split the body into pieces of this many bytes (may cut UTF-8 characters and SSE frames). */
  chunkSize?: number
  /** Pause between pieces (and before the first). */
  delayMs?: number
  /** After sending the body, keep the response open forever (never end). */
  hang?: boolean
  /**
   * After sending the body, send `piece` again and again, every `everyMs` (default: as fast as
   * the client reads), until the client goes: keep-alive comments, or an answer without end.
   */
  forever?: { piece: string; everyMs?: number }
  /**
   * Cut the connection instead of answering: `before-status` once the request has arrived,
   * `after-body` once the body's pieces are sent (in place of ending the response).
   */
  destroy?: 'before-status' | 'after-body'
}

export interface RecordedRequest {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>

  body: any
  /** The body as it came, before parsing: what a test asserts is never sent at all. */
  raw: string
  /** Date.now() when the request's headers arrived. */
  receivedAt: number
}

type Replier = LlmReply | ((req: RecordedRequest) => LlmReply)

export interface LlmServer {
  /** e.g. http://127.0.0.1:PORT/v1 */
  baseUrl: string
  /** Every request received, body parsed as JSON. */
  requests: RecordedRequest[]
  /** Queue a reply (FIFO); when the queue is empty, the default replier answers. */
  reply(r: Replier): void
  setDefault(r: Replier): void
  /** How many responses were closed by the client before the server finished them. */
  closedEarly(): number
  /** The most requests this server has had open at once (received, not yet answered in full). */
  mostAtOnce(): number
  /** Resolves once closedEarly() >= n (default 1); rejects after 5 s so a test cannot hang. */
  waitForClosedEarly(n?: number): Promise<void>
  /** Closes the server and destroys all its sockets. */
  close(): Promise<void>
}

const DEFAULT_TEXT = 'Hello from the stand-in.'
const DEFAULT_USAGE = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }

/** The default replier: a valid streaming or non-streaming answer, for tests that don't care. */
export function defaultReply(req: RecordedRequest): LlmReply {
  const model = typeof req.body?.model === 'string' ? (req.body.model as string) : undefined
  const opts = { usage: DEFAULT_USAGE, ...(model ? { model } : {}) }
  if (req.body?.stream === true) return { body: openAiStream(DEFAULT_TEXT.split(/(?= )/), opts) }
  return { json: openAiJson(DEFAULT_TEXT, opts) }
}

export interface LlmServerOptions {
  /** Default: any free one; a test may bring a provider back where it was refused. */
  port?: number
  /**
   * What the real API refuses (provider-rules.ts): a request it would refuse gets that API's error
   * reply instead of the queued one, which stays queued.
   */
  refuse?: (req: RecordedRequest) => LlmReply | undefined
}

export async function startLlmServer(options: LlmServerOptions = {}): Promise<LlmServer> {
  const queue: Replier[] = []
  let fallback: Replier = defaultReply
  const requests: RecordedRequest[] = []
  const sockets = new Set<Socket>()
  let closedEarly = 0
  let open = 0
  let mostAtOnce = 0
  const waiters = new Set<() => void>()

  const server = createServer((req, res) => {
    const receivedAt = Date.now()
    open++
    mostAtOnce = Math.max(mostAtOnce, open)
    res.once('close', () => open--)
    void (async () => {
      const recorded = await record(req, receivedAt)
      requests.push(recorded)
      const refusal = options.refuse?.(recorded)
      const next = refusal ?? queue.shift() ?? fallback
      const r = typeof next === 'function' ? next(recorded) : next
      if (r.destroy === 'before-status') {
        req.socket.destroy()
        return
      }
      const payload = Buffer.from(r.json !== undefined ? JSON.stringify(r.json) : (r.body ?? ''))
      res.on('close', () => {
        if (res.writableFinished || r.destroy === 'after-body') return
        closedEarly++
        for (const w of waiters) w()
      })
      const headers = {
        'content-type': r.json !== undefined ? 'application/json' : 'text/event-stream',
        ...r.headers,
      }
      res.writeHead(r.status ?? 200, headers)
      const size = Math.max(1, r.chunkSize ?? payload.length)
      const pieces = [payload.subarray(0, size)]
      for (let at = size; at < payload.length; at += size) pieces.push(payload.subarray(at, at + size))
      for (const piece of pieces) {
        if (r.delayMs !== undefined) await sleep(r.delayMs)
        if (res.destroyed) return
        res.write(piece)
      }
      while (r.forever && !res.destroyed) {
        await sleep(r.forever.everyMs ?? 0)
        if (res.destroyed) return
        // Backpressure: wait for the client to read (or to go) before writing more.
        if (!res.write(r.forever.piece)) {
          await new Promise<void>((resolve) => {
            const go = (): void => {
              res.off('drain', go).off('close', go)
              resolve()
            }
            res.on('drain', go).on('close', go)
          })
        }
      }
      if (r.forever) return
      if (r.destroy === 'after-body') {
        // Let what was written reach the client first, so the cut comes after it.
        await new Promise<void>((resolve) => res.write('', () => resolve()))
        res.destroy()
      } else if (!r.hang) res.end()
    })().catch((err: unknown) => res.destroy(err as Error))
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    reply: (r) => void queue.push(r),
    setDefault: (r) => void (fallback = r),
    closedEarly: () => closedEarly,
    mostAtOnce: () => mostAtOnce,
    waitForClosedEarly(n = 1) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (closedEarly < n) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`expected ${n} responses closed early, saw ${closedEarly}`))
        }, 5000)
        waiters.add(check)
        check()
      })
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}

async function record(req: IncomingMessage, receivedAt: number): Promise<RecordedRequest> {
  const parts: Buffer[] = []
  for await (const part of req) parts.push(part as Buffer)
  const text = Buffer.concat(parts).toString('utf8')
  let body: unknown = text || undefined
  try {
    body = JSON.parse(text)
  } catch {
    // Not JSON: keep the raw text so a test can still look at it.
  }
  return { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, raw: text, receivedAt }
}

/** Reads a provider stream of test/fixtures/llm (copies of the team's shared/fixtures/llm). */
export function fixture(name: string): string {
  const root = new URL('../../../', import.meta.url)
  return readFileSync(new URL(`test/fixtures/llm/${name}`, root), 'utf8')
}

interface ReplyOptions {
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number }
  model?: string
  finish?: string
}

/**
 * An OpenAI SSE body: a role delta, `parts` as content deltas, the finish (default `stop`), a usage
 * chunk (default 10 + 5 = 15 tokens), then [DONE].
 */
export function openAiStream(parts: string[], opts: ReplyOptions = {}): string {
  const model = opts.model ?? 'gpt-4o-mini'
  const chunk = (choices: unknown[], extra: object = {}): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-stand-in', object: 'chat.completion.chunk', created: 1763900000, model, choices, ...extra })}\n\n`
  const delta = (d: object, finish: string | null = null): string =>
    chunk([{ index: 0, delta: d, finish_reason: finish }])
  return [
    delta({ role: 'assistant', content: '' }),
    ...parts.map((content) => delta({ content })),
    delta({}, opts.finish ?? 'stop'),
    chunk([], { usage: opts.usage ?? DEFAULT_USAGE }),
    'data: [DONE]\n\n',
  ].join('')
}

/** An OpenAI SSE body of a reply that asks for tool calls (arguments in two fragments each). */
export function openAiToolCalls(
  calls: { id: string; name: string; arguments: unknown }[],
  opts: ReplyOptions & { text?: string } = {},
): string {
  const model = opts.model ?? 'gpt-4o-mini'
  const delta = (d: object, finish: string | null = null): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-tools', object: 'chat.completion.chunk', created: 1763900000, model, choices: [{ index: 0, delta: d, finish_reason: finish }] })}\n\n`
  const pieces = [delta({ role: 'assistant', content: opts.text ?? null })]
  calls.forEach((call, index) => {
    const args = typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments)
    const cut = Math.floor(args.length / 2)
    pieces.push(
      delta({
        tool_calls: [
          {
            index,
            id: call.id,
            type: 'function',
            function: { name: call.name, arguments: args.slice(0, cut) },
          },
        ],
      }),
      delta({ tool_calls: [{ index, function: { arguments: args.slice(cut) } }] }),
    )
  })
  pieces.push(delta({}, 'tool_calls'))
  pieces.push(
    `data: ${JSON.stringify({ id: 'chatcmpl-tools', object: 'chat.completion.chunk', created: 1763900000, model, choices: [], usage: opts.usage ?? DEFAULT_USAGE })}\n\n`,
  )
  pieces.push('data: [DONE]\n\n')
  return pieces.join('')
}

/** A non-streaming `chat.completion` reply with `text` as its content. */
export function openAiJson(text: string, opts: ReplyOptions = {}): object {
  return {
    id: 'chatcmpl-stand-in',
    object: 'chat.completion',
    created: 1763900000,
    model: opts.model ?? 'gpt-4o-mini',
    choices: [
      { index: 0, message: { role: 'assistant', content: text }, finish_reason: opts.finish ?? 'stop' },
    ],
    usage: opts.usage ?? DEFAULT_USAGE,
  }
}

interface AnthropicReplyOptions {
  /** Default 10 in, 5 out; `input_tokens` goes in message_start, `output_tokens` in message_delta. */
  usage?: { input_tokens: number; output_tokens: number }
  model?: string
  /** Default `end_turn` (`tool_use` for anthropicToolUse). */
  stop_reason?: string
}

const ANTHROPIC_USAGE = { input_tokens: 10, output_tokens: 5 }

/** One `event:`/`data:` frame of the messages API's stream; the event name repeats `type`. */
function anthropicEvent(data: { type: string } & Record<string, unknown>): string {
  return `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`
}

function anthropicMessageEvents(
  blocks: ({ text: string[] } | { id: string; name: string; input: unknown })[],
  opts: AnthropicReplyOptions,
  stopReason: string,
): string {
  const usage = opts.usage ?? ANTHROPIC_USAGE
  const frames = [
    anthropicEvent({
      type: 'message_start',
      message: {
        id: 'msg_stand_in',
        type: 'message',
        role: 'assistant',
        model: opts.model ?? 'claude-stand-in',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
      },
    }),
    anthropicEvent({ type: 'ping' }),
  ]
  blocks.forEach((block, index) => {
    if ('text' in block) {
      frames.push(
        anthropicEvent({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } }),
      )
      for (const text of block.text) {
        frames.push(
          anthropicEvent({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } }),
        )
      }
    } else {
      const json = typeof block.input === 'string' ? block.input : JSON.stringify(block.input)
      const cut = Math.floor(json.length / 2)
      frames.push(
        anthropicEvent({
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
        }),
      )
      for (const partial_json of [json.slice(0, cut), json.slice(cut)]) {
        frames.push(
          anthropicEvent({
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json },
          }),
        )
      }
    }
    frames.push(anthropicEvent({ type: 'content_block_stop', index }))
  })
  frames.push(
    anthropicEvent({
      type: 'message_delta',
      delta: { stop_reason: opts.stop_reason ?? stopReason, stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    }),
    anthropicEvent({ type: 'message_stop' }),
  )
  return frames.join('')
}

/** An Anthropic messages-API SSE body: one text block with `parts` as its deltas. */
export function anthropicStream(parts: string[], opts: AnthropicReplyOptions = {}): string {
  return anthropicMessageEvents([{ text: parts }], opts, 'end_turn')
}

/**
 * An Anthropic SSE body of a reply that asks for tool calls: an optional text block, then one
 * `tool_use` block per call, its input JSON in two `input_json_delta` fragments.
 */
export function anthropicToolUse(
  calls: { id: string; name: string; input: unknown }[],
  opts: AnthropicReplyOptions & { text?: string } = {},
): string {
  return anthropicMessageEvents([...(opts.text ? [{ text: [opts.text] }] : []), ...calls], opts, 'tool_use')
}

/** A non-streaming Anthropic message with `text` as its one text block (and any tool_use blocks). */
export function anthropicJson(
  text: string,
  opts: AnthropicReplyOptions & { calls?: { id: string; name: string; input: unknown }[] } = {},
): object {
  const calls = opts.calls ?? []
  return {
    id: 'msg_stand_in',
    type: 'message',
    role: 'assistant',
    model: opts.model ?? 'claude-stand-in',
    content: [
      ...(text ? [{ type: 'text', text }] : []),
      ...calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: c.input })),
    ],
    stop_reason: opts.stop_reason ?? (calls.length ? 'tool_use' : 'end_turn'),
    stop_sequence: null,
    usage: opts.usage ?? ANTHROPIC_USAGE,
  }
}

/** The default replier for an Anthropic provider (pass to setDefault): the stand-in text, streamed or not. */
export function anthropicDefaultReply(req: RecordedRequest): LlmReply {
  const model = typeof req.body?.model === 'string' ? (req.body.model as string) : undefined
  const opts = model ? { model } : {}
  if (req.body?.stream === true) return { body: anthropicStream(DEFAULT_TEXT.split(/(?= )/), opts) }
  return { json: anthropicJson(DEFAULT_TEXT, opts) }
}
