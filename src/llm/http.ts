// The HTTP exchange every wire shares: one POST, retried while no byte of the answer has been
// read, and the mapping of its failures to the platform's errors. A wire builds the request and
// reads the answer; it never retries, since an answer it has started to read may already carry
// tool calls.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Dispatcher, Pool } from 'undici'
import { errors, isPlatformError, withData } from '../errors.js'
import { stripCredentials } from './credentials.js'
import type { Logger } from '../logging.js'
import { abortReason } from '../util/abort.js'
import { refuseWebPage, type BodyLimits } from './body.js'

export type Body = Dispatcher.ResponseData['body']

export interface LlmHttpRequest {
  /** The endpoint's path on the pool's origin, e.g. `/v1/chat/completions`. */
  path: string
  headers: Record<string, string>
  /** A string, so that a retry can send it again. */
  body: string
}

/** Delays between attempts, in milliseconds. */
export interface Backoff {
  /** The first retry waits up to this long; each later one up to twice the one before. */
  baseMs: number
  /** No computed wait is longer than this. */
  capMs: number
  /** The longest `retry-after` worth waiting for; a provider asking for more gets its error passed on. */
  maxRetryAfterMs: number
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 500, capMs: 8000, maxRetryAfterMs: 60_000 }

export interface PostOptions {
  /** Retries after the first attempt (`llm.request.max_retries`). */
  maxRetries: number
  /** `llm.request.timeout`, only to word the timeout error: the pool's own timers enforce it. */
  timeoutSeconds: number
  /** Aborts the attempt in flight and the wait between attempts; they end with `signal.reason`. */
  signal: AbortSignal
  /** Cuts secrets out of the provider's error text before it goes anywhere. */
  redact?: (text: string) => string
  /**
   * The provider's message in an error body, when the wire knows better than the default
   * (`{error: {message}}`, `{error: "…"}`, `{message}`, else the text itself).
   */
  upstreamMessage?: (status: number, bodyText: string) => string | undefined
  /** Told about each retry. */
  log?: Logger
  backoff?: Partial<Backoff>
}

/** Enough of an error body to quote it; the rest is not worth waiting for. */
const ERROR_BODY_LIMIT = 64 * 1024
const UPSTREAM_MESSAGE_LIMIT = 1000
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])
/** Failures before the status line that a second attempt may well not meet. */
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  // undici: the socket closed before the status line arrived.
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
])

/**
 * A pool for one provider's origin. `timeoutSeconds` is the longest wait for the next byte: for
 * the connection, for the status line and between pieces of the body.
 */
export async function createLlmPool(origin: string, timeoutSeconds: number): Promise<Pool> {
  // undici is loaded with the first request, not at start: the MCP servers start sooner.
  const { Pool } = await import('undici')
  const ms = timeoutSeconds * 1000
  return new Pool(origin, { headersTimeout: ms, bodyTimeout: ms, connect: { timeout: ms } })
}

/**
 * POSTs `request` until the provider answers 2xx, and returns that answer with its body unread.
 * 408, 409, 429, 5xx and connection failures are retried up to `maxRetries` times, after
 * `retry-after-ms` / `retry-after` when the provider sends one, else after an exponential backoff
 * with full jitter. Throws errors.LLM_UPSTREAM_ERROR (502) for an error status or a failed connection,
 * errors.LLM_TIMEOUT (504) when no status line came in time, or `signal.reason` once aborted;
 * `error.data.attempts` says how many were made when there was more than one.
 */
