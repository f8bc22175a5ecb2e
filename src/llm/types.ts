// The provider-neutral shape of an LLM call. Each wire (openai, anthropic) is one file that turns
// an LlmRequest into its HTTP request and its reply back into LlmEvents.

import type { ImageType } from '../util/image.js'

export interface ToolCall {
  /** The provider's id for this call (`call_…`, `toolu_…`), echoed back with the result. */
  id: string
  /** The tool's name as the LLM saw it (`SERVER__TOOL`). */
  name: string
  /** The arguments exactly as the LLM wrote them (a JSON text, possibly invalid). */
  arguments: string
  /**
   * What the provider attached to the call to have it back with the call (openai wire: Gemini's
   * `extra_content.google.thought_signature`, which Gemini 3 refuses the next request without).
   */
  extra_content?: Record<string, unknown>
}

/**
 * Reasoning as a provider gave it, kept to be given back as it came where the provider requires it
 * (opaque to the platform; each wire sends back only its own kinds).
 */
export type ReasoningPart =
  /** Anthropic: a thinking block, its signature authenticating it when it is sent back. */
  | { type: 'thinking'; thinking: string; signature: string }
  /** Anthropic: a thinking block the provider encrypted; only its data travels. */
  | { type: 'redacted_thinking'; data: string }
  /** openai wire: the `reasoning_content` of a message (DeepSeek, vLLM). */
  | { type: 'reasoning_content'; text: string }

export type LlmMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | {
      role: 'assistant'
      content: string
      tool_calls?: ToolCall[]
      /** The reply's reasoning, for the wires that send it back (with tool calls). */
      reasoning?: ReasoningPart[]
    }
  | {
      role: 'tool'
      tool_call_id: string
      /** The result as text; images are described in it too, so a model without vision reads it alone. */
      content: string
      /** The tool failed (Anthropic's `is_error`). */
      is_error?: boolean
      /** Images the tool returned, for a model that takes them (vision.ts); only within their turn. */
      images?: ImagePart[]
    }

/** An image as a tool returned it, checked to be what its bytes say (src/util/image.ts). */
export interface ImagePart {
  /** Read from the bytes, not taken from the tool: providers refuse a type that does not match. */
  mime_type: ImageType
  /** Base64, without line breaks. */
  data: string
  /** Decoded size. */
  bytes: number
  /** Pixels, when the header tells. */
  width?: number
  height?: number
}

export interface ToolSpec {
  name: string
  description: string
  /** JSON Schema of the arguments, already adapted to what the provider accepts. */
  input_schema: Record<string, unknown>
}

export interface LlmRequest {
  messages: LlmMessage[]
  tools?: ToolSpec[]
  /** Overrides the configured model for this call. */
  model?: string
  stream: boolean
}

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter'

/**
 * What a provider yields for one call, in order: any number of `reasoning` and `text` deltas (one
 * of each, whole, when not streaming; reasoning comes first), then each `reasoning_part` to keep,
 * then each complete `tool_call`, then exactly one `done`. A failure is thrown from the iterator as
 * a PlatformError (LLM_UPSTREAM_ERROR, LLM_STREAM_BROKEN, LLM_BAD_RESPONSE, LLM_TIMEOUT), or an
 * AbortError when the signal fired.
 */
export type LlmEvent =
  | { type: 'text'; text: string }
  /** Reasoning text the model shows before (or between) its answer, as it arrives. */
  | { type: 'reasoning'; text: string }
  /** The reply's reasoning as the provider needs it back (LlmMessage `reasoning`), once complete. */
  | { type: 'reasoning_part'; part: ReasoningPart }
  | { type: 'tool_call'; call: ToolCall }
  | { type: 'done'; finish_reason: FinishReason; usage?: Usage; model: string }

export interface LlmProvider {
  /** The configured provider's name (`groq`, `openai`, `ollama`, …). */
  readonly name: string
  /** The configured default model. */
  readonly model: string
  chat(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmEvent>
  close(): Promise<void>
}
