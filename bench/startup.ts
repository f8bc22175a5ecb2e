// Start-up (issue 13): the time from spawning the platform with three stdio MCP servers to /ready
// answering 200, against the bare MCP SDK spawning and initializing the same three servers in a
// fresh node process (from that process's spawn to all three initialized), in the same run.
// The bare SDK is this same file as a child process (`node startup.js sdk`).
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  DEMO,
  demoServers,
  fmt,
  median,
  ownSession,
  ratio,
  spawnPlatform,
  verdict,
  waitReady,
} from './platform.js'
import type { Bench } from './run.js'

const SELF = fileURLToPath(import.meta.url)
const SERVERS = 3
const RUNS = 5
/** How often /ready is asked while the platform starts. */
const POLL_MS = 5
/** The platform never calls its provider while it starts: nothing needs to listen here. */
const NO_PROVIDER = 'http://127.0.0.1:9/v1'

/** The baseline child: three demo servers spawned and initialized at once, then their tools listed. */
async function bareSdk(): Promise<void> {
  // Loaded here, not at the top: the time to load the SDK is part of what the baseline pays.
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js')
  const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js')
  const clients = Array.from(
    { length: SERVERS },
    (_, i) => new Client({ name: `bench-${i}`, version: '1.0.0' }, { capabilities: {} }),
  )
  await Promise.all(
    clients.map((client) =>
      // In a session of its own, as the platform's registry starts it (see ownSession).
      client.connect(new StdioClientTransport({ ...ownSession(process.execPath, [DEMO]), stderr: 'ignore' })),
    ),
  )
  process.stdout.write('initialized\n')
  await Promise.all(clients.map((client) => client.listTools()))
  process.stdout.write('listed\n')
  await Promise.all(clients.map((client) => client.close()))
}

/** Milliseconds from the spawn of a fresh `node startup.js sdk` to its lines. */
async function bareRun(): Promise<{ initialized: number; listed: number }> {
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, [SELF, 'sdk'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const times: Record<string, number> = {}
  for await (const line of createInterface({ input: child.stdout }))
    times[line] = performance.now() - spawnedAt
  if (times.initialized === undefined || times.listed === undefined)
    throw new Error('the bare SDK child failed')
  return { initialized: times.initialized, listed: times.listed }
}

/** Milliseconds from the platform's spawn to listening (its log) and to /ready = 200. */
async function platformRun(): Promise<{ listening: number; ready: number }> {
  const wallAtSpawn = Date.now()
  const platform = await spawnPlatform({
    providerUrl: NO_PROVIDER,
    store: 'memory',
    servers: demoServers(SERVERS),
  })
  try {
    const readyAt = await waitReady(platform, 30_000, POLL_MS)
    // The log's `time` is the wall clock, in ISO form to the millisecond.
    const listen = platform
      .log()
      .split('\n')
      .find((l) => l.includes('"msg":"Server listening'))
    const listenTime = listen ? Date.parse((JSON.parse(listen) as { time: string }).time) : NaN
    return { listening: listenTime - wallAtSpawn, ready: readyAt - platform.spawnedAt }
  } finally {
    await platform.stop()
  }
}

export const bench: Bench = {
  name: 'startup',
  async run(progress) {
    const platform: { listening: number; ready: number }[] = []
    const bare: { initialized: number; listed: number }[] = []
    // One warm-up run of each (the file system's cache), then the runs, taking turns.
    await platformRun()
    await bareRun()
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 === 0 ? ['platform', 'bare'] : ['bare', 'platform']
      for (const side of order) {
        if (side === 'platform') platform.push(await platformRun())
        else bare.push(await bareRun())
      }
      progress(
        `run ${i + 1}: platform ready ${fmt(platform.at(-1)!.ready)} ms (listening ${fmt(platform.at(-1)!.listening)} ms), ` +
          `bare SDK initialized ${fmt(bare.at(-1)!.initialized)} ms (tools listed ${fmt(bare.at(-1)!.listed)} ms)`,
      )
    }
    const ready = median(platform.map((p) => p.ready))
    const listening = median(platform.map((p) => p.listening))
    const initialized = median(bare.map((b) => b.initialized))
    const listed = median(bare.map((b) => b.listed))
    const runs = (values: number[]) => values.map((v) => fmt(v)).join(', ')
    return {
      title: 'Start-up',
      markdown: `
From spawning a process to three stdio MCP servers (our demo server, \`dist/servers/demo.js\`,
under three names) being ready (\`bench/startup.ts\`). The platform: \`dist/src/server.js start\`
(memory store, auth off), until \`GET /ready\` answers 200 (asked every ${POLL_MS} ms from the spawn).
The baseline, in the same run: a fresh node process that loads the bare MCP SDK and connects a
\`Client\` over \`StdioClientTransport\` to each of the three servers at once (each started under
\`setsid\`, in a session of its own as the platform's registry starts them), until all three are
initialized (then, for comparison, until their tools are listed, as the platform does before it is
ready). ${RUNS} runs each after one warm-up run of each, taking turns; medians.

| | median ms | runs ms |
| --- | ---: | --- |
| platform: spawn → listening (its log) | ${fmt(listening)} | ${runs(platform.map((p) => p.listening))} |
| platform: spawn → \`/ready\` 200 | ${fmt(ready)} | ${runs(platform.map((p) => p.ready))} |
| bare SDK: spawn → three initialized (baseline) | ${fmt(initialized)} | ${runs(bare.map((b) => b.initialized))} |
| bare SDK: spawn → three initialized and their tools listed | ${fmt(listed)} | ${runs(bare.map((b) => b.listed))} |

Ready ÷ the baseline: **${ratio(ready, initialized)}** (target ≤ 1.15×: ${verdict(ready / initialized, 1.15, 'at most')}); ÷ the
bare SDK with the tools listed too: ${ratio(ready, listed)}.
`,
    }
  },
}

const [, script, role] = process.argv
if (script && import.meta.url === pathToFileURL(script).href && role === 'sdk') await bareSdk()
