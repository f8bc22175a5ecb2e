// Our stdio client transport for MCP servers. Unlike the SDK's, it starts the child as the leader
// of its own process group and ends the whole group: a server started through `npx` or a shell
// leaves no grandchild behind, whether it is closed or dies on its own. The child's environment is
// made here too: the parent's, minus secrets.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { deserializeMessage, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { describeCut, LineReader, type OversizedLine } from './line-reader.js'

export interface StdioTransportOptions {
  command: string
  args: string[]
  /** The child's whole environment, used as it is. */
  env: Record<string, string>
  cwd?: string
  /** Each line the server writes to stderr. */
  onStderr?: (line: string) => void
  /** The largest message read from the server, in bytes: a larger one is dropped. */
  maxMessageBytes: number
  /** A message over maxMessageBytes was dropped (by default reported through onerror). */
  onOversized?: (refused: RefusedMessage) => void
}

/** A message dropped for its size, and the request it answered, when it could be told. */
export interface RefusedMessage {
  bytes: number
  limit: number
  id?: string | number
}

/**
 * The JSON-RPC error code of the answer that stands in for a response over the limit: in the range
 * for implementation-defined errors, and not one of the SDK's (-32000 is its ConnectionClosed).
 */
export const MESSAGE_TOO_LARGE = -32010

/** How long a server gets to exit by itself once its stdin is closed. */
const STDIN_GRACE_MS = 500
/** How long the group gets between SIGTERM and SIGKILL. */
const TERM_GRACE_MS = 1000
/** How long to wait for the group to disappear after SIGKILL. */
const KILL_WAIT_MS = 500
/** How long a death is reported late, at most, so its stderr can be read to the end. */
const EXIT_SETTLE_MS = 100
const STDERR_LINES = 10
const STDERR_LINE_MAX = 2000
/** The shared check of ending groups starts this often, and slows down to the maximum. */
const GROUP_CHECK_FIRST_MS = 10
const GROUP_CHECK_MAX_MS = 200