export async function postWithRetries(
  pool: Dispatcher,
  request: LlmHttpRequest,
  options: PostOptions,
): Promise<Dispatcher.ResponseData> {
  const { signal, maxRetries } = options
  const backoff = { ...DEFAULT_BACKOFF, ...options.backoff }
  const redact = options.redact ?? ((text: string) => text)
  for (let attempt = 1; ; attempt++) {
    let res: Dispatcher.ResponseData
    try {
      res = await pool.request({ method: 'POST', ...request, signal })
    } catch (err) {
      if (signal.aborted) throw abortReason(signal)
      const code = errorCode(err)
      if (!RETRYABLE_CODES.has(code) || attempt > maxRetries) {
        throw connectionError(code, attempt, options.timeoutSeconds)
      }
      await wait(jittered(backoff, attempt), { cause: code }, attempt, options)
      continue
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return res

    // Read even when retrying: a drained body gives the connection back to the pool.
    const bodyText = await readCapped(res.body, ERROR_BODY_LIMIT)
    if (signal.aborted) throw abortReason(signal)
    const status = res.statusCode
    const asked = retryAfterMs(res.headers)
    const tooLong = asked !== undefined && asked > backoff.maxRetryAfterMs
    if (!isRetryableStatus(status) || attempt > maxRetries || tooLong) {
      const parsed = options.upstreamMessage?.(status, bodyText) ?? upstreamMessage(bodyText)
      const message = quoteUpstream(parsed, redact) || `HTTP ${status}`
      const data: Record<string, unknown> = { upstream_status: status, upstream_message: message }
      if (attempt > 1) data.attempts = attempt
      // The client may wait it out itself: it is told how long the provider asked for, in seconds.
      if (asked !== undefined && isRetryableStatus(status)) data.retry_after = Math.ceil(asked / 1000)
      throw withData(new errors.LLM_UPSTREAM_ERROR(`${status} ${message}`), data)
    }
    await wait(asked ?? jittered(backoff, attempt), { upstream_status: status }, attempt, options)
  }
}

/**
 * A provider's error text as it may be quoted in a frame or a log line: the known secrets
 * (`redact`) and anything else that looks like a credential taken out, then cut to
 * UPSTREAM_MESSAGE_LIMIT characters. Redacted before cutting, so that no piece of a secret
 * survives the cut.
 */
export function quoteUpstream(text: string, redact: (text: string) => string = (t) => t): string {
  return stripCredentials(redact(text)).trim().slice(0, UPSTREAM_MESSAGE_LIMIT)
}

/** 408 timeout, 409 lock conflict, 429 rate limit, 5xx overload: all said to be worth another try. */
function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500
}

/** Full jitter: anywhere between 0 and the doubled base, so clients rate-limited together spread out. */
function jittered(backoff: Backoff, attempt: number): number {
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * 2 ** (attempt - 1))
  return Math.round(Math.random() * ceiling)
}

async function wait(
  delayMs: number,
  reason: Record<string, unknown>,
  attempt: number,
  options: PostOptions,
): Promise<void> {
  options.log?.warn(
    { ...reason, attempt, max_retries: options.maxRetries, delay_ms: delayMs },
    'LLM request failed; retrying',
  )
  try {
    await sleep(delayMs, undefined, { signal: options.signal })
  } catch (err) {
    if (options.signal.aborted) throw abortReason(options.signal)
    throw err
  }
}

/** `retry-after-ms` (OpenAI, Anthropic) first, then `retry-after` in seconds or as an HTTP date. */
export function retryAfterMs(
  headers: Dispatcher.ResponseData['headers'],
  now = Date.now(),
): number | undefined {
  const ms = Number(single(headers['retry-after-ms']))
  if (single(headers['retry-after-ms']) !== undefined && Number.isFinite(ms) && ms >= 0) return ms
  const value = single(headers['retry-after'])?.trim()
  if (!value) return undefined
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

export function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function connectionError(code: string, attempts: number, timeoutSeconds: number): Error {
  const data: Record<string, unknown> = attempts > 1 ? { attempts } : {}
  if (TIMEOUT_CODES.has(code)) {
    const err = new errors.LLM_TIMEOUT(timeoutSeconds)
    return attempts > 1 ? withData(err, data) : err
  }
  return withData(new errors.LLM_UPSTREAM_ERROR(`connection failed (${code})`), { cause: code, ...data })
}

/**
 * Maps a failure while reading an answer's body: an abort stays the signal's reason, a silence
 * longer than the timeout is errors.LLM_TIMEOUT, a lost connection is errors.LLM_STREAM_BROKEN.
 */
export function bodyError(err: unknown, signal: AbortSignal, timeoutSeconds: number): unknown {
  if (signal.aborted) return abortReason(signal)
  if (isPlatformError(err)) return err
  const code = errorCode(err)
  if (TIMEOUT_CODES.has(code)) return new errors.LLM_TIMEOUT(timeoutSeconds)
  return withData(new errors.LLM_STREAM_BROKEN(`connection lost (${code})`), { cause: code })
}

/** `{error: {message}}` (OpenAI, Anthropic), `{error: "…"}` (Ollama), `{message}` (others). */
export function errorMessage(error: unknown): string | undefined {
  if (typeof error === 'string') return error
  if (typeof error === 'object' && error !== null) {
    const { message } = error as { message?: unknown }
    if (typeof message === 'string') return message
  }
  return undefined
}

/** The provider's message in an error body, or the body itself when it has none. */
export function upstreamMessage(bodyText: string): string {
  let json: unknown
  try {
    json = JSON.parse(bodyText)
  } catch {
    return bodyText
  }
  if (typeof json !== 'object' || json === null) return bodyText
  return errorMessage((json as { error?: unknown }).error) ?? errorMessage(json) ?? bodyText
}

/** Up to `limit` bytes of a body, as text; a body cut short gives what arrived. */
export async function readCapped(body: Body, limit: number): Promise<string> {
  const decoder = new TextDecoder('utf-8')
  let text = ''
  let size = 0
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      text += decoder.decode(chunk.subarray(0, limit - size), { stream: true })
      size += chunk.length
      if (size >= limit) break
    }
  } catch {
    // The status already says what went wrong; a body cut short only loses detail.
  }
  return text + decoder.decode()
}

