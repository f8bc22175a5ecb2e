// The WebSocket protocol's frames (protocol.md) as TypeBox schemas, both halves: the client's
// frames (checked here at runtime, compiled once) and the server's (checked by the test client on
// every frame it receives). The TypeScript types come from the same definitions, and
// docs/protocol.md is rendered from them.
import { Kind, Type, type Static, type TObject, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { errors } from '../errors.js'
import { ChatEventSchema, UsageSchema } from '../store/event-schema.js'

const strict = { additionalProperties: false } as const

export const REQUEST_ID_PATTERN = '^[A-Za-z0-9._:-]{1,128}$'
export const RequestId = Type.String({ pattern: REQUEST_ID_PATTERN })

const ServerName = Type.String({ minLength: 1, maxLength: 64, description: 'An MCP server, by its name.' })
const ResourceUri = Type.String({ minLength: 1, maxLength: 2048, description: 'A resource URI.' })
const PromptArguments = Type.Record(Type.String(), Type.String({ maxLength: 100_000 }), {
  description: "The prompt's arguments, each a string.",
})

export const PromptRef = Type.Object(
  {
    server: ServerName,
    name: Type.String({
      minLength: 1,
      maxLength: 256,
      description: 'The prompt, by its name on that server.',
    }),
    arguments: Type.Optional(PromptArguments),
  },
  { ...strict, description: 'An MCP prompt: `{server, name, arguments}`.' },
)
export const ResourceRef = Type.Union([
  ResourceUri,
  Type.Object(
    { server: ServerName, uri: ResourceUri },
    { ...strict, description: 'A resource of that server.' },
  ),
])
export const MAX_ATTACHED_RESOURCES = 16

export const ChatPayload = Type.Object(
  {
    text: Type.String({
      minLength: 1,
      description: "The user's message; longer than `chat.service.max_input_chars` is a 413.",
    }),
    conversation_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: 'Continue this conversation; absent: a new one is created and returned in `processing`.',
      }),
    ),
    model: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: "Overrides the provider's configured model.",
      }),
    ),
    streaming: Type.Optional(
      Type.Boolean({
        description: 'Overrides `chat.service.streaming.enabled`; false: the answer comes as one chunk.',
      }),
    ),
    prompt: Type.Optional(
      Type.Object(PromptRef.properties, {
        ...strict,
        description:
          'An MCP prompt `{server, name, arguments}`: its messages go to the LLM before the text, and are stored with the turn.',
      }),
    ),
    resources: Type.Optional(
      Type.Array(ResourceRef, {
        maxItems: MAX_ATTACHED_RESOURCES,
        description:
          'MCP resources to attach as context: URIs, or `{server, uri}` where several servers offer one. Text is attached; binary contents are described by type and size. Stored with the turn.',
      }),
    ),
  },
  { ...strict, description: 'Runs one chat turn: history, LLM, answer.' },
)
export const CancelPayload = Type.Object(
  {
    target_request_id: Type.String({
      pattern: REQUEST_ID_PATTERN,
      description:
        'The `request_id` of a running `chat`, `get_prompt` or `read_resource` on this connection.',
    }),
  },
  {
    ...strict,
    description:
      "Stops that request: a `chat`'s LLM stream is aborted, a `get_prompt` or `read_resource` is cancelled on its MCP server, and the request ends `cancelled`.",
  },
)
export const PingPayload = Type.Object({}, { ...strict, description: 'Checks that the connection is alive.' })

export const ListToolsPayload = Type.Object(
  {},
  {
    ...strict,
    description: 'Every tool of every connected MCP server, as the LLM sees it.',
  },
)

export const ListPromptsPayload = Type.Object(
  {},
  {
    ...strict,
    description: 'Every prompt of every connected MCP server.',
  },
)
export const GetPromptPayload = Type.Object(PromptRef.properties, {
  ...strict,
  description:
    "The prompt's messages, as the server gives them. Unknown server or prompt: 404; a required argument missing: 400.",
})
export const ListResourcesPayload = Type.Object(
  {},
  {
    ...strict,
    description: 'Every resource and resource template of every connected MCP server.',
  },
)
export const ReadResourcePayload = Type.Object(
  {
    server: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'The MCP server; may be left out when exactly one server offers the URI.',
      }),
    ),
    uri: ResourceUri,
  },
  {
    ...strict,
    description:
      "The resource's contents, as the server gives them. Unknown: 404; offered by several servers and no `server`: 400.",
  },
)

