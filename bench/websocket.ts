// The resident memory of an idle WebSocket (issue 13: ≤ 10 KB each): the platform's process with
// thousands of open connections that send nothing, against a bare `ws` server on node:http in
// its own process (the baseline), in the same run. The bare server is this same file as a child
// process (`node websocket.js ws-server`).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import WebSocket, { WebSocketServer } from 'ws'
import { fmt, median, ratio, rssOf, startPlatform, verdict } from './platform.js'
import type { Bench } from './run.js'

const SELF = fileURLToPath(import.meta.url)
/**
 * Resident memory is read at each of these numbers of open connections. The readings start at
 * 1,000: the first connections also grow the young generation of the heap to its working size,
 * which is not what each connection holds.
 */
const STEPS = [1000, 2000, 3000, 4000, 5000]
const ROUNDS = 3
const WARM_UP = 300
/** Connections opened at once while a step fills. */
const BATCH = 100
const SETTLE_MS = 500
const NO_PROVIDER = 'http://127.0.0.1:9/v1'

/** The baseline: ws's WebSocketServer on a node:http server, as the platform's path; echoes nothing. */
async function serveBare(): Promise<void> {
  const server = createServer((_req, res) => res.writeHead(404).end())
  const wss = new WebSocketServer({ server, path: '/ws/chat', maxPayload: 1_048_576 })
  wss.on('connection', (ws) => ws.on('message', () => undefined))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`)
  process.stdin.resume().on('end', () => process.exit(0))
}

interface Target {
  pid: number
  url: string
  /** Proves that the connection still works: the platform answers a ping action, ws a ping. */
  alive(ws: WebSocket): Promise<void>
  stop(): Promise<void>
}

async function bareTarget(): Promise<Target> {
  const child: ChildProcess = spawn(process.execPath, [SELF, 'ws-server'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout! })
  const [line] = (await once(lines, 'line')) as [string]
  lines.close()
  return {
    pid: child.pid!,
    url: `ws://127.0.0.1:${line.trim()}/ws/chat`,
    async alive(ws) {
      const pong = once(ws, 'pong')
      ws.ping()
      await pong
    },
    async stop() {
      child.stdin!.end()
      await once(child, 'exit')
    },
  }
}

async function platformTarget(): Promise<Target> {
  const platform = await startPlatform({ providerUrl: NO_PROVIDER, store: 'memory', servers: {} })
  return {
    pid: platform.pid,
    url: platform.ws,
    async alive(ws) {
      const answer = once(ws, 'message')
      ws.send(JSON.stringify({ action: 'ping', request_id: 'alive', payload: {} }))
      const [data] = (await answer) as [Buffer]
      if (!data.toString('utf8').includes('"pong":true')) throw new Error(`ping: ${data.toString('utf8')}`)
    },
    stop: () => platform.stop(),
  }
}

async function open(url: string, n: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  for (let i = 0; i < n; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, n - i) }, async () => {
        const ws = new WebSocket(url, { perMessageDeflate: false })
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
        return ws
      }),
    )
    sockets.push(...batch)
  }
  return sockets
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map((ws) => {
      const closed = once(ws, 'close')
      ws.close()
      return closed
    }),
  )
}

/** Least-squares slope of resident bytes over open connections: bytes per connection. */
function slope(points: [number, number][]): number {
  const n = points.length
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0)
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0)
  return num / den
}

/** One round on a fresh process: bytes per idle connection, and the RSS at the last step. */
async function round(start: () => Promise<Target>): Promise<{ perConnection: number; rss: number[] }> {
  const target = await start()
  const sockets: WebSocket[] = []
  try {
    // The first connections allocate what every later one reuses (code, pools, buffers).
    const warm = await open(target.url, WARM_UP)
    await target.alive(warm[0]!)
    await closeAll(warm)
    const points: [number, number][] = []
    for (const step of STEPS) {
      sockets.push(...(await open(target.url, step - sockets.length)))
      await sleep(SETTLE_MS)
      points.push([sockets.length, rssOf(target.pid)])
    }
    await target.alive(sockets.at(-1)!)
    return { perConnection: slope(points), rss: points.map(([, rss]) => rss) }
  } finally {
    await closeAll(sockets)
    await target.stop()
  }
}

export const bench: Bench = {
  name: 'websocket',
  async run(progress) {
    const platform: number[] = []
    const bare: number[] = []
    let platformRss: number[] = []
    let bareRss: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const p = await round(platformTarget)
      const b = await round(bareTarget)
      platform.push(p.perConnection)
      bare.push(b.perConnection)
      platformRss = p.rss
      bareRss = b.rss
      progress(
        `round ${i + 1}: platform ${fmt(p.perConnection / 1024, 2)} KiB per idle connection, bare ws ${fmt(b.perConnection / 1024, 2)} KiB`,
      )
    }
    const p = median(platform)
    const b = median(bare)
    const mib = (rss: number[]) => rss.map((r) => fmt(r / 2 ** 20, 1)).join(' → ')
    return {
      title: 'Idle WebSocket connections',
      markdown: `
Resident memory per open WebSocket connection that sends nothing (\`bench/websocket.ts\`). The
platform (\`dist/src/server.js start\`, memory store, no MCP server, auth off) and, as the
baseline in the same run, a bare \`ws\` \`WebSocketServer\` on a node:http server in a process of
its own. Each round starts a fresh process, opens and closes ${WARM_UP} connections (warm-up), then
opens connections from this process up to ${STEPS.map((n) => fmt(n)).join(', ')}, ${BATCH} at a time, and reads the
server's resident memory (\`VmRSS\`) ${SETTLE_MS} ms after each step; bytes per connection is the
least-squares slope of those readings (the last connection is then checked to still answer). The
readings start at ${fmt(STEPS[0]!)} open connections, not 0: the first connections also grow the heap's
young generation to its working size, a one-off that is not what a connection holds.
${ROUNDS} rounds each, median.

| server | KiB per idle connection | rounds | RSS at the steps, last round (MiB) |
| --- | ---: | --- | --- |
| bare \`ws\` on node:http (baseline) | ${fmt(b / 1024, 2)} | ${bare.map((v) => fmt(v / 1024, 2)).join(', ')} | ${mib(bareRss)} |
| platform | ${fmt(p / 1024, 2)} (${ratio(p, b)}) | ${platform.map((v) => fmt(v / 1024, 2)).join(', ')} | ${mib(platformRss)} |

Target ≤ 10 KB per idle connection: ${fmt(p / 1000, 1)} KB, ${verdict(p, 10_000, 'at most')}. The garbage a connection's
set-up leaves before the next collection counts here too (the server is not told to collect), as it
does in a real process.
`,
    }
  },
}

const [, script, role] = process.argv
if (script && import.meta.url === pathToFileURL(script).href && role === 'ws-server') await serveBare()
