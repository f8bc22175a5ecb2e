// The context of one turn: the system prompt, the tool schemas, as much history as the budget
// allows, and the new user message (architecture.md, data flow step 3).
//
// History is cut into units that are kept or left out whole: an assistant message with tool calls
// together with their results (providers reject a call without its result, and a result without
// its call), every other message alone. Units are taken newest first; the kept history is always a
// contiguous suffix, because a conversation with a hole in the middle reads as something nobody
// said.
//
// The last `preserveRecent` messages are kept even when they alone exceed the budget, and the
// accounting says `over_budget: true`. Dropping them would hide the exchange the new message most
// likely refers to, and the model would answer confidently without it; an over-full context, by
// contrast, is loud (the provider refuses it) and usually still fits, because `max_tokens` is the
// platform's budget, not the model's window, and `reserve_tokens` leaves room besides.
//
// History holds no image: a stored tool result keeps the description of its images, which go to
// the LLM only within the turn that produced them (docs/mcp.md, "Images"). Within that turn an
// image counts at an estimate from its pixels (counter.ts, `countMessage`), never by its base64.
import { errors, withData } from '../errors.js'
import type { LlmMessage, ToolSpec } from '../llm/types.js'
import { countMessage, countSystem, countTools, MESSAGE_OVERHEAD, REPLY_PRIMING } from './counter.js'

export interface HistoryMessage {
  message: LlmMessage
  /**
   * Messages sent right before this one and only with it (an MCP prompt's messages before the
   * user's text): one unit, kept or left out whole.
   */
  leads?: LlmMessage[]
  /** `countMessage` of the leads and the message together, as stored with the event; computed when absent. */
  tokens?: number
}

export interface ContextInput {
  system: string
  tools: ToolSpec[]
  /** The conversation so far, oldest first. */
  history: HistoryMessage[]
  /** The new user message. */
  user: string
  /** Messages sent right before the new user message (an MCP prompt's). */
  userLeads?: LlmMessage[]
  /** `countMessage` of the new user message and its leads when already known (stored with its event). */
  userTokens?: number
  model: string
  maxTokens: number
  reserveTokens: number
  preserveRecent: number
}

/** What the context costs, for DEBUG_TOKENS and the turn's log. */
export interface ContextAccounting {
  /** `maxTokens - reserveTokens`. */
  budget: number
  system: number
  tools: number
  user: number
  /** Tokens that prime the reply, once per request. */
  reply_priming: number
  /** Every history message given, kept or not. */
  history_total: number
  history_kept: number
  messages_kept: number
  /** History messages not sent: older ones past the budget, and orphan tool results. */
  messages_trimmed: number
  /** Tool results whose call is not in the history (included in `messages_trimmed`). */
  orphans_dropped: number
  /** How many of the kept messages were kept by `preserveRecent`, whatever their size. */
  messages_preserved: number
  total: number
  /** `total > budget`: the preserved messages alone did not fit. */
  over_budget: boolean
  /** Each sent message's tokens, in the order of `messages`. */
  per_message: number[]
}

export interface ContextResult {
  /** The system prompt, the kept history, the new user message. */
  messages: LlmMessage[]
  accounting: ContextAccounting
}

interface Counted {
  message: LlmMessage
  tokens: number
}

interface Unit {
  entries: Counted[]
  tokens: number
}

/** What every context of a turn holds whatever the history: the part checked by `checkFixed`. */
export interface FixedInput {
  system: string
  tools: ToolSpec[]
  /** `countMessage` of the new user message and its leads. */
  userTokens: number
  model: string
  maxTokens: number
  reserveTokens: number
}

export interface FixedCost {
  /** `maxTokens - reserveTokens`. */
  budget: number
  system: number
  tools: number
  user: number
  /** system + tools + REPLY_PRIMING + user: what is left of the budget is room for history. */
  fixed: number
}

/**
 * Counts the system prompt, the tool schemas, the reply priming and the new user message, and
 * throws errors.CONTEXT_TOO_LARGE (413) when they alone exceed the budget: no history can make such a
 * turn fit. buildContext's own check, exported so a turn can be refused before it is stored.
 */