export const ListConversationsPayload = Type.Object(
  {
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100, description: 'At most this many (default 20).' }),
    ),
    before: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description:
          'Only conversations updated before this time (the `updated` of the last one seen), for paging.',
      }),
    ),
  },
  {
    ...strict,
    description: "This principal's conversations, newest first.",
  },
)
export const GetHistoryPayload = Type.Object(
  {
    conversation_id: Type.String({ minLength: 1, maxLength: 128, description: 'The conversation to read.' }),
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'At most this many events, the newest (default 100).',
      }),
    ),
    before_seq: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Only events with a smaller `seq`, for paging back.' }),
    ),
  },
  {
    ...strict,
    description: "The conversation's events in `seq` order. Unknown or not yours: 404.",
  },
)

/** Every action this version serves, with its payload schema. */
export const PAYLOADS = {
  chat: ChatPayload,
  cancel: CancelPayload,
  list_tools: ListToolsPayload,
  list_prompts: ListPromptsPayload,
  get_prompt: GetPromptPayload,
  list_resources: ListResourcesPayload,
  read_resource: ReadResourcePayload,
  list_conversations: ListConversationsPayload,
  get_history: GetHistoryPayload,
  ping: PingPayload,
} satisfies Record<string, TObject>

export type Action = keyof typeof PAYLOADS
export type ChatPayload = Static<typeof ChatPayload>
export type CancelPayload = Static<typeof CancelPayload>

const frameOf = <A extends Action>(action: A) =>
  Type.Object({ action: Type.Literal(action), request_id: RequestId, payload: PAYLOADS[action] }, strict)

/** The envelope every frame shares, checked when the action is unknown. */
const Envelope = Type.Object(
  { action: Type.String(), request_id: RequestId, payload: Type.Object({}) },
  strict,
)

export type ClientFrame = {
  [A in Action]: { action: A; request_id: string; payload: Static<(typeof PAYLOADS)[A]> }
}[Action]

/** The `type` of an entry of `validation_errors`, with what it means (for the docs). */
export const ISSUE_TYPES = {
  missing: 'a required field is absent',
  unknown_field: 'a field the protocol does not define',
  type_error: 'a value of the wrong JSON type',
  too_short: 'a string shorter than allowed',
  too_long: 'a string or list longer than allowed',
  pattern_mismatch: 'a string not of the required form (request ids)',
  invalid_value: 'a value outside the allowed set (actions)',
  out_of_range: 'a number outside the allowed range',
} as const

export const ValidationIssue = Type.Object(
  {
    field: Type.String({ description: "The offending field's path: `payload.text`, `action`, `(frame)`." }),
    message: Type.String({ description: 'What is wrong, in words.' }),
    type: Type.Union(
      (Object.keys(ISSUE_TYPES) as (keyof typeof ISSUE_TYPES)[]).map((t) => Type.Literal(t)),
      { description: 'One of the validation error types.' },
    ),
  },
  { ...strict, title: 'validation error', description: 'An entry of `error.data.validation_errors`.' },
)
export type ValidationIssue = Static<typeof ValidationIssue>

export type FrameCheck =
  { ok: true; frame: ClientFrame } | { ok: false; requestId: string | null; issues: ValidationIssue[] }

const checkers = Object.fromEntries(
  (Object.keys(PAYLOADS) as Action[]).map((a) => [a, TypeCompiler.Compile(frameOf(a))]),
) as unknown as Record<Action, TypeCheck<TObject>>
const envelope = TypeCompiler.Compile(Envelope)
const requestIdCheck = TypeCompiler.Compile(RequestId)

/** Check a parsed frame; every offending field is listed, not only the first. */
export function checkFrame(value: Record<string, unknown>): FrameCheck {
  const requestId = requestIdCheck.Check(value.request_id) ? value.request_id : null
  const action = value.action
  const checker =
    typeof action === 'string' && Object.hasOwn(checkers, action) ? checkers[action as Action] : undefined
  if (checker?.Check(value)) return { ok: true, frame: value as unknown as ClientFrame }
  const issues = issuesOf(checker ? checker.Errors(value) : envelope.Errors(value))
  if (!checker && typeof action === 'string') {
    issues.unshift({
      field: 'action',
      message: `Unknown action '${action}'; expected one of: ${Object.keys(PAYLOADS).join(', ')}`,
      type: 'invalid_value',
    })
  }
  return { ok: false, requestId, issues }
}

function issuesOf(errors: Iterable<ValueError>): ValidationIssue[] {
  const byField = new Map<string, ValidationIssue>()
  for (const issue of flatIssues(errors)) if (!byField.has(issue.field)) byField.set(issue.field, issue)
  return [...byField.values()]
}