export function errorCode(err: unknown): string {
  if (typeof err !== 'object' || err === null) return 'UNKNOWN'
  const e = err as { code?: unknown; name?: unknown; errors?: unknown[] }
  if (typeof e.code === 'string') return e.code
  // Node's happy-eyeballs connect reports an AggregateError of the attempts.
  if (Array.isArray(e.errors) && e.errors.length) return errorCode(e.errors[0])
  return typeof e.name === 'string' ? e.name : 'UNKNOWN'
}

/** `llm.request`, as a wire reads it. */
export interface LlmRequestSettings {
  timeout: number
  max_retries: number
  max_response_bytes: number
}

/** What every wire's constructor takes besides its configuration. */
export interface WireOptions {
  /** Told about each retried attempt. */
  log?: Logger
  /** Delays between attempts; the defaults suit real providers. */
  backoff?: Partial<Backoff>
}

/**
 * One provider's HTTP endpoint, as every wire uses it: a keep-alive pool to its origin, the path
 * under its base URL, retries and timeouts from `llm.request`, and its key kept out of messages.
 */
export class LlmEndpoint {
  /** `llm.request.timeout` and `llm.request.max_response_bytes`, for reading an answer's body. */
  readonly limits: BodyLimits
  readonly #origin: string
  /** Made by the first request. */
  #pool: Promise<Pool> | undefined
  #closed = false
  readonly #path: string
  readonly #maxRetries: number
  readonly #apiKey: string | undefined
  readonly #options: WireOptions

  constructor(
    baseUrl: string,
    endpoint: string,
    apiKey: string | undefined,
    request: LlmRequestSettings,
    options: WireOptions,
  ) {
    const url = new URL(baseUrl)
    // The base URL's path (`/v1`, `/openai/v1`, a proxy's prefix) is part of the endpoint.
    this.#path = `${url.pathname.replace(/\/+$/, '')}/${endpoint}`
    this.#origin = url.origin
    this.limits = {
      timeoutSeconds: request.timeout,
      maxBytes: request.max_response_bytes,
    }
    this.#maxRetries = request.max_retries
    this.#apiKey = apiKey
    this.#options = options
  }

  /**
   * Up to the status line of a 2xx, retried as long as none came; a web page is refused
   * (refuseWebPage).
   */
  async post(
    headers: Record<string, string>,
    body: unknown,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    // As a closed pool would refuse it.
    if (this.#closed) throw connectionError('UND_ERR_CLOSED', 1, this.limits.timeoutSeconds)
    this.#pool ??= createLlmPool(this.#origin, this.limits.timeoutSeconds)
    const res = await postWithRetries(
      await this.#pool,
      { path: this.#path, headers, body: JSON.stringify(body) },
      {
        maxRetries: this.#maxRetries,
        timeoutSeconds: this.limits.timeoutSeconds,
        signal,
        redact: (text) => this.redact(text),
        log: this.#options.log,
        backoff: this.#options.backoff,
      },
    )
    refuseWebPage(res)
    return res
  }

  /**
   * A provider's error text, fit to quote: providers sometimes quote the key they were given (or
   * another credential); it never goes further, and the text is cut (quoteUpstream).
   */
  redact(text: string): string {
    return quoteUpstream(text, (t) => (this.#apiKey ? t.split(this.#apiKey).join('[redacted]') : t))
  }

  async close(): Promise<void> {
    this.#closed = true
    const pool = await this.#pool
    if (pool && !pool.closed) await pool.close()
  }
}
