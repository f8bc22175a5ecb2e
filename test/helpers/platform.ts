// Start the real platform (buildApp, real plugins, real files) against a local provider server,
// and talk to it over a real WebSocket (injectWS, or a real port).
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { stringify } from 'yaml'
import { buildApp } from '../../src/app.js'
import type { ChatStore } from '../../src/store/types.js'
import { frameProblems } from './frames.js'

export type ConfigObject = Record<string, any>

export function baseConfig(baseUrl: string): ConfigObject {
  return {
    llm: {
      active: 'local',
      providers: {
        local: {
          type: 'openai',
          base_url: baseUrl,
          model: 'test-model',
          temperature: 0.5,
          max_tokens: 500,
          top_p: 1,
        },
      },
      request: { timeout: 5, max_retries: 0, max_response_bytes: 8_388_608 },
    },
    chat: {
      service: {
        system_prompt: 'You are a test assistant.',
        max_input_chars: 1000,
        streaming: { enabled: true },
        context: { max_tokens: 4000, reserve_tokens: 500, preserve_recent: 5 },
        max_tool_hops: 3,
        tool_timeout: 5,
        turn_timeout: 60,
      },
    },
    store: { type: 'memory' },
    websocket: {
      host: '127.0.0.1',
      port: 0,
      max_message_bytes: 4096,
      max_buffered_bytes: 4_194_304,
      max_concurrent_requests: 16,
    },
    mcp: {
      connection: { max_reconnect_attempts: 1, connection_timeout: 5, initial_reconnect_delay: 0.1 },
      max_message_bytes: 16_777_216,
    },
    logging: { level: 'info' },
  }
}

export async function writeConfigFiles(
  dir: string,
  config: ConfigObject,
  servers: ConfigObject = { mcpServers: {} },
): Promise<{ configPath: string; serversPath: string }> {
  const configPath = join(dir, 'config.yaml')
  const serversPath = join(dir, 'servers_config.json')
  await writeFile(configPath, stringify(config))
  await writeFile(serversPath, JSON.stringify(servers, null, 2))
  return { configPath, serversPath }
}

/** Collects log lines written by the app, parsed. */
export class LogCapture extends Writable {
  readonly raw: string[] = []
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.raw.push(chunk.toString('utf8'))
    callback()
  }
  get text(): string {
    return this.raw.join('')
  }
  lines(): Record<string, any>[] {
    return this.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  }
}

export interface Platform {
  app: FastifyInstance
  dir: string
  logs: LogCapture
  close(): Promise<void>
}

export async function startPlatform(options: {
  baseUrl: string
  patch?: (config: ConfigObject) => void
  env?: Record<string, string>
  store?: ChatStore
  /** servers_config.json's `mcpServers`. */
  servers?: ConfigObject
  /** Use this folder (kept at close) instead of a new temporary one: for restarts. */
  dir?: string
}): Promise<Platform> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'mcp-platform-test-')))
  const config = baseConfig(options.baseUrl)
  options.patch?.(config)
  await writeConfigFiles(dir, config, { mcpServers: options.servers ?? {} })
  const logs = new LogCapture()
  const app = await buildApp({ env: options.env ?? {}, cwd: dir, logStream: logs, store: options.store })
  await app.ready()
  return {
    app,
    dir,
    logs,
    close: async () => {
      await app.close()
      if (!options.dir) await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Has the platform listen on a real port of 127.0.0.1 (a socket closing reaches it as from a real client). */
export async function listenOnPort(platform: Platform): Promise<{ url: string; port: number }> {
  await platform.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = platform.app.server.address() as AddressInfo
  return { url: `ws://127.0.0.1:${port}/ws/chat`, port }
}

export interface Frame {
  request_id: string | null
  status: string
  chunk?: { type: string; data: any }
  metadata?: Record<string, any>
  result?: Record<string, any>
  error?: { code: number; type: string; message: string; data?: Record<string, any> }
}

const TERMINAL = new Set(['complete', 'error', 'cancelled'])

/**
 * A WebSocket client that keeps every frame it receives, to wait on them by request_id. Every frame
 * is checked against the protocol's schemas (helpers/frames.ts): one that does not fit makes the
 * next wait, and close(), throw with the schema errors, so drift fails the test that saw it.
 */
export class Client {
  readonly frames: Frame[] = []
  /** Frames that did not fit the schemas, each with its problems. */
  readonly invalid: string[] = []
  /** The action sent under each request_id, so a `complete` is checked against what it answers. */
  readonly #actions = new Map<string, string>()
  readonly #waiters: (() => void)[] = []
  closeCode: number | undefined
  readonly closed: Promise<number>

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = (data as Buffer).toString('utf8')
      const frame = JSON.parse(text) as Frame
      const action = typeof frame.request_id === 'string' ? this.#actions.get(frame.request_id) : undefined
      const problems = frameProblems(frame, action)
      if (problems.length) this.invalid.push(`${text}\n  ${problems.join('\n  ')}`)
      this.frames.push(frame)
      for (const wake of this.#waiters.splice(0)) wake()
    })
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        this.closeCode = code
        for (const wake of this.#waiters.splice(0)) wake()
        resolve(code)
      }),
    )
  }

  static async inject(app: FastifyInstance, headers: Record<string, string> = {}): Promise<Client> {
    return new Client(await app.injectWS('/ws/chat', { headers }))
  }

  static async connect(url: string, options?: WebSocket.ClientOptions): Promise<Client> {
    const ws = new WebSocket(url, options)
    const client = new Client(ws)
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    return client
  }

  send(frame: unknown): void {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame)
    this.#remember(text)
    this.ws.send(text)
  }

  #remember(text: string): void {
    try {
      const { action, request_id } = JSON.parse(text) as Record<string, unknown>
      if (typeof action === 'string' && typeof request_id === 'string') this.#actions.set(request_id, action)
    } catch {
      // Not JSON: a test of invalid frames; the answer has no request_id to check against.
    }
  }

  /** Throws when a frame received so far did not fit the protocol's schemas. */
  assertFramesValid(): void {
    if (this.invalid.length) {
      throw new Error(`server frames that do not fit the protocol schemas:\n${this.invalid.join('\n')}`)
    }
  }

  chat(requestId: string, payload: Record<string, unknown>): void {
    this.send({ action: 'chat', request_id: requestId, payload })
  }

  /** Resolves once `predicate` holds for the frames received so far. */
  async until(predicate: (frames: Frame[]) => boolean, timeoutMs = 5000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      this.assertFramesValid()
      if (predicate(this.frames)) break
      if (Date.now() > deadline) throw new Error(`timed out; frames so far: ${JSON.stringify(this.frames)}`)
      if (this.closeCode !== undefined)
        throw new Error(`socket closed (${this.closeCode}); frames: ${JSON.stringify(this.frames)}`)
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 50).unref()
      })
    }
    return this.frames
  }

  /** Every frame of `requestId` (received from index `from` on) up to and including its terminal frame. */
  async request(requestId: string | null, timeoutMs?: number, from = 0): Promise<Frame[]> {
    const mine = () => this.frames.slice(from).filter((f) => f.request_id === requestId)
    await this.until(() => mine().some((f) => TERMINAL.has(f.status)), timeoutMs)
    return mine()
  }

  /** Sends a chat and waits for its terminal frame. */
  async chatAndWait(requestId: string, payload: Record<string, unknown>): Promise<Frame[]> {
    return this.act('chat', payload, requestId)
  }

  /** Sends one action and resolves with its frames up to the terminal one. */
  async act(action: string, payload: Record<string, unknown> = {}, requestId?: string): Promise<Frame[]> {
    const id = requestId ?? `${action}-${++Client.#sequence}`
    const from = this.frames.length
    this.send({ action, request_id: id, payload })
    return this.request(id, 10_000, from)
  }

  /** Sends one action and resolves with its terminal frame. */
  async ask(action: string, payload: Record<string, unknown> = {}, requestId?: string): Promise<Frame> {
    return terminal(await this.act(action, payload, requestId))
  }

  static #sequence = 0

  /** Closes the socket; throws if a frame received did not fit the schemas. */
  close(): void {
    this.ws.close()
    this.assertFramesValid()
  }
}