/**
 * An issue per error. A union's error says only that no variant fits: it is replaced by the
 * errors of the variant the value was meant to be (its JSON type matched), or, when none is, by
 * one type error naming what the variants expect.
 */
function* flatIssues(errors: Iterable<ValueError>): Generator<ValidationIssue> {
  for (const error of errors) {
    const field = error.path.slice(1).replaceAll('/', '.') || '(frame)'
    if (error.type !== ValueErrorType.Union) {
      yield issueOf(field, error)
      continue
    }
    const meant = meantVariantErrors(error)
    if (meant) yield* flatIssues(meant)
    else yield { field, message: `Expected ${expected(error.schema)}`, type: 'type_error' }
  }
}

/**
 * A value of the wrong JSON type gets exactly one error from TypeBox, at the value itself; these
 * are its types. (A literal or a nested union that does not fit counts as a wrong type too.)
 */
const WRONG_TYPE = new Set([
  ValueErrorType.Array,
  ValueErrorType.Boolean,
  ValueErrorType.Integer,
  ValueErrorType.Literal,
  ValueErrorType.Null,
  ValueErrorType.Number,
  ValueErrorType.Object,
  ValueErrorType.String,
  ValueErrorType.Tuple,
  ValueErrorType.Union,
])

/** The errors of the variant whose type the value has (of several, the one with fewest errors). */
function meantVariantErrors(union: ValueError): ValueError[] | undefined {
  let meant: ValueError[] | undefined
  for (const variant of union.errors) {
    const errors = [...variant]
    const [first] = errors
    const wrongType = first !== undefined && first.path === union.path && WRONG_TYPE.has(first.type)
    if (!wrongType && (meant === undefined || errors.length < meant.length)) meant = errors
  }
  return meant
}

/** What a schema accepts, in words: "a string or {server, uri}". */
function expected(schema: TSchema): string {
  switch (schema[Kind]) {
    case 'Union':
      return (schema.anyOf as TSchema[]).map(expected).join(' or ')
    case 'Object':
      return `{${Object.keys(schema.properties as object).join(', ')}}`
    case 'Literal':
      return JSON.stringify(schema.const)
    case 'Array':
      return 'a list'
    case 'Integer':
      return 'an integer'
    case 'Null':
      return 'null'
    default:
      return `a ${String(schema[Kind]).toLowerCase()}`
  }
}

function issueOf(field: string, error: ValueError): ValidationIssue {
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return { field, message: 'Field required', type: 'missing' }
    case ValueErrorType.ObjectAdditionalProperties:
      return { field, message: 'Unknown field', type: 'unknown_field' }
    case ValueErrorType.StringMinLength:
      return { field, message: error.message, type: 'too_short' }
    case ValueErrorType.StringMaxLength:
    case ValueErrorType.ArrayMaxItems:
      return { field, message: error.message, type: 'too_long' }
    case ValueErrorType.StringPattern:
      return { field, message: `Expected 1 to 128 characters of [A-Za-z0-9._:-]`, type: 'pattern_mismatch' }
    case ValueErrorType.Literal:
      return { field, message: error.message, type: 'invalid_value' }
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
      return { field, message: error.message, type: 'out_of_range' }
    default:
      return { field, message: error.message, type: 'type_error' }
  }
}

// ---- server → client ----
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
      Type.Array(ValidationIssue, { description: 'Every offending field (`VALIDATION_FAILED`).' }),
    ),
  },
  {
    ...open,
    description:
      'Details: `validation_errors`; `upstream_status`, `upstream_message`, `upstream_type` of the LLM provider; the MCP JSON-RPC error; token counts.',
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
    input_schema: AnyObject("The tool's input JSON Schema, as its server gave it."),
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
export const EventView = Type.Omit(ChatEventSchema, ['instance', 'principal'], {
  ...strict,
  title: 'event',
  description: 'A stored event of the conversation, as stored (without whose and which process).',
})

/** What each non-chat action answers: the `result` of its `complete`. */
export const RESULTS = {
  cancel: Type.Object(
    { cancelled: Type.Literal(true) },
    { ...strict, description: 'The request was told to stop; it ends `cancelled`.' },
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
/**
 * A `complete` is one of the two above. To TypeScript its metadata and result stay open records
 * while the socket layer builds them as such; ChatMetadata and RESULTS type them exactly.
 */
export const CompleteFrame = Type.Unsafe<{
  request_id: string
  status: 'complete'
  metadata?: Record<string, unknown>
  result?: Record<string, unknown>
}>(Type.Union([ChatCompleteFrame, ActionCompleteFrame]))
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
