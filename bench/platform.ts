// The platform as its own process for the benchmarks (`node dist/src/server.js start` with a
// configuration written into a temporary folder), and what is read of it from outside: /ready,
// its CPU time and its resident memory from /proc. Not a benchmark itself (not in run.ts).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const SERVER = fileURLToPath(new URL('../src/server.js', import.meta.url))
export const DEMO = fileURLToPath(new URL('../servers/demo.js', import.meta.url))

export type StoreKind = 'memory' | 'jsonl'

export interface StdioServer {
  command: string
  args: string[]
}

/**
 * A stdio server's command run in a session of its own (`setsid`), as the platform's registry
 * runs every server (`detached`): for a baseline's bare SDK client. With the kernel's autogroup
 * scheduling (Linux's default, `/proc/sys/kernel/sched_autogroup_enabled`), each session is
 * one group with its share of the CPU; on a loaded machine a server in the client's group and one
 * in a group of its own are served very differently (the registry measured 0.3 to 0.5× the bare
 * SDK's calls/s that way, 0.9× with both servers in sessions of their own, in the same hour).
 */
export function ownSession(command: string, args: string[]): StdioServer {
  return { command: 'setsid', args: [command, ...args] }
}

/** `n` demo servers (our servers/demo.ts over stdio), named demo, demo2, demo3, … */
export function demoServers(n: number): Record<string, StdioServer> {
  const servers: Record<string, StdioServer> = {}
  for (let i = 1; i <= n; i++)
    servers[i === 1 ? 'demo' : `demo${i}`] = { command: process.execPath, args: [DEMO] }
  return servers
}

/**
 * The shipped config.yaml's settings (context budget, limits, log level info), with a local
 * OpenAI-compatible provider and the store asked for. jsonl writes with fsync, into the temporary
 * folder, which is on the machine's disk (not a tmpfs) here: `df /tmp`.
 */
export function platformConfig(providerUrl: string, store: StoreKind, port: number): object {
  return {
    llm: {
      active: 'local',
      providers: {
        local: {
          type: 'openai',
          base_url: providerUrl,
          model: 'bench-model',
          temperature: 0.7,
          max_tokens: 500,
          top_p: 0.9,
        },
      },
      request: { timeout: 60, max_retries: 0, max_response_bytes: 8_388_608 },
    },
    chat: {
      service: {
        system_prompt: 'You are a helpful assistant.',
        max_input_chars: 100_000,
        streaming: { enabled: true },
        context: { max_tokens: 4000, reserve_tokens: 500, preserve_recent: 5 },
        max_tool_hops: 8,
        tool_timeout: 60,
        turn_timeout: 600,
      },
    },
    store: store === 'memory' ? { type: 'memory' } : { type: 'jsonl', path: 'events.jsonl', fsync: true },
    websocket: {
      host: '127.0.0.1',
      port,
      max_message_bytes: 1_048_576,
      max_buffered_bytes: 4_194_304,
      max_concurrent_requests: 16,
    },
    mcp: {
      connection: { max_reconnect_attempts: 5, connection_timeout: 30, initial_reconnect_delay: 1 },
      max_message_bytes: 16_777_216,
    },
    logging: { level: 'info' },
  }
}

/** A port free right now on 127.0.0.1 (the platform is given it rather than told to pick one). */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

export interface PlatformChild {
  child: ChildProcess
  pid: number
  /** http://127.0.0.1:PORT */
  http: string
  /** ws://127.0.0.1:PORT/ws/chat */
  ws: string
  dir: string
  /** performance.now() right before the spawn. */
  spawnedAt: number
  /** Its log so far (stdout and stderr go to a file, so reading them costs the bench nothing). */
  log(): string
  /** SIGTERM (a graceful close, which writes a --cpu-prof profile), then removes its folder. */
  stop(): Promise<void>
}

export interface SpawnOptions {
  providerUrl: string
  store: StoreKind
  servers: Record<string, StdioServer>
  /** Flags for node before the script (e.g. --cpu-prof). */
  nodeArgs?: string[]
}

/** Writes the configuration and starts the platform; does not wait for anything. */
export async function spawnPlatform(options: SpawnOptions): Promise<PlatformChild> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-platform-'))
  const port = await freePort()
  const configPath = join(dir, 'config.yaml')
  const serversPath = join(dir, 'servers_config.json')
  // JSON is YAML: no YAML library is loaded into the bench for this.
  await writeFile(
    configPath,
    JSON.stringify(platformConfig(options.providerUrl, options.store, port), null, 2),
  )
  await writeFile(serversPath, JSON.stringify({ mcpServers: options.servers }, null, 2))
  const logPath = join(dir, 'platform.log')
  const fd = openSync(logPath, 'a')
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), SERVER, 'start'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', MCP_CONFIG_PATH: configPath, MCP_SERVERS_CONFIG_PATH: serversPath },
    stdio: ['ignore', fd, fd],
  })
  closeSync(fd)
  const exited = once(child, 'exit')
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8')
    } catch {
      return ''
    }
  }
  return {
    child,
    pid: child.pid!,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}/ws/chat`,
    dir,
    spawnedAt,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(timer)
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** The status of GET `url`, or 0 when nothing answers (not listening yet). */
export function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', () => resolve(0))
    req.end()
  })
}

/**
 * Polls /ready every `everyMs` until it answers 200; resolves with performance.now() of that
 * answer. Throws when the process exits or `timeoutMs` passes.
 */
export async function waitReady(platform: PlatformChild, timeoutMs = 30_000, everyMs = 5): Promise<number> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (platform.child.exitCode !== null || platform.child.signalCode !== null) {
      throw new Error(`the platform exited before /ready said 200:\n${platform.log().slice(-3000)}`)
    }
    if ((await httpStatus(`${platform.http}/ready`)) === 200) return performance.now()
    if (performance.now() > deadline) {
      throw new Error(`/ready not 200 within ${timeoutMs} ms:\n${platform.log().slice(-3000)}`)
    }
    await sleep(everyMs)
  }
}

/** Starts the platform and waits until /ready says 200 (every MCP server connected). */
export async function startPlatform(options: SpawnOptions): Promise<PlatformChild> {
  const platform = await spawnPlatform(options)
  try {
    await waitReady(platform)
  } catch (err) {
    await platform.stop()
    throw err
  }
  return platform
}

let ticksPerSecond: number | undefined

/** CPU time (user + system, every thread) a process has used so far, in ms: /proc/PID/stat. */
export function cpuMsOf(pid: number): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces), from field 3 (state): utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond
}

/** The resident memory of a process, in bytes: VmRSS of /proc/PID/status. */
export function rssOf(pid: number): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return Number(kib) * 1024
}

// ---------- small statistics and formatting, shared by the benchmarks of issue 13 ----------

export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

export function median(values: number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  )
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '–'

/** `a / b` as "1.23×". */
export const ratio = (a: number, b: number, digits = 2): string => `${fmt(a / b, digits)}×`

/** "met" or "missed" for a ratio and its bound. */
export function verdict(value: number, bound: number, kind: 'at most' | 'at least'): string {
  const met = kind === 'at most' ? value <= bound : value >= bound
  return met ? 'met' : '**missed**'
}
