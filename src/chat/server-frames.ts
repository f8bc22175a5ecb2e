// The server's half of the WebSocket protocol (protocol.md) as TypeBox schemas: every frame the
// platform sends, its chunks, error body, a chat's metadata and the results of the other actions.
// The test client checks each frame it receives against them (test/helpers/frames.ts), so a frame
// that drifts from them, or from docs/protocol.md rendered from them, fails the suite.
import { Type, type Static, type TObject } from '@sinclair/typebox'
import { errors } from '../errors.js'
import { ChatEventSchema, ToolCallSchema, UsageSchema } from '../store/event-schema.js'
import {
  MAX_COUNTED_ISSUES,
  MAX_LISTED_ISSUES,
  REQUEST_ID_PATTERN,
  ValidationIssue,
  type Action,
} from './protocol.js'

const strict = { additionalProperties: false } as const

// Objects the platform builds are strict: a field added without its schema fails the test client.
// What is forwarded from an MCP server as it came (schemas, annotations, prompt messages, resource
// contents) keeps the server's own fields.

const open = { additionalProperties: true } as const
const AnyObject = (description: string) => Type.Record(Type.String(), Type.Unknown(), { description })
const ConversationId = Type.String({ minLength: 1, description: 'The conversation.' })

export const TextChunk = Type.Object(
  {
    type: Type.Literal('text'),
    data: Type.String({ description: "A piece of the assistant's answer; the pieces concatenate." }),
  },
  {
    ...strict,
    description: 'Text of the answer, as the LLM writes it (one chunk per reply when not streaming).',
  },
)
export const ReasoningChunk = Type.Object(
  {
    type: Type.Literal('reasoning'),
    data: Type.String({ description: "A piece of the model's reasoning; the pieces concatenate." }),
  },
  {
    ...strict,
    description:
      'Reasoning the model shows before its answer or its tool calls (`reasoning` / `reasoning_content` deltas of the openai wire, Anthropic thinking), as it arrives; not part of the answer. Stored with the reply it belongs to (`reasoning` of the event).',
  },
)
export const ToolCallChunk = Type.Object(
  {
    type: Type.Literal('tool_call'),
    data: Type.Object(
      {
        id: Type.String({ description: 'The call, as the LLM named it.' }),
        name: Type.String({ description: 'The tool, namespaced `SERVER__TOOL`.' }),
        server: Type.Union([Type.String(), Type.Null()], {
          description: 'Its MCP server; null for a name no server has.',
        }),
        arguments: Type.Unknown({ description: 'The arguments, parsed; the raw text when not valid JSON.' }),
      },
      strict,
    ),
  },
  { ...strict, description: "The LLM's tool call, once complete." },
)
export const ToolResultChunk = Type.Object(
  {
    type: Type.Literal('tool_result'),
    data: Type.Object(
      {
        id: Type.String({ description: 'The call it answers.' }),
        name: Type.String({ description: 'The tool, namespaced.' }),
        is_error: Type.Boolean({
          description:
            'The call failed (invalid arguments, an error result, a timeout, a server down); the turn goes on.',
        }),
        content: Type.String({ description: 'The text the LLM gets as the result.' }),
      },
      strict,
    ),
  },
  { ...strict, description: "The tool's result, when its MCP server answered (or the call failed)." },
)
export const ProgressChunk = Type.Object(
  {
    type: Type.Literal('progress'),
    data: Type.Object(
      {
        id: Type.String({ description: 'The running call.' }),
        name: Type.String({ description: 'The tool, namespaced.' }),
        progress: Type.Number({ description: 'Progress so far, as the MCP server counts it.' }),
        total: Type.Optional(Type.Number({ description: 'The total, when the server knows it.' })),
        message: Type.Optional(Type.String({ description: "The server's words." })),
      },
      strict,
    ),
  },
  { ...strict, description: 'An MCP server reports progress of a running tool call.' },
)
/** The body of a `chunk` frame, by its `type`. */
export const CHUNKS = {
  text: TextChunk,
  reasoning: ReasoningChunk,
  tool_call: ToolCallChunk,
  tool_result: ToolResultChunk,
  progress: ProgressChunk,
} satisfies Record<string, TObject>
export const ChunkBody = Type.Union(Object.values(CHUNKS), {
  title: 'chunk',
  description: 'One of the chunk types below, by its `type`.',
})
export type ChunkBody = Static<typeof ChunkBody>

/** The codes an `error` frame may carry: the table's entries seen in frames. */
const FRAME_ERROR_CODES = Object.entries(errors)
  .filter(([, E]) => E.seen === 'frame')
  .map(([code]) => code)

