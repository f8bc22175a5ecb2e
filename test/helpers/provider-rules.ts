// What the real provider APIs refuse, so a stand-in refuses it too: a lenient stand-in hides the
// bugs users meet. Each rule says the documented rule and where it is documented; it returns the
// API's own error message when a request breaks it. `startLlmServer({ refuse: openAiRefusals(...) })`.
import type { LlmReply, RecordedRequest } from './llm-server.js'

/** One documented rule: the refusal's message when `body` breaks it, else undefined. */
export type Rule = (body: Record<string, unknown>) => string | undefined

/**
 * OpenAI's error reply: HTTP 400 with `{"error": {"message", "type": "invalid_request_error",
 * "param", "code"}}` (https://platform.openai.com/docs/guides/error-codes).
 */
export function openAiRefusals(...rules: Rule[]): (req: RecordedRequest) => LlmReply | undefined {
  return (req) => {
    const message = firstRefusal(rules, req)
    if (message === undefined) return undefined
    return {
      status: 400,
      json: { error: { message, type: 'invalid_request_error', param: null, code: null } },
    }
  }
}

/**
 * Anthropic's error reply: HTTP 400 with `{"type": "error", "error": {"type":
 * "invalid_request_error", "message"}}` (https://docs.anthropic.com/en/api/errors).
 */
export function anthropicRefusals(...rules: Rule[]): (req: RecordedRequest) => LlmReply | undefined {
  return (req) => {
    const message = firstRefusal(rules, req)
    if (message === undefined) return undefined
    return { status: 400, json: { type: 'error', error: { type: 'invalid_request_error', message } } }
  }
}

function firstRefusal(rules: Rule[], req: RecordedRequest): string | undefined {
  const body: unknown = req.body
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the request body is not a JSON object'
  for (const rule of rules) {
    const message = rule(body as Record<string, unknown>)
    if (message !== undefined) return message
  }
  return undefined
}
