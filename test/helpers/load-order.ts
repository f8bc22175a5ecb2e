// Preloaded into a platform process (`node --import dist/test/helpers/load-order.js …`): records
// every module file the process loads (ES modules through a loader hook, CommonJS files as they are
// compiled), which of them were loaded when the process first spawned a child, and the children's
// process ids. Written as JSON to the file named by LOAD_ORDER_FILE when the process exits. No clock
// is involved: what counts is what was loaded before the first spawn() call, in program order.
import childProcess from 'node:child_process'
import { writeFileSync } from 'node:fs'
import Module, { register, syncBuiltinESMExports } from 'node:module'
import { pathToFileURL } from 'node:url'
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads'

export interface LoadOrder {
  /** Module files (file: URLs) loaded before the first child process was spawned; null: none was. */
  beforeFirstSpawn: string[] | null
  /** Every module file loaded until exit, in order. */
  all: string[]
  /** The process ids of the children it spawned. */
  spawned: number[]
}

const target = process.env.LOAD_ORDER_FILE
if (!target) throw new Error('load-order: set LOAD_ORDER_FILE')

const loaded = new Set<string>()
const { port1, port2 } = new MessageChannel()
port1.unref()
// The hooks run on a thread of their own: each URL they load is posted here, and drained
// synchronously (receiveMessageOnPort) whenever the list is read, so nothing loaded is missed.
register('./load-order-hooks.js', import.meta.url, { data: { port: port2 }, transferList: [port2] })
function drain(): void {
  for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1))
    loaded.add(m.message as string)
}

// CommonJS files required by other CommonJS files never reach the ES module hooks.
type Compile = (this: unknown, content: string, filename: string, ...rest: unknown[]) => unknown
const proto = (Module as unknown as { prototype: { _compile: Compile } }).prototype
const compile = proto._compile
proto._compile = function (content, filename, ...rest) {
  drain()
  loaded.add(pathToFileURL(filename).href)
  return compile.call(this, content, filename, ...rest)
}

let beforeFirstSpawn: string[] | null = null
const spawned: number[] = []
const spawn = childProcess.spawn
childProcess.spawn = function (this: unknown, ...args: unknown[]) {
  if (beforeFirstSpawn === null) {
    drain()
    beforeFirstSpawn = [...loaded]
  }
  const child = (spawn as (...a: unknown[]) => childProcess.ChildProcess).apply(this, args)
  if (child.pid !== undefined) spawned.push(child.pid)
  return child
} as typeof childProcess.spawn
// `import { spawn } from 'node:child_process'` reads the builtin's ES exports: bring them in line.
syncBuiltinESMExports()

process.on('exit', () => {
  drain()
  const order: LoadOrder = { beforeFirstSpawn, all: [...loaded], spawned }
  writeFileSync(target, JSON.stringify(order))
})
