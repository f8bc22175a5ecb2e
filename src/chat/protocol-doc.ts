// Renders docs/protocol.md from the protocol's TypeBox schemas and the error table (src/errors.ts), so the
// documentation cannot drift from what the server checks (test/protocol-doc.test.ts compares).
import { Kind, type TObject, type TSchema } from '@sinclair/typebox'
import { errors, type Seen } from '../errors.js'
import {
  ISSUE_TYPES,
  MAX_COUNTED_ISSUES,
  MAX_ISSUE_CHARS,
  MAX_LISTED_ISSUES,
  PAYLOADS,
  REQUEST_ID_PATTERN,
} from './protocol.js'
import {
  ActionCompleteFrame,
  CancelledFrame,
  ChatCompleteFrame,
  ChunkFrame,
  CHUNKS,
  ErrorFrame,
  FINISH_REASONS,
  ProcessingFrame,
  RESULTS,
} from './server-frames.js'

function typeOf(schema: TSchema): string {
  const type = schema.type as string | undefined
  return type ?? 'any'
}

function rulesOf(schema: TSchema): string {
  const rules: string[] = []
  if (schema.minLength !== undefined && schema.maxLength !== undefined) {
    rules.push(`${schema.minLength}–${schema.maxLength} characters`)
  } else if (schema.minLength !== undefined) rules.push(`at least ${schema.minLength} character`)
  if (schema.pattern !== undefined) rules.push(`\`${String(schema.pattern)}\``)
  if (schema.maxItems !== undefined) rules.push(`at most ${schema.maxItems} items`)
  return rules.join(', ')
}

function fieldsTable(payload: TObject): string {
  const required = new Set(payload.required ?? [])
  const rows = Object.entries(payload.properties).map(
    ([name, schema]) =>
      `| \`${name}\` | ${typeOf(schema)} | ${required.has(name) ? 'yes' : 'no'} | ${rulesOf(schema)} | ${String(schema.description ?? '')} |`,
  )
  if (rows.length === 0) return 'No fields: send `"payload": {}`.\n'
  return [
    '| field | type | required | rules | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n')
}

/**
 * The frames shown at the head of "Server frames", each with the action it answers:
 * test/protocol-frames.test.ts checks that they fit the schemas.
 */
export const SERVER_FRAME_EXAMPLES: [frame: unknown, action: string][] = [
  [{ request_id: 'r1', status: 'processing', metadata: { conversation_id: 'c-…' } }, 'chat'],
  [
    { request_id: 'r1', status: 'chunk', chunk: { type: 'reasoning', data: 'The user wants a sum…' } },
    'chat',
  ],
  [{ request_id: 'r1', status: 'chunk', chunk: { type: 'text', data: 'Hel' } }, 'chat'],
  [
    {
      request_id: 'r1',
      status: 'chunk',
      chunk: {
        type: 'tool_call',
        data: { id: 'call_1', name: 'demo__add', server: 'demo', arguments: { a: 1, b: 2 } },
      },
    },
    'chat',
  ],
  [
    {
      request_id: 'r1',
      status: 'chunk',
      chunk: {
        type: 'progress',
        data: { id: 'call_1', name: 'demo__add', progress: 1, total: 2, message: 'step 1 of 2' },
      },
    },
    'chat',
  ],
  [
    {
      request_id: 'r1',
      status: 'chunk',
      chunk: {
        type: 'tool_result',
        data: { id: 'call_1', name: 'demo__add', is_error: false, content: '3' },
      },
    },
    'chat',
  ],
  [
    {
      request_id: 'r1',
      status: 'complete',
      metadata: {
        conversation_id: 'c-…',
        model: '…',
        tokens: 42,
        usage: { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 },
        finish_reason: 'stop',
        tool_hops: 1,
        duration_ms: 812,
      },
    },
    'chat',
  ],
  [{ request_id: 'r1', status: 'cancelled', metadata: { conversation_id: 'c-…' } }, 'chat'],
  [
    {
      request_id: 'r1',
      status: 'error',
      error: { code: 409, type: 'CONVERSATION_BUSY', message: '…' },
    },
    'chat',
  ],
  [{ request_id: 'p1', status: 'complete', result: { pong: true } }, 'ping'],
]

