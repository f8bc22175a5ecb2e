// Which platform instance runs a turn, and whether it still lives: a turn whose instance is gone
// (its process crashed or was killed, or its app closed) may be run again with the same
// request_id; one whose instance lives is still running, anywhere on this machine (409).
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'

/** Instances of this process that are open (several apps may share one process, as in tests). */
const openHere = new Set<string>()

export function openInstance(): string {
  const id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  openHere.add(id)
  return id
}

export function closeInstance(id: string): void {
  openHere.delete(id)
}

export function isInstanceAlive(id: string): boolean {
  const [host, pidText] = id.split(':')
  // Another machine's process cannot be checked from here; assume it lives (a shared jsonl file
  // is for one machine; PostgreSQL deployments need their own lease, see architecture.md).
  if (host !== hostname()) return true
  const pid = Number(pidText)
  if (pid === process.pid) return openHere.has(id)
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
