// The loader hooks of load-order.ts, on their own thread: every file module loaded is posted back.
import type { MessagePort } from 'node:worker_threads'

let port: MessagePort

export function initialize(data: { port: MessagePort }): void {
  port = data.port
}

type Next = (url: string, context: unknown) => Promise<unknown>

export async function load(url: string, context: unknown, next: Next): Promise<unknown> {
  const result = await next(url, context)
  if (url.startsWith('file:')) port.postMessage(url)
  return result
}
