// The stored event (architecture.md, Events) as one TypeBox schema, compiled once: every event a
// repository writes and every line the jsonl repository reads is checked against it, so a bad
// record is refused at the door and a damaged one is recognised when read back.
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { ChatEvent } from './types.js'

const strict = { additionalProperties: false } as const
const count = Type.Integer({ minimum: 0 })

export const ToolCallSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    arguments: Type.String(),
    // The provider's own data for the call, given back with it (llm/types.ts ToolCall).
    extra_content: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  strict,
)

/** A reply's reasoning as the provider gave it (llm/types.ts ReasoningPart), kept to be sent back. */
export const ReasoningPartSchema = Type.Union([
  Type.Object({ type: Type.Literal('thinking'), thinking: Type.String(), signature: Type.String() }, strict),
  Type.Object({ type: Type.Literal('redacted_thinking'), data: Type.String() }, strict),
  Type.Object({ type: Type.Literal('reasoning_content'), text: Type.String() }, strict),
])

export const UsageSchema = Type.Object(
  { prompt_tokens: count, completion_tokens: count, total_tokens: count },
  strict,
)

/** What a user_message brought besides its text: an MCP prompt's messages, resources' contents. */
export const AttachmentsSchema = Type.Object(
  {
    prompt: Type.Optional(
      Type.Object(
        {
          server: Type.String(),
          name: Type.String(),
          arguments: Type.Record(Type.String(), Type.String()),
          messages: Type.Array(
            Type.Object(
              { role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]), content: Type.String() },
              strict,
            ),
          ),
        },
        strict,
      ),
    ),
    resources: Type.Optional(
      Type.Array(
        Type.Object(
          {
            server: Type.String(),
            uri: Type.String(),
            mime_type: Type.Optional(Type.String()),
            text: Type.Optional(Type.String()),
            bytes: Type.Optional(count),
          },
          strict,
        ),
      ),
    ),
  },
  strict,
)

export const ChatEventSchema = Type.Object(
  {
    id: Type.String({ minLength: 1 }),
    conversation_id: Type.String({ minLength: 1 }),
    seq: Type.Integer({ minimum: 1 }),
    // UTC with milliseconds, as Date#toISOString writes it: such strings sort by time.
    timestamp: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$' }),
    type: Type.Union([
      Type.Literal('user_message'),
      Type.Literal('assistant_message'),
      Type.Literal('tool_call'),
      Type.Literal('tool_result'),
      Type.Literal('system_update'),
      Type.Literal('meta'),
    ]),
    role: Type.Union([
      Type.Literal('system'),
      Type.Literal('user'),
      Type.Literal('assistant'),
      Type.Literal('tool'),
    ]),
    content: Type.String(),
    tool_calls: Type.Optional(Type.Array(ToolCallSchema)),
    tool_call_id: Type.Optional(Type.String()),
    request_id: Type.String({ minLength: 1 }),
    principal: Type.String({ minLength: 1 }),
    model: Type.Optional(Type.String()),
    usage: Type.Optional(UsageSchema),
    token_count: Type.Optional(count),
    status: Type.Union([Type.Literal('complete'), Type.Literal('interrupted'), Type.Literal('error')]),
    finish_reason: Type.Optional(
      Type.Union([
        Type.Literal('stop'),
        Type.Literal('length'),
        Type.Literal('content_filter'),
        Type.Literal('tool_limit_reached'),
      ]),
    ),
    reasoning: Type.Optional(Type.String()),
    reasoning_parts: Type.Optional(Type.Array(ReasoningPartSchema)),
    instance: Type.Optional(Type.String({ minLength: 1 })),
    attachments: Type.Optional(AttachmentsSchema),
  },
  strict,
)

// The interface in types.ts and this schema must describe the same record: adding a field to
// one and not the other fails to compile here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const sameShape: Same<Static<typeof ChatEventSchema>, ChatEvent> = true
void sameShape

export const chatEventCheck = TypeCompiler.Compile(ChatEventSchema)

/** The first schema violation of a value, for logs and errors; undefined when it is an event. */
export function eventProblem(value: unknown): string | undefined {
  if (chatEventCheck.Check(value)) return undefined
  const first = chatEventCheck.Errors(value).First()
  return first ? `${first.path || '/'}: ${first.message}` : 'not an event'
}
