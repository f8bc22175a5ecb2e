// Which platform instance runs a turn, and whether it still lives: a turn whose instance is gone
// (its process crashed or was killed, or its app closed) may be run again with the same
// request_id; one whose instance lives is still running, anywhere on this machine (409).
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'

/**
 * Instances of this process that are open (several apps may share one process, as in tests), each
 * with what says whether one of its turns, by its attempt, is still in flight.
 */
const openHere = new Map<string, (attempt: string) => boolean>()

/** `inFlight`: whether the new instance still runs the turn of this attempt (its request table). */
export function openInstance(inFlight: (attempt: string) => boolean): string {
  const id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  openHere.set(id, inFlight)
  return id
}

/** What a turn is stored with: its instance, and which of the instance's attempts it is. */
export function attemptOf(instance: string, attempt: string): string {
  return `${instance}/${attempt}`
}

export function closeInstance(id: string): void {
  openHere.delete(id)
}

export function isInstanceAlive(id: string): boolean {
  const [base = '', attempt] = id.split('/')
  const [host, pidText] = base.split(':')
  // Another machine's process cannot be checked from here; assume it lives (a shared jsonl file
  // is for one machine; PostgreSQL deployments need their own lease, see architecture.md).
  if (host !== hostname()) return true
  const pid = Number(pidText)
  if (pid === process.pid) {
    // A turn this process left open in the store (storing how it ended failed) runs no more.
    const inFlight = openHere.get(base)
    return inFlight !== undefined && (attempt === undefined || inFlight(attempt))
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
