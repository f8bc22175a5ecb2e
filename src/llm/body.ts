// Reading an answer's body, shared by both wires: the whole of a non-streaming one, the events of
// a stream, both bounded by `llm.request.max_response_bytes`; what a provider sends after the end
// of its answer, and a web page where an answer should be.
import { createParser } from 'eventsource-parser'
import type { Dispatcher } from 'undici'
import { errors } from '../errors.js'
import { bodyError, single, type Body } from './http.js'

/** How an answer's body is read: `llm.request.timeout` and `llm.request.max_response_bytes`. */
export interface BodyLimits {
  /** The longest silence, in seconds, only to word the timeout error: the pool's timers enforce it. */
  timeoutSeconds: number
  /** The most bytes one answer may have; past them it is cut off (errors.LLM_RESPONSE_TOO_LARGE). */
  maxBytes: number
}

/**
 * The whole body of a non-streaming answer, as text. One larger than `limits.maxBytes` is cut off
 * there: the body is destroyed (closing the connection) and errors.LLM_RESPONSE_TOO_LARGE thrown.
 */
export async function readBody(body: Body, signal: AbortSignal, limits: BodyLimits): Promise<string> {
  const parts: Buffer[] = []
  let size = 0
  try {
    // Leaving the loop early destroys the body.
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limits.maxBytes) throw new errors.LLM_RESPONSE_TOO_LARGE(limits.maxBytes)
      parts.push(chunk)
    }
  } catch (err) {
    throw bodyError(err, signal, limits.timeoutSeconds)
  }
  // As undici's body.text(): a byte order mark is dropped.
  return new TextDecoder('utf-8').decode(Buffer.concat(parts, size))
}

/**
 * The `data` of each server-sent event of a streaming body, as the bytes arrive (a UTF-8
 * character or an event may be cut anywhere between chunks). A last event that lacks its blank
 * line still counts. When the caller stops early, `complete()` says why: the answer is whole (the
 * rest of the body is drained, so the connection goes back to the pool) or something went wrong
 * (the body is destroyed, closing the connection). Every byte counts towards `limits.maxBytes`,
 * comments and keep-alives too: past it the body is destroyed and errors.LLM_RESPONSE_TOO_LARGE
 * thrown.
 */
export async function* sseData(
  body: Body,
  signal: AbortSignal,
  limits: BodyLimits,
  complete: () => boolean,
): AsyncGenerator<string, void, undefined> {
  const pending: string[] = []
  const parser = createParser({ onEvent: (e) => pending.push(e.data) })
  const decoder = new TextDecoder('utf-8')
  const chunks = body.iterator({ destroyOnReturn: false })
  let ended = false
  let size = 0
  let start = ''
  let events = 0
  try {
    while (!ended) {
      let next: IteratorResult<Buffer>
      try {
        next = (await chunks.next()) as IteratorResult<Buffer>
      } catch (err) {
        throw bodyError(err, signal, limits.timeoutSeconds)
      }
      ended = next.done === true
      if (!ended) {
        size += (next.value as Buffer).length
        if (size > limits.maxBytes) throw new errors.LLM_RESPONSE_TOO_LARGE(limits.maxBytes)
      }
      // The parser dispatches an event at a blank line only: one is added at the end.
      const text = ended ? `${decoder.decode()}\n\n` : decoder.decode(next.value as Buffer, { stream: true })
      if (start.length < 64) start += text.slice(0, 64)
      parser.feed(text)
      // A page sent as something else than text/html (refuseWebPage) shows in its first bytes.
      if (events === 0 && pending.length === 0 && WEB_PAGE_START.test(start)) {
        throw new errors.LLM_BAD_RESPONSE('the provider answered with a web page, not a stream of events')
      }
      events += pending.length
      for (const data of pending.splice(0)) yield data
    }
  } finally {
    if (!ended) {
      if (complete()) drainTail(body)
      else body.destroy()
    }
  }
}

/** What is read after the answer's end before the connection is given up instead of kept. */
const TAIL_LIMIT_BYTES = 64 * 1024
const TAIL_LIMIT_MS = 1000

/**
 * The rest of a body after the answer ended (`[DONE]`, `message_stop`): read, so the connection
 * goes back to the pool, but only a little for a little while; a provider that keeps sending
 * after its end (comments, data) has its connection closed instead.
 */
function drainTail(body: Body): void {
  let bytes = 0
  const cut = () => body.destroy()
  const timer = setTimeout(cut, TAIL_LIMIT_MS)
  timer.unref()
  body
    .on('error', noop)
    .on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > TAIL_LIMIT_BYTES) cut()
    })
    .on('close', () => clearTimeout(timer))
    .resume()
}

function noop(): void {}

/**
 * A 2xx web page (a captive portal, a login page, a `base_url` that names a website) is no reply
 * of an LLM API: told as errors.LLM_BAD_RESPONSE at once, its body left unread and the connection
 * closed, rather than read as an event stream that never comes (a broken stream, wrongly).
 */
export function refuseWebPage(res: Dispatcher.ResponseData): void {
  const type = single(res.headers['content-type'])?.split(';')[0]?.trim().toLowerCase()
  if (type !== 'text/html' && type !== 'application/xhtml+xml') return
  res.body.on('error', noop).destroy()
  throw new errors.LLM_BAD_RESPONSE(
    `the provider answered ${res.statusCode} with a web page (${type}): is base_url right?`,
  )
}

/** The first characters of a body that is a web page, whatever its content-type says. */
const WEB_PAGE_START = /^\s*<(!doctype\s+html|html|head|body|\?xml)\b/i