/** JSON on one line, spaced as people write it: `{"a": 1, "b": [2, 3]}`. */
function jsonLine(value: unknown): string {
  return JSON.stringify(value, null, 1)
    .replace(/([{[])\n\s*/g, '$1')
    .replace(/\n\s*([}\]])/g, '$1')
    .replace(/,\n\s*/g, ', ')
}

/** A schema's type in words: `string or null`, `array of tool`, `"text"`. Named views by their title. */
function typeName(schema: TSchema): string {
  if (typeof schema.title === 'string') return schema.title
  if (schema.anyOf) return (schema.anyOf as TSchema[]).map(typeName).join(' or ')
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``
  if (schema.type === 'array') return `array of ${typeName(schema.items as TSchema)}`
  if (typeof schema.type === 'string') return schema.type
  return schema[Kind] === 'Unknown' ? 'any' : 'object'
}

/** Rows for an object's fields, its inline objects' fields after it (`metadata.conversation_id`). */
function fieldRows(object: TObject, prefix = ''): string[][] {
  const required = new Set(object.required ?? [])
  return Object.entries(object.properties).flatMap(([name, schema]) => {
    const row = [
      `\`${prefix}${name}\``,
      typeName(schema),
      required.has(name) ? 'yes' : 'no',
      String(schema.description ?? ''),
    ]
    const inline = (s: TSchema): boolean =>
      s.type === 'object' && s.properties !== undefined && s.title === undefined
    if (inline(schema)) return [row, ...fieldRows(schema as TObject, `${prefix}${name}.`)]
    const items = schema.items as TSchema | undefined
    if (items && inline(items)) return [row, ...fieldRows(items as TObject, `${prefix}${name}[].`)]
    return [row]
  })
}

/** A table of an object's fields; the meaning column only when some field has one. */
function serverFieldsTable(object: TObject, prefix = ''): string {
  const rows = fieldRows(object, prefix)
  const meaning = rows.some((r) => r[3])
  const head = meaning ? ['field', 'type', 'always', 'meaning'] : ['field', 'type', 'always']
  return [head, head.map(() => '---'), ...rows.map((r) => (meaning ? r : r.slice(0, 3)))]
    .map((cells) => `| ${cells.join(' | ')} |`)
    .concat('')
    .join('\n')
}

/** The named objects (titled schemas) under a schema, each to be documented once. */
function viewsOf(schema: TSchema, found: Map<string, TSchema>): Map<string, TSchema> {
  const title = typeof schema.title === 'string' ? schema.title : undefined
  const named = schema.type === 'object' || schema.anyOf !== undefined
  if (title && named && !found.has(title)) found.set(title, schema)
  const children = [
    ...Object.values((schema.properties ?? {}) as Record<string, TSchema>),
    ...((schema.anyOf ?? []) as TSchema[]),
    ...(schema.items ? [schema.items as TSchema] : []),
  ]
  for (const child of children) viewsOf(child, found)
  return found
}

/** A named object's table; a union's, one table per variant. */
function viewTable(schema: TSchema): string {
  if (schema.anyOf) return (schema.anyOf as TObject[]).map((v) => serverFieldsTable(v)).join('\nor\n\n')
  return serverFieldsTable(schema as TObject)
}

