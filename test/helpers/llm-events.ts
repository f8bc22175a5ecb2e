// Reading what a provider yields, for the wire tests.
import type { PlatformError } from '../../src/errors.js'
import type { LlmEvent, LlmRequest } from '../../src/llm/types.js'

/** A one-message request. */
export function ask(stream = true): LlmRequest {
  return { messages: [{ role: 'user', content: 'Hi' }], stream }
}

/** Every event up to the end or the failure, and the failure. */
export async function run(
  events: AsyncIterable<LlmEvent>,
): Promise<{ events: LlmEvent[]; error?: PlatformError }> {
  const seen: LlmEvent[] = []
  try {
    for await (const e of events) seen.push(e)
  } catch (error) {
    return { events: seen, error: error as PlatformError }
  }
  return { events: seen }
}

/** Every event; rejects with the failure if there is one. */
export async function collect(events: AsyncIterable<LlmEvent>): Promise<LlmEvent[]> {
  const { events: seen, error } = await run(events)
  if (error) throw error
  return seen
}