export class StdioTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void

  readonly #options: StdioTransportOptions
  #child?: ChildProcessWithoutNullStreams
  readonly #reader: LineReader
  readonly #inbox: JSONRPCMessage[] = []
  #delivering = false
  readonly #stderrLines: string[] = []
  #stderrPartial = ''
  #exitStatus?: { code: number | null; signal: NodeJS.Signals | null }
  /** Resolves when the child exits (never, if it was never spawned). */
  readonly #exit: Promise<void>
  #exited!: () => void
  #ending?: Promise<void>
  /** Resolves once a dead child's pipes are read to the end (or a short while has passed). */
  #drained?: Promise<void>
  #finished = false

  constructor(options: StdioTransportOptions) {
    this.#options = options
    this.#reader = new LineReader(options.maxMessageBytes)
    this.#exit = new Promise((resolve) => (this.#exited = resolve))
  }

  /** The child's process id (also its process group id) once spawned. */
  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** The last lines the server wrote to stderr: often the reason it failed. */
  get stderrTail(): string[] {
    const partial = this.#stderrPartial.trim() ? [this.#stderrPartial] : []
    return [...this.#stderrLines, ...partial].slice(-STDERR_LINES)
  }

  /** How the process ended (`exited with code 1`), undefined while it runs. */
  get exitDescription(): string | undefined {
    const status = this.#exitStatus
    if (!status) return undefined
    return status.signal ? `was killed by ${status.signal}` : `exited with code ${String(status.code)}`
  }

  start(): Promise<void> {
    if (this.#child) return Promise.reject(new Error('StdioTransport already started'))
    const { command, args, env, cwd } = this.#options
    let child: ChildProcessWithoutNullStreams
    try {
      // detached: the child leads a new process group, so the whole group can be signalled.
      child = spawn(command, args, { env, cwd, stdio: 'pipe', detached: true, windowsHide: true })
    } catch (err) {
      // Arguments spawn refuses outright (a NUL byte in a path, …).
      return Promise.reject(new Error(spawnFailure(command, cwd, err as NodeJS.ErrnoException)))
    }
    this.#child = child
    child.stdout.on('data', (chunk: Buffer) => this.#onStdout(chunk))
    child.stderr.on('data', (chunk: Buffer) => this.#onStderr(chunk))
    // A write to a child that just died fails with EPIPE: reported, never thrown.
    child.stdin.on('error', (err) => this.onerror?.(err))
    child.once('exit', (code, signal) => this.#onExit(code, signal))
    return new Promise((resolve, reject) => {
      child.once('spawn', () => {
        child.on('error', (err) => this.onerror?.(err))
        resolve()
      })
      child.once('error', (err: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) return
        reject(new Error(spawnFailure(command, cwd, err)))
        this.#finish()
      })
    })
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.#child?.stdin
    if (!stdin || this.#exitStatus || this.#finished || !stdin.writable) {
      return Promise.reject(new Error('the server process is not running'))
    }
    // The callback runs once the line is handed to the OS: backpressure is the caller's wait.
    return new Promise((resolve, reject) => {
      stdin.write(serializeMessage(message), (err) => (err ? reject(err) : resolve()))
    })
  }

  async close(): Promise<void> {
    const child = this.#child
    if (child?.pid !== undefined) {
      if (!this.#exitStatus) {
        // Closing stdin is the polite way to stop a stdio server: most exit on it at once.
        child.stdin.end()
        await this.#exitWithin(STDIN_GRACE_MS)
      }
      await this.#endGroup()
      await this.#drained
    }
    this.#finish()
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exitStatus = { code, signal }
    this.#exited()
    // Grandchildren outlive their parent unless the group is ended too.
    void this.#endGroup()
    // The last stderr lines (often the reason) may still be in the pipe: wait for it to close,
    // but not for long, in case a grandchild still holds it.
    this.#drained = new Promise<void>((resolve) => {
      this.#child?.once('close', () => resolve())
      setTimeout(resolve, EXIT_SETTLE_MS).unref()
    }).then(() => this.#finish())
  }

  /** Whether the child exits within `ms`: its exit event, no polling. */
  async #exitWithin(ms: number): Promise<boolean> {
    if (this.#exitStatus) return true
    let timer: NodeJS.Timeout | undefined
    // Not unref'd: a close in progress keeps the process alive until it is done.
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
    try {
      return await Promise.race([this.#exit.then(() => true), late])
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGTERM to the whole group, SIGKILL to what is left after a grace. Runs once. */
  #endGroup(): Promise<void> {
    this.#ending ??= (async () => {
      this.#signalGroup('SIGTERM')
      if (await this.#groupGoneWithin(TERM_GRACE_MS)) return
      this.#signalGroup('SIGKILL')
      await this.#groupGoneWithin(KILL_WAIT_MS)
    })()
    return this.#ending
  }

  /** Whether the leader exits and no other live process is left in its group, within `ms`. */
  async #groupGoneWithin(ms: number): Promise<boolean> {
    const started = Date.now()
    if (!(await this.#exitWithin(ms))) return false
    const pid = this.#child?.pid
    if (pid === undefined || process.platform === 'win32') return true
    return endingGroups.goneWithin(pid, ms - (Date.now() - started))
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid
    if (pid === undefined) return
    try {
      if (process.platform === 'win32') this.#child?.kill(signal)
      else process.kill(-pid, signal)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') this.onerror?.(err as Error)
    }
  }

  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    this.#reader.clear()
    // What the server said before it went is still delivered, before the close.
    for (let message = this.#inbox.shift(); message !== undefined; message = this.#inbox.shift()) {
      this.onmessage?.(message)
    }
    this.onclose?.()
  }

  #onStdout(chunk: Buffer): void {
    if (this.#finished) return
    for (const line of this.#reader.push(chunk)) {
      if ('oversized' in line) {
        this.#refuse(line.oversized)
        continue
      }
      try {
        this.#inbox.push(deserializeMessage(line.text))
      } catch (err) {
        // Only this line is lost: report it and go on with the next one.
        this.onerror?.(new Error(`the server wrote a line that is not JSON-RPC: ${(err as Error).message}`))
      }
    }
    this.#deliver()
  }

  /**
   * A message over the limit was dropped. If it answered one of our requests, that request gets an
   * error answer in its place, so it fails now rather than at its timeout.
   */
  #refuse(line: OversizedLine): void {
    const limit = this.#reader.maxBytes
    const { id, response } = describeCut(line.head, line.tail)
    const refused: RefusedMessage = { bytes: line.bytes, limit, ...(id === undefined ? {} : { id }) }
    if (this.#options.onOversized) this.#options.onOversized(refused)
    else this.onerror?.(new Error(`the server wrote a message of ${line.bytes} bytes, over ${limit}`))
    if (!response || id === undefined) return
    this.#inbox.push({
      jsonrpc: '2.0',
      id,
      error: {
        code: MESSAGE_TOO_LARGE,
        message: `message of ${line.bytes} bytes exceeds mcp.max_message_bytes (${limit})`,
        data: { message_bytes: line.bytes, max_message_bytes: limit },
      },
    })
  }

  /**
   * Hands messages over as they were read, except that one following a notification (or a request
   * from the server) waits for the next macrotask: the SDK runs their handlers a microtask late,
   * and a progress notification read together with its result would otherwise reach a request
   * that is already settled, and be lost. Results in a row go at once (many concurrent calls).
   */
  #deliver(): void {
    if (this.#delivering) return
    for (let message = this.#inbox.shift(); message !== undefined; message = this.#inbox.shift()) {
      this.onmessage?.(message)
      if (this.#inbox.length > 0 && !('result' in message || 'error' in message)) {
        this.#delivering = true
        setImmediate(() => {
          this.#delivering = false
          this.#deliver()
        })
        return
      }
    }
  }

  #onStderr(chunk: Buffer): void {
    const lines = (this.#stderrPartial + chunk.toString('utf8')).split('\n')
    this.#stderrPartial = (lines.pop() ?? '').slice(-STDERR_LINE_MAX)
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '').slice(0, STDERR_LINE_MAX)
      if (line.trim() === '') continue
      this.#stderrLines.push(line)
      if (this.#stderrLines.length > STDERR_LINES) this.#stderrLines.shift()
      this.#options.onStderr?.(line)
    }
  }
}

/**
 * The process groups whose leader has exited, watched until their last member is gone. One timer
 * serves every ending group (a shutdown ends them all at once), and slows down while they linger:
 * signal 0 says whether a group has a member at all, and one read of /proc, for all groups that
 * answered, tells live members from zombies.
 */
class EndingGroups {
  readonly #waiting = new Set<GroupWaiter>()
  #timer?: NodeJS.Timeout
  #delay = GROUP_CHECK_FIRST_MS

  goneWithin(pgid: number, ms: number): Promise<boolean> {
    if (!hasMember(pgid)) return Promise.resolve(true)
    return new Promise((done) => {
      this.#waiting.add({ pgid, until: Date.now() + ms, done })
      this.#schedule()
    })
  }

  #schedule(): void {
    if (this.#timer) return
    this.#timer = setTimeout(() => void this.#check(), this.#delay)
    this.#delay = Math.min(this.#delay * 2, GROUP_CHECK_MAX_MS)
  }

  async #check(): Promise<void> {
    for (const waiter of this.#waiting) if (!hasMember(waiter.pgid)) this.#end(waiter, true)
    // Where nobody reaps orphans (a container's init), dead members stay as zombies and still
    // answer signal 0: they are gone for our purpose.
    const live = this.#waiting.size > 0 && process.platform === 'linux' ? await liveGroups() : undefined
    const now = Date.now()
    for (const waiter of this.#waiting) {
      if (live && !live.has(waiter.pgid)) this.#end(waiter, true)
      else if (now >= waiter.until) this.#end(waiter, false)
    }
    this.#timer = undefined
    if (this.#waiting.size > 0) this.#schedule()
    else this.#delay = GROUP_CHECK_FIRST_MS
  }

  #end(waiter: GroupWaiter, gone: boolean): void {
    this.#waiting.delete(waiter)
    waiter.done(gone)
  }
}

interface GroupWaiter {
  pgid: number
  /** When to stop waiting (Date.now() ms). */
  until: number
  done: (gone: boolean) => void
}

const endingGroups = new EndingGroups()

/** Whether any process (a zombie included) is in group `pgid`. */
function hasMember(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/** Every process group with a member alive and not a zombie, from /proc (Linux). */
async function liveGroups(): Promise<Set<number>> {
  const entries = await readdir('/proc').catch(() => [] as string[])
  const stats = await Promise.all(
    entries.filter((e) => /^\d+$/.test(e)).map((e) => readFile(`/proc/${e}/stat`, 'utf8').catch(() => '')),
  )
  const groups = new Set<number>()
  for (const stat of stats) {
    // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses, so read after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (state !== 'Z' && state !== 'X' && pgrp !== undefined) groups.add(Number(pgrp))
  }
  return groups
}

function spawnFailure(command: string, cwd: string | undefined, err: NodeJS.ErrnoException): string {
  // A missing cwd is reported by spawn as ENOENT of the command, which would mislead.
  if (cwd !== undefined && !existsSync(cwd)) {
    return `cannot start "${command}": working directory not found: ${cwd}`
  }
  if (err.code === 'ENOENT') return `cannot start "${command}": command not found`
  if (err.code === 'EACCES') return `cannot start "${command}": permission denied`
  return `cannot start "${command}": ${err.message}`
}

/** A child's environment: the parent's minus any variable holding a secret, plus its own `env`. */
export function childEnv(
  parent: Record<string, string | undefined>,
  secrets: readonly string[],
  own: Record<string, string>,
): Record<string, string> {
  const hidden = new Set(secrets.filter((s) => s !== ''))
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(parent)) {
    if (value !== undefined && !hidden.has(value)) env[key] = value
  }
  return { ...env, ...own }
}