function serverFrames(): string {
  const section = (title: string, schema: TObject, extra = '') =>
    `### ${title}\n\n${String(schema.description ?? '')}\n\n${serverFieldsTable(schema)}${extra}`
  const chunks = Object.entries(CHUNKS)
    .map(
      ([type, schema]) =>
        `#### chunk \`${type}\`\n\n${String(schema.description ?? '')}\n\n${serverFieldsTable(schema, 'chunk.')}`,
    )
    .join('\n')
  const finish = [
    '| finish_reason | meaning |',
    '| --- | --- |',
    ...Object.entries(FINISH_REASONS).map(([reason, meaning]) => `| \`${reason}\` | ${meaning} |`),
    '',
  ].join('\n')
  const results = [
    '| action | result |',
    '| --- | --- |',
    ...Object.entries(RESULTS).map(([action, schema]) => `| \`${action}\` | ${resultFields(schema)} |`),
    '',
  ].join('\n')
  const named = new Map<string, TSchema>()
  for (const result of Object.values(RESULTS)) viewsOf(result, named)
  viewsOf(ErrorFrame, named)
  const views = [...named.entries()]
    .map(([title, schema]) => `#### ${title}\n\n${String(schema.description ?? '')}\n\n${viewTable(schema)}`)
    .join('\n')
  return [
    section('`processing`', ProcessingFrame),
    section('`chunk`', ChunkFrame, `\n${chunks}`),
    section('`complete` of a chat', ChatCompleteFrame, `\n${finish}`),
    section('`complete` of other actions', ActionCompleteFrame, `\n${results}`),
    section('`error`', ErrorFrame),
    section('`cancelled`', CancelledFrame),
    `### Objects in results and errors\n\n${views}`,
  ].join('\n')
}

/** What an action is answered, from RESULTS (Server frames has the objects). */
function answerOf(action: string): string {
  if (!Object.hasOwn(RESULTS, action)) {
    return 'Answered with `processing`, `chunk` frames, then `complete` with the metadata of a chat (Server frames).'
  }
  return `Answered with \`complete\`: \`"result"\` has ${resultFields(RESULTS[action as keyof typeof RESULTS])}.`
}

/** A result's fields in words: `tools`: array of tool, `description` (optional): string. */
function resultFields(schema: TObject): string {
  const required = new Set<string>(schema.required ?? [])
  return Object.entries(schema.properties)
    .map(([name, field]) => `\`${name}\`${required.has(name) ? '' : ' (optional)'}: ${typeName(field)}`)
    .join(', ')
}

/** The error table's groups, by where an error shows, in the order the document lists them. */
const SEEN: Record<Seen, string> = {
  frame: 'In `error` frames (`status` is `error.code`, the code is `error.type`):',
  upgrade: 'Refusals of the WebSocket upgrade, as a plain HTTP response (logged as `upgrade refused`):',
  log: 'In log lines only (`error.type`), never sent to a client:',
  exit: 'At start-up, before anything listens (the process exits):',
}

function errorsTables(): string {
  return (Object.keys(SEEN) as Seen[])
    .map((seen) => {
      const rows = Object.entries(errors)
        .filter(([, E]) => E.seen === seen)
        .map(([code, E]) => {
          const e = new E()
          const message = e.message.replaceAll('%s', '…').replaceAll('%d', 'N')
          return `| ${e.statusCode} | \`${code}\` | ${message} | ${E.doc} |`
        })
      return [
        SEEN[seen],
        '',
        '| status | code | message | meaning |',
        '| --- | --- | --- | --- |',
        ...rows,
        '',
      ].join('\n')
    })
    .join('\n')
}

