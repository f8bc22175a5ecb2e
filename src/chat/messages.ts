// Stored events as the messages the LLM sees. One mapping for the turn being built and for the
// history it is built on, so a conversation reads the same to the LLM now and on every later turn.
import type { LlmMessage, ReasoningPart } from '../llm/types.js'
import type { Attachments, ChatEvent, ResourceAttachment } from '../store/types.js'
import type { HistoryMessage } from '../tokens/context.js'

/** The messages the LLM sees for a user message: the prompt's, then the resources and the text. */
export function userMessages(text: string, attachments: Attachments | undefined): LlmMessage[] {
  const leads: LlmMessage[] = (attachments?.prompt?.messages ?? []).map((m) => ({
    role: m.role,
    content: m.content,
  }))
  return [...leads, { role: 'user', content: userContent(text, attachments) }]
}

/** The user message's content: each attached resource, then the text. */
export function userContent(text: string, attachments: Attachments | undefined): string {
  const resources = (attachments?.resources ?? []).map(renderResource)
  return resources.length > 0 ? `${resources.join('\n\n')}\n\n${text}` : text
}

/** A resource as the LLM reads it; one embedded in a prompt message has no server of its own. */
export function renderResource(r: Omit<ResourceAttachment, 'server'> & { server?: string }): string {
  const server = r.server === undefined ? '' : ` server="${attr(r.server)}"`
  const type = r.mime_type === undefined ? '' : ` mime_type="${attr(r.mime_type)}"`
  const attrs = `uri="${attr(r.uri)}"${server}${type}`
  if (r.text !== undefined) return `<resource ${attrs}>\n${r.text}\n</resource>`
  return `<resource ${attrs} bytes="${r.bytes ?? 0}">(binary content, ${r.bytes ?? 0} bytes, not included)</resource>`
}

function attr(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;')
}

/**
 * An event as the messages the LLM sees: one, or for a user message with a prompt attached the
 * prompt's messages first; none for events that are not said (meta).
 */
export function messagesOf(
  event: Pick<ChatEvent, 'type' | 'content' | 'tool_calls' | 'tool_call_id' | 'reasoning_parts'> & {
    attachments?: Attachments
    status?: ChatEvent['status']
  },
): LlmMessage[] {
  switch (event.type) {
    case 'user_message':
      return userMessages(event.content, event.attachments)
    case 'assistant_message':
      return [{ role: 'assistant', content: event.content }]
    case 'tool_call':
      // Its reasoning goes with it: a wire sends it back where its provider requires it. The text
      // alone (`reasoning`) is never part of what the LLM is sent again.
      return [
        {
          role: 'assistant',
          content: event.content,
          tool_calls: event.tool_calls ?? [],
          ...reasoningOf(event),
        },
      ]
    case 'tool_result':
      return [
        {
          role: 'tool',
          tool_call_id: event.tool_call_id ?? '',
          content: event.content,
          ...(event.status === 'error' ? { is_error: true } : {}),
        },
      ]
    default:
      return []
  }
}

/**
 * History events as the LLM sees them, each with the token count stored with it: what was said,
 * including answers cut short. A request tried more than once speaks through its latest attempt
 * only. A tool call whose result was never stored (its turn was cut off) is left out: providers
 * reject a call without its result.
 */
export function toHistory(events: ChatEvent[]): HistoryMessage[] {
  const latest = new Map<string, number>()
  for (const e of events) if (e.type === 'user_message') latest.set(e.request_id, e.seq)
  const current = events.filter((e) => e.seq >= (latest.get(e.request_id) ?? 0))
  const answered = new Set(current.filter((e) => e.type === 'tool_result').map((e) => e.tool_call_id))
  const history: HistoryMessage[] = []
  for (const event of current) {
    if (event.type === 'assistant_message' && !event.content) continue
    if (event.type === 'tool_call') {
      const calls = (event.tool_calls ?? []).filter((c) => answered.has(c.id))
      if (calls.length < (event.tool_calls?.length ?? 0)) {
        // Its stored count covers calls that are left out: counted again.
        if (calls.length)
          history.push({
            message: { role: 'assistant', content: event.content, tool_calls: calls, ...reasoningOf(event) },
          })
        else if (event.content) history.push({ message: { role: 'assistant', content: event.content } })
        continue
      }
    }
    const messages = messagesOf(event)
    const message = messages.at(-1)
    if (!message) continue
    const leads = messages.slice(0, -1)
    history.push({ message, tokens: event.token_count, ...(leads.length ? { leads } : {}) })
  }
  return inCallOrder(history)
}

/**
 * The results of parallel calls are stored as they finish; the LLM reads them in the order of the
 * calls, as the turn that made them sent them, so a conversation reads the same on every turn.
 */
function inCallOrder(history: HistoryMessage[]): HistoryMessage[] {
  let order = new Map<string, number>()
  const position = (h: HistoryMessage): number =>
    h.message.role === 'tool' ? (order.get(h.message.tool_call_id) ?? Infinity) : Infinity
  for (let i = 0; i < history.length;) {
    const { message } = history[i]!
    if (message.role !== 'tool') {
      if (message.role === 'assistant') order = new Map((message.tool_calls ?? []).map((c, k) => [c.id, k]))
      i++
      continue
    }
    let end = i
    while (end < history.length && history[end]!.message.role === 'tool') end++
    const run = history.slice(i, end).sort((a, b) => position(a) - position(b))
    history.splice(i, run.length, ...run)
    i = end
  }
  return history
}

function reasoningOf(event: Pick<ChatEvent, 'reasoning_parts'>): { reasoning?: ReasoningPart[] } {
  return event.reasoning_parts?.length ? { reasoning: event.reasoning_parts } : {}
}