export const ErrorData = Type.Object(
  {
    validation_errors: Type.Optional(
      Type.Array(ValidationIssue, {
        description: `Every offending field, the first ${MAX_LISTED_ISSUES} of an invalid frame (\`VALIDATION_FAILED\`).`,
      }),
    ),
    validation_errors_more: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: `How many more problems the frame has than are listed; present only when some were left out. Validation stops after ${MAX_COUNTED_ISSUES} problems, so it is a lower bound for a frame with more.`,
      }),
    ),
    retry_after_ms: Type.Optional(
      Type.Integer({ minimum: 0, description: 'When to send the request again (`TOO_MANY_REQUESTS`).' }),
    ),
  },
  {
    ...open,
    description:
      'Details: `validation_errors` (and `validation_errors_more`); `upstream_status`, `upstream_message`, `upstream_type` of the LLM provider; the MCP JSON-RPC error; token counts.',
  },
)
export const ErrorBody = Type.Object(
  {
    code: Type.Integer({ minimum: 400, maximum: 599, description: 'The HTTP-style status.' }),
    // A string to TypeScript; at runtime one of the codes (Errors): a new code must be in the table.
    type: Type.String({
      pattern: `^(${FRAME_ERROR_CODES.join('|')})$`,
      description: 'The stable code: one of the codes in error frames (Errors).',
    }),
    message: Type.String({ description: 'What went wrong, in words a user can act on.' }),
    data: Type.Optional(ErrorData),
  },
  { ...strict, description: 'The `error` of an `error` frame.' },
)
export type ErrorBody = Static<typeof ErrorBody>

export const FINISH_REASONS = {
  stop: 'the LLM finished its answer',
  length: "the LLM's answer was cut at its token limit",
  content_filter: "the provider's content filter stopped the answer",
  tool_limit_reached:
    'the turn ran `chat.service.max_tool_hops` rounds of tool calls; the last calls asked for were not run, and the answer says so',
} as const

export const ChatMetadata = Type.Object(
  {
    conversation_id: ConversationId,
    model: Type.String({ description: 'The model that answered, as the provider named it.' }),
    tokens: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: '`usage.total_tokens`; absent on a replay of a turn stored without usage.',
      }),
    ),
    usage: Type.Optional(
      Type.Object(UsageSchema.properties, {
        ...strict,
        description:
          "Summed over the turn's LLM calls, as the provider reported them (else the platform's count).",
      }),
    ),
    finish_reason: Type.Union(
      (Object.keys(FINISH_REASONS) as (keyof typeof FINISH_REASONS)[]).map((r) => Type.Literal(r)),
      { description: 'Why the answer ended (below).' },
    ),
    tool_hops: Type.Integer({ minimum: 0, description: 'Rounds of tool calls.' }),
    duration_ms: Type.Integer({ minimum: 0, description: 'The time the turn took.' }),
    replayed: Type.Optional(
      Type.Literal(true, { description: 'The stored answer of a finished turn was sent again.' }),
    ),
  },
  { ...strict, description: "The `metadata` of a chat's `complete`." },
)
export type ChatMetadata = Static<typeof ChatMetadata>

// ---- what non-chat actions answer (the `result` of their `complete`) ----

export const ToolView = Type.Object(
  {
    name: Type.String({ description: 'As the LLM sees and calls it: `SERVER__TOOL`.' }),
    server: Type.String({ description: 'Its MCP server.' }),
    description: Type.String(),
    input_schema: AnyObject(
      "The tool's input JSON Schema as the LLM sees it: its server's, adapted to what the provider accepts (arguments are checked against the server's own).",
    ),
    annotations: AnyObject("The server's annotations (`readOnlyHint`, …); `{}` when none."),
  },
  { ...strict, title: 'tool', description: 'A tool, as the LLM sees it.' },
)
export const PromptArgumentView = Type.Object(
  {
    name: Type.String(),
    description: Type.Optional(Type.String()),
    required: Type.Optional(Type.Boolean()),
  },
  { ...open, title: 'prompt argument', description: "A prompt's argument, as its server gave it." },
)
export const PromptView = Type.Object(
  {
    server: Type.String({ description: 'Its MCP server.' }),
    name: Type.String({ description: 'Its name on that server.' }),
    description: Type.String({ description: 'Its description (or title); empty when it has none.' }),
    arguments: Type.Array(PromptArgumentView, { description: '`{name, description, required}` each.' }),
  },
  { ...strict, title: 'prompt', description: 'A prompt of an MCP server.' },
)
export const PromptMessageView = Type.Object(
  {
    role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]),
    content: Type.Object(
      { type: Type.String({ description: '`text`, `image`, `audio`, `resource_link`, `resource`.' }) },
      { ...open, description: 'An MCP content block.' },
    ),
  },
  { ...open, title: 'prompt message', description: "A prompt's message, as its server gave it." },
)
const ResourceFields = {
  server: Type.String({ description: 'Its MCP server.' }),
  name: Type.String(),
  mime_type: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
}
export const ResourceView = Type.Object(
  { ...ResourceFields, uri: Type.String() },
  { ...strict, title: 'resource', description: 'A resource of an MCP server.' },
)
export const ResourceTemplateView = Type.Object(
  { ...ResourceFields, uri_template: Type.String({ description: 'An RFC 6570 URI template.' }) },
  { ...strict, title: 'resource template', description: 'A resource template of an MCP server.' },
)
const ContentsFields = { uri: Type.String(), mimeType: Type.Optional(Type.String()) }
export const ResourceContentsView = Type.Union(
  [
    Type.Object({ ...ContentsFields, text: Type.String() }, open),
    Type.Object({ ...ContentsFields, blob: Type.String({ description: 'Base64.' }) }, open),
  ],
  {
    title: 'resource contents',
    description: "A resource's contents, as its server gave them: `text`, or `blob` (base64).",
  },
)
export const ConversationView = Type.Object(
  {
    id: ConversationId,
    created: Type.String({ description: 'ISO 8601, UTC.' }),
    updated: Type.String({ description: 'ISO 8601, UTC: its last event.' }),
    title: Type.String({ description: 'The first user text, cut.' }),
  },
  { ...strict, title: 'conversation', description: 'A conversation of this principal.' },
)
export const EventView = Type.Composite(
  [
    Type.Omit(ChatEventSchema, ['instance', 'principal', 'reasoning_parts', 'tool_calls']),
    Type.Object({ tool_calls: Type.Optional(Type.Array(Type.Omit(ToolCallSchema, ['extra_content']))) }),
  ],
  {
    ...strict,
    title: 'event',
    description:
      "A stored event of the conversation, as stored (without whose and which process, and without the provider's own data: its form of the reasoning, what it attached to a tool call).",
  },
)

