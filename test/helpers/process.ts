// The platform as a real separate process (`node dist/src/server.js start`), for what only a
// process shows: signals, exit codes, several processes sharing one store, memory of its own.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { writeConfigFiles, type ConfigObject } from './platform.js'

export const SERVER = fileURLToPath(new URL('../../src/server.js', import.meta.url))

export interface PlatformProcess {
  child: ChildProcess
  /** ws://127.0.0.1:PORT/ws/chat */
  url: string
  /** http://127.0.0.1:PORT */
  http: string
  /** What it printed so far (its JSON log lines). */
  stdout(): string
  stderr(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Writes the configuration into `dir`, starts the process, resolves once it listens. `node` adds
 * options of Node's before the script (`--import` a preload), `env` variables to its environment.
 */
export async function startPlatformProcess(
  dir: string,
  config: ConfigObject,
  servers: ConfigObject = {},
  extra: { node?: string[]; env?: Record<string, string> } = {},
): Promise<PlatformProcess> {
  config.websocket.port = 0
  const { configPath, serversPath } = await writeConfigFiles(dir, config, { mcpServers: servers })
  // MCP_*_PATH rather than flags: the environment route is exercised too.
  const child = spawn(process.execPath, [...(extra.node ?? []), SERVER, 'start'], {
    env: {
      PATH: process.env.PATH ?? '',
      MCP_CONFIG_PATH: configPath,
      MCP_SERVERS_CONFIG_PATH: serversPath,
      ...extra.env,
    },
  })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  // A process that never listens is ended, so it cannot keep the test run alive.
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listen line: ${out}${err}`)), 10_000)
    const look = () => {
      const m = /"msg":"Server listening at http:\/\/127\.0\.0\.1:(\d+)"/.exec(out)
      if (!m) return
      clearTimeout(timer)
      child.stdout.off('data', look)
      resolve(Number(m[1]))
    }
    child.stdout.on('data', look)
    void exited.then(() => reject(new Error(`exited before listening: ${out}${err}`)))
  }).catch((e: unknown) => {
    child.kill('SIGKILL')
    throw e
  })
  return {
    child,
    url: `ws://127.0.0.1:${port}/ws/chat`,
    http: `http://127.0.0.1:${port}`,
    stdout: () => out,
    stderr: () => err,
    exited,
  }
}

/** The resident memory of a process, in bytes (Linux). */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
  return Number(kib) * 1024
}

/** Processes of a process group that still run (a zombie has ended; only its parent's reaping is due). */
export async function liveMembers(pgid: number): Promise<string[]> {
  const live: string[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // pid (comm) state ppid pgrp …; comm may hold spaces, so split after its closing parenthesis.
    const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(group) === pgid && state !== 'Z') live.push(stat.slice(0, stat.lastIndexOf(')') + 1))
  }
  return live
}