export function textOf(frames: Frame[]): string {
  return frames
    .filter((f) => f.status === 'chunk' && f.chunk?.type === 'text')
    .map((f) => f.chunk!.data as string)
    .join('')
}

/** What a `complete` frame carries (`result`, or a chat's `metadata`); fails the test otherwise. */
export function resultOf(frame: Frame): Record<string, any> {
  assert.equal(frame.status, 'complete', JSON.stringify(frame))
  return frame.result ?? frame.metadata ?? {}
}

/** Asserts an `error` frame of this code and type, and returns its error. */
export function assertError(frame: Frame, code: number, type: string): NonNullable<Frame['error']> {
  assert.equal(frame.status, 'error', JSON.stringify(frame))
  assert.deepEqual([frame.error!.code, frame.error!.type], [code, type], JSON.stringify(frame.error))
  return frame.error!
}

/** Runs `run` with a client injected into `app`, closed afterwards. */
export async function withClient<T>(app: FastifyInstance, run: (client: Client) => Promise<T>): Promise<T> {
  const client = await Client.inject(app)
  try {
    return await run(client)
  } finally {
    client.close()
  }
}

const cleanups = new WeakMap<TestContext, (() => Promise<void>)[]>()
/** Runs `fn` after the test, in reverse order of registration (a platform closes before its servers). */
export function onCleanup(t: TestContext, fn: () => Promise<void>): void {
  let stack = cleanups.get(t)
  if (!stack) {
    const fresh: (() => Promise<void>)[] = []
    t.after(async () => {
      for (const cleanup of fresh.reverse()) await cleanup()
    })
    cleanups.set(t, (stack = fresh))
  }
  stack.push(fn)
}

export function terminal(frames: Frame[]): Frame {
  const last = frames.at(-1)
  if (!last || !TERMINAL.has(last.status)) throw new Error(`no terminal frame in ${JSON.stringify(frames)}`)
  return last
}

/** The compiled demo MCP server (servers/demo.ts), as a servers_config.json entry. */
export const DEMO_SERVER_PATH = fileURLToPath(new URL('../../servers/demo.js', import.meta.url))
export function demoServer(extra: ConfigObject = {}): ConfigObject {
  return { command: process.execPath, args: [DEMO_SERVER_PATH], ...extra }
}

/** Resolves once every MCP server has had its first try (ready or failed). */
export async function mcpSettled(app: FastifyInstance, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!app.mcp.settled()) {
    if (Date.now() > deadline) throw new Error(`MCP servers not settled: ${JSON.stringify(app.mcp.status())}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