export function renderProtocolDoc(): string {
  const actions = Object.entries(PAYLOADS)
    .map(
      ([name, payload]) =>
        `### \`${name}\`\n\n${String(payload.description ?? '')}\n\n${fieldsTable(payload)}\n${answerOf(name)}\n`,
    )
    .join('\n')
  return `# WebSocket chat protocol, version 1

<!-- Generated from src/chat/protocol.ts and src/errors.ts by \`npm run docs\`; do not edit by hand.
     test/protocol-doc.test.ts fails when this file and the schemas differ. -->

What this version of the platform serves at \`ws://HOST:PORT/ws/chat\`. Front ends are written
against it: a change here is a change of the contract.

## Connection

- Text frames only, each one JSON object. A binary frame, a frame that is not JSON, or one that is
  not an object gets an \`error\` frame with code 400 and \`"request_id": null\`; the connection
  stays open.
- A frame larger than \`websocket.max_message_bytes\` closes the connection with code 1009.
- With \`auth\` configured, the upgrade must carry a key: \`Authorization: Bearer KEY\`, or (browsers)
  the subprotocol \`bearer.KEY\`; the server then selects another offered subprotocol if there is
  one. With \`websocket.allowed_origins\` set, a browser's \`Origin\` must be in it. Otherwise the
  upgrade is refused with HTTP 401 or 403 before any WebSocket exists.
- On shutdown, running requests end with error 503 and every connection is closed with code 1001.

## Client frames

Every frame is \`{"action": STRING, "request_id": STRING, "payload": OBJECT}\`, all three required.
\`request_id\` matches \`${REQUEST_ID_PATTERN}\`; it tags every frame sent in reply. Unknown fields
(top level or payload), missing fields and wrong types are answered with one error 400 whose
\`error.data.validation_errors\` lists every offending field, the first ${MAX_LISTED_ISSUES} of them; when there
are more, \`error.data.validation_errors_more\` says how many. Validation stops after
${MAX_COUNTED_ISSUES} problems, so for a frame with more that count is a lower bound; a \`field\` or
\`message\` longer than ${MAX_ISSUE_CHARS} characters is cut, ending in \`…\`. The reply stays a few KB
whatever the frame holds:

\`\`\`json
{"request_id": "r1", "status": "error", "error": {"code": 400, "type": "VALIDATION_FAILED", "message": "Parameter validation failed", "data": {"validation_errors": [{"field": "payload.text", "message": "Expected string", "type": "type_error"}]}}}
\`\`\`

| validation error type | meaning |
| --- | --- |
${Object.entries(ISSUE_TYPES)
  .map(([type, meaning]) => `| \`${type}\` | ${meaning} |`)
  .join('\n')}

## Actions

${actions}
## Server frames

Every frame is one JSON object with \`request_id\` and \`status\`:

\`\`\`jsonc
${SERVER_FRAME_EXAMPLES.map(([frame]) => jsonLine(frame)).join('\n')}
\`\`\`

- A \`chat\` gets \`processing\` first, then \`chunk\` frames in order, then exactly one terminal frame:
  \`complete\`, \`error\` or \`cancelled\`. Nothing is sent for a \`request_id\` after its terminal frame.
- \`text\` chunks concatenate to the answer; with streaming off each LLM reply comes as one
  \`text\` chunk. A chunk is not one delta of the provider: the deltas of a request that arrive
  together (in one tick, or within \`websocket.text_coalesce_ms\` when it is set) go out as one
  chunk, always before the request's next frame of any other kind. Clients ignore chunk types
  they do not know.
- \`reasoning\` chunks carry what a reasoning model shows of its thinking (before its answer or
  its tool calls), as it arrives, one per LLM reply when not streaming; they are not part of the
  answer. \`get_history\` shows them as the \`reasoning\` of the reply's event.
- \`tool_call\` is sent when the LLM's call is complete, \`progress\` while an MCP server reports
  progress, \`tool_result\` when the server answered. The calls of one LLM reply run
  concurrently, so their chunks may interleave. A failing tool (invalid arguments, an error
  result, a timeout, a server that is down or dies) is a \`tool_result\` with \`is_error: true\`;
  the turn goes on.
- Other actions answer with one \`complete\` whose \`result\` holds the data (below); a \`cancel\`
  is answered \`{"cancelled": true}\` and the request it stopped ends \`cancelled\`.
- A \`chat\` whose \`request_id\` already has a finished answer in the store is not run again
  (across reconnects, restarts and processes sharing the store): the stored answer is sent as one
  \`text\` chunk and \`complete\` has \`"replayed": true\`.

${serverFrames()}
## Errors

\`error.code\` is an HTTP-style number, \`error.type\` a stable name (never reused), \`error.message\`
words a user can act on, \`error.data\` details (\`validation_errors\`, \`upstream_status\`,
\`upstream_message\`). Secrets never appear in an error frame.

${errorsTables()}
## Conversations

A conversation belongs to the principal that created it (the API key's \`name\`; \`anonymous\` when
auth is off). To anyone else it answers 404 exactly as one that does not exist. One turn runs at a
time per conversation (409 \`CONVERSATION_BUSY\`); different conversations run concurrently on one
connection.
`
}
