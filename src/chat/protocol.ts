// The client's half of the WebSocket protocol (protocol.md) as TypeBox schemas: the frames a
// client sends, checked here at runtime (compiled once), with the TypeScript types from the same
// definitions. The server's half is server-frames.ts; docs/protocol.md is rendered from both.
import { Kind, Type, type Static, type TObject, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'

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
        'The `request_id` of a running `chat`, `get_prompt` or `read_resource` of this principal, from any of its sockets.',
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

/**
 * At most this many problems are listed in `validation_errors`; the rest are only counted, in
 * `validation_errors_more`. A frame of 80,000 unknown keys is answered in a few KB, not megabytes.
 */
export const MAX_LISTED_ISSUES = 20
/**
 * Validation stops after this many problems in all (listed or counted), so a frame's reply costs
 * bounded work whatever it holds: beyond it, `validation_errors_more` is a lower bound.
 */
export const MAX_COUNTED_ISSUES = 1000
/** An issue's `field` or `message` longer than this many characters is cut, ending in `…`. */
export const MAX_ISSUE_CHARS = 120

export type FrameCheck =
  | { ok: true; frame: ClientFrame }
  | {
      ok: false
      requestId: string | null
      /** The first MAX_LISTED_ISSUES problems, one per field. */
      issues: ValidationIssue[]
      /** How many more problems were found (at least; counting stops at MAX_COUNTED_ISSUES). */
      more: number
    }

const checkers = Object.fromEntries(
  (Object.keys(PAYLOADS) as Action[]).map((a) => [a, TypeCompiler.Compile(frameOf(a))]),
) as unknown as Record<Action, TypeCheck<TObject>>
const envelope = TypeCompiler.Compile(Envelope)
const requestIdCheck = TypeCompiler.Compile(RequestId)

/**
 * Check a parsed frame; every offending field is listed, up to MAX_LISTED_ISSUES, and the rest
 * counted. TypeBox's errors are read lazily and at most MAX_COUNTED_ISSUES of them, so the work is
 * bounded by the frame's size, never by how many problems it has.
 */
export function checkFrame(value: Record<string, unknown>): FrameCheck {
  const requestId = requestIdCheck.Check(value.request_id) ? value.request_id : null
  const action = value.action
  const checker =
    typeof action === 'string' && Object.hasOwn(checkers, action) ? checkers[action as Action] : undefined
  if (checker?.Check(value)) return { ok: true, frame: value as unknown as ClientFrame }
  const budget = { left: MAX_COUNTED_ISSUES }
  const found = flatIssues(checker ? checker.Errors(value) : envelope.Errors(value), budget)
  const unknownAction: ValidationIssue[] =
    !checker && typeof action === 'string'
      ? [
          {
            field: 'action',
            message: `Unknown action '${clip(action, 64)}'; expected one of: ${Object.keys(PAYLOADS).join(', ')}`,
            type: 'invalid_value',
          },
        ]
      : []
  return { ok: false, requestId, ...issuesOf(unknownAction, found) }
}

/** The first issue of each field, MAX_LISTED_ISSUES of them listed (cut to size) and the rest counted. */
function issuesOf(...sources: Iterable<ValidationIssue>[]): { issues: ValidationIssue[]; more: number } {
  const fields = new Set<string>()
  const issues: ValidationIssue[] = []
  let more = 0
  for (const source of sources) {
    for (const issue of source) {
      if (fields.has(issue.field)) continue
      fields.add(issue.field)
      if (issues.length < MAX_LISTED_ISSUES)
        issues.push({
          field: clip(issue.field, MAX_ISSUE_CHARS),
          message: clip(issue.message, MAX_ISSUE_CHARS),
          type: issue.type,
        })
      else more++
    }
  }
  return { issues, more }
}

/** The text cut to at most `max` characters, ending in `…` when cut (never inside a surrogate pair). */
function clip(text: string, max: number): string {
  if (text.length <= max) return text
  let end = max - 1
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${text.slice(0, end)}…`
}

/** Reads errors while the budget lasts: every error read from TypeBox, union variants' too, spends one. */
function* within(errors: Iterable<ValueError>, budget: { left: number }): Generator<ValueError> {
  if (budget.left <= 0) return
  for (const error of errors) {
    yield error
    if (--budget.left <= 0) return
  }
}

/**
 * An issue per error. A union's error says only that no variant fits: it is replaced by the
 * errors of the variant the value was meant to be (its JSON type matched), or, when none is, by
 * one type error naming what the variants expect.
 */
function* flatIssues(errors: Iterable<ValueError>, budget: { left: number }): Generator<ValidationIssue> {
  for (const error of within(errors, budget)) {
    const field = error.path.slice(1).replaceAll('/', '.') || '(frame)'
    if (error.type !== ValueErrorType.Union) {
      yield issueOf(field, error)
      continue
    }
    const meant = meantVariantErrors(error, budget)
    if (meant) yield* flatIssues(meant, budget)
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

/**
 * The errors of the variant whose type the value has (of several, the one with fewest errors).
 * Reading a variant spends the budget too, so nested unions cannot multiply the work.
 */
function meantVariantErrors(union: ValueError, budget: { left: number }): ValueError[] | undefined {
  let meant: ValueError[] | undefined
  for (const variant of union.errors) {
    const errors = [...within(variant, budget)]
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