export function checkFixed(input: FixedInput): FixedCost {
  const { model, userTokens: user } = input
  const budget = input.maxTokens - input.reserveTokens
  // Both are counted once and read back in later turns (counter.ts): this check runs twice a turn.
  const system = countSystem(input.system, model)
  const tools = countTools(input.tools, model)
  const fixed = system + tools + REPLY_PRIMING + user
  if (fixed > budget) {
    throw withData(new errors.CONTEXT_TOO_LARGE(user, fixed - user, budget), {
      message_tokens: user,
      system_tokens: system,
      tool_tokens: tools,
      budget,
    })
  }
  return { budget, system, tools, user, fixed }
}

/** Throws errors.CONTEXT_TOO_LARGE (413) when the system prompt, tools and new message alone do not fit. */
export function buildContext(input: ContextInput): ContextResult {
  const { model } = input
  const userEntries = counted(
    { message: { role: 'user', content: input.user }, leads: input.userLeads, tokens: input.userTokens },
    model,
  )
  const { budget, system, tools, user, fixed } = checkFixed({ ...input, userTokens: sum(userEntries) })
  const systemMessage: LlmMessage = { role: 'system', content: input.system }

  const { units, total: historyTotal, messages: historyMessages, orphans } = toUnits(input.history, model)
  // Newest first: the units covering the last `preserveRecent` messages whatever they cost, then
  // older ones while they fit, stopping at the first that does not.
  let start = units.length
  let kept = 0
  let preserved = 0
  while (start > 0 && preserved < input.preserveRecent) {
    const unit = units[--start]!
    kept += unit.tokens
    preserved += unit.entries.length
  }
  const room = budget - fixed
  while (start > 0 && kept + units[start - 1]!.tokens <= room) kept += units[--start]!.tokens

  const sent = units.slice(start).flatMap((u) => u.entries)
  const total = fixed + kept
  return {
    messages: [systemMessage, ...sent.map((e) => e.message), ...userEntries.map((e) => e.message)],
    accounting: {
      budget,
      system,
      tools,
      user,
      reply_priming: REPLY_PRIMING,
      history_total: historyTotal,
      history_kept: kept,
      messages_kept: sent.length,
      messages_trimmed: historyMessages - sent.length,
      orphans_dropped: orphans,
      messages_preserved: preserved,
      total,
      over_budget: total > budget,
      per_message: [system, ...sent.map((e) => e.tokens), ...userEntries.map((e) => e.tokens)],
    },
  }
}

/**
 * A history message and its leads, each with its count: the leads' are computed (they are short),
 * the message's is what remains of the stored count, so a long message is never counted again.
 * A remainder smaller than any message costs (the count was stored under another encoding, or
 * the leads now count for more) is not a count: the message is counted then.
 */
function counted(history: HistoryMessage, model: string): Counted[] {
  const leads = (history.leads ?? []).map((message) => ({ message, tokens: countMessage(message, model) }))
  const rest = history.tokens === undefined ? undefined : history.tokens - sum(leads)
  const own = rest === undefined || rest < MESSAGE_OVERHEAD ? countMessage(history.message, model) : rest
  return [...leads, { message: history.message, tokens: own }]
}

function sum(entries: Counted[]): number {
  return entries.reduce((n, e) => n + e.tokens, 0)
}

/** History as units, each message counted once; tool results without their call are dropped. */
function toUnits(
  history: HistoryMessage[],
  model: string,
): { units: Unit[]; total: number; messages: number; orphans: number } {
  const units: Unit[] = []
  let total = 0
  let messages = 0
  let orphans = 0
  // The unit of the last assistant message with tool calls, while its results follow it.
  let open: { unit: Unit; ids: Set<string> } | undefined
  for (const item of history) {
    const { message } = item
    const entries = counted(item, model)
    const entry = entries.at(-1)!
    total += sum(entries)
    messages += entries.length
    if (message.role === 'tool') {
      if (open?.ids.has(message.tool_call_id)) {
        open.unit.entries.push(entry)
        open.unit.tokens += entry.tokens
      } else {
        orphans++
      }
      continue
    }
    const unit = { entries, tokens: sum(entries) }
    units.push(unit)
    open =
      message.role === 'assistant' && message.tool_calls?.length
        ? { unit, ids: new Set(message.tool_calls.map((c) => c.id)) }
        : undefined
  }
  return { units, total, messages, orphans }
}