/** What each non-chat action answers: the `result` of its `complete`. */
export const RESULTS = {
  cancel: Type.Object(
    { cancelled: Type.Literal(true) },
    {
      ...strict,
      description:
        'The request was told to stop: it ends `cancelled`, unless it finished meanwhile (then as it finished).',
    },
  ),
  list_tools: Type.Object({ tools: Type.Array(ToolView) }, strict),
  list_prompts: Type.Object({ prompts: Type.Array(PromptView) }, strict),
  get_prompt: Type.Object(
    { messages: Type.Array(PromptMessageView), description: Type.Optional(Type.String()) },
    strict,
  ),
  list_resources: Type.Object(
    { resources: Type.Array(Type.Union([ResourceView, ResourceTemplateView])) },
    strict,
  ),
  read_resource: Type.Object({ contents: Type.Array(ResourceContentsView) }, strict),
  list_conversations: Type.Object({ conversations: Type.Array(ConversationView) }, strict),
  get_history: Type.Object({ events: Type.Array(EventView) }, strict),
  ping: Type.Object({ pong: Type.Literal(true) }, strict),
} satisfies Record<Exclude<Action, 'chat'>, TObject>
/** What action A answers, typed: for the module of non-chat actions to build. */
export type ActionResult<A extends keyof typeof RESULTS> = Static<(typeof RESULTS)[A]>

// ---- the frames ----

const ReplyId = Type.String({
  pattern: REQUEST_ID_PATTERN,
  description: "The `request_id` of the client's frame it answers.",
})

export const ProcessingFrame = Type.Object(
  {
    request_id: ReplyId,
    status: Type.Literal('processing'),
    metadata: Type.Object({ conversation_id: ConversationId }, strict),
  },
  {
    ...strict,
    description: 'A chat was accepted: first frame of a chat, with its conversation (new or given).',
  },
)
export const ChunkFrame = Type.Object(
  { request_id: ReplyId, status: Type.Literal('chunk'), chunk: ChunkBody },
  { ...strict, description: "A part of a chat's answer, in order." },
)
export const ChatCompleteFrame = Type.Object(
  { request_id: ReplyId, status: Type.Literal('complete'), metadata: ChatMetadata },
  { ...strict, description: 'A chat finished.' },
)
export const ActionCompleteFrame = Type.Object(
  {
    request_id: ReplyId,
    status: Type.Literal('complete'),
    result: Type.Union(Object.values(RESULTS), {
      title: 'result',
      description: 'What the action answers, by action (below).',
    }),
  },
  { ...strict, description: "Another action's answer." },
)
/** A `complete` is one of the two above. */
export const CompleteFrame = Type.Union([ChatCompleteFrame, ActionCompleteFrame])
export const ErrorFrame = Type.Object(
  {
    request_id: Type.Union([ReplyId, Type.Null()], {
      description: 'null when the frame it answers has no readable `request_id`.',
    }),
    status: Type.Literal('error'),
    error: ErrorBody,
  },
  { ...strict, description: 'The request failed: its terminal frame.' },
)
export const CancelledFrame = Type.Object(
  {
    request_id: ReplyId,
    status: Type.Literal('cancelled'),
    metadata: Type.Object(
      {
        conversation_id: Type.Optional(
          Type.String({
            minLength: 1,
            description: 'Absent when the request had no conversation yet (or never has one).',
          }),
        ),
      },
      strict,
    ),
  },
  { ...strict, description: 'The request was stopped by `cancel` or a closed socket: its terminal frame.' },
)

/** Every frame the server sends, by its `status`. */
export const SERVER_FRAMES = {
  processing: ProcessingFrame,
  chunk: ChunkFrame,
  complete: CompleteFrame,
  error: ErrorFrame,
  cancelled: CancelledFrame,
}
export const ServerFrame = Type.Union(Object.values(SERVER_FRAMES))
export type ServerFrame = Static<typeof ServerFrame>
