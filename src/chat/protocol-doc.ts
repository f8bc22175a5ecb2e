// Renders docs/protocol.md from the protocol's TypeBox schemas and the error table (src/errors.ts), so the
// documentation cannot drift from what the server checks (test/protocol-doc.test.ts compares).
import type { TObject, TSchema } from '@sinclair/typebox'
import { errors, type Seen } from '../errors.js'
import { ISSUE_TYPES, PAYLOADS, REQUEST_ID_PATTERN } from './protocol.js'

/** The actions of protocol version 1 (shared/spec/protocol.md); those not in PAYLOADS come later. */
const PROTOCOL_V1_ACTIONS = [
  'chat',
  'cancel',
  'list_tools',
  'list_prompts',
  'get_prompt',
  'list_resources',
  'read_resource',
  'list_conversations',
  'get_history',
  'ping',
]

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
  const served = Object.keys(PAYLOADS)
  const later = PROTOCOL_V1_ACTIONS.filter((a) => !served.includes(a))
  const actions = Object.entries(PAYLOADS)
    .map(
      ([name, payload]) =>
        `### \`${name}\`\n\n${String(payload.description ?? '')}\n\n${fieldsTable(payload)}`,
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
\`error.data.validation_errors\` lists every offending field:

\`\`\`json
{"request_id": "r1", "status": "error", "error": {"code": 400, "type": "VALIDATION_FAILED", "message": "Parameter validation failed", "data": {"validation_errors": [{"field": "payload.text", "message": "Expected string", "type": "type_error"}]}}}
\`\`\`

| validation error type | meaning |
| --- | --- |
${Object.entries(ISSUE_TYPES)
  .map(([type, meaning]) => `| \`${type}\` | ${meaning} |`)
  .join('\n')}

## Actions

${actions}${later.length ? `\nNot served by this version yet (answered as an unknown action): ${later.map((a) => `\`${a}\``).join(', ')}.\n` : ''}
## Server frames

Every frame carries \`request_id\` and \`status\`:

\`\`\`jsonc
{"request_id": "r1", "status": "processing", "metadata": {"conversation_id": "c-…"}}
{"request_id": "r1", "status": "chunk", "chunk": {"type": "text", "data": "Hel"}}
{"request_id": "r1", "status": "chunk", "chunk": {"type": "tool_call", "data": {"id": "call_1", "name": "demo__add", "server": "demo", "arguments": {"a": 1, "b": 2}}}}
{"request_id": "r1", "status": "chunk", "chunk": {"type": "progress", "data": {"id": "call_1", "name": "demo__add", "progress": 1, "total": 2, "message": "step 1 of 2"}}}
{"request_id": "r1", "status": "chunk", "chunk": {"type": "tool_result", "data": {"id": "call_1", "name": "demo__add", "is_error": false, "content": "3"}}}
{"request_id": "r1", "status": "complete", "metadata": {"conversation_id": "c-…", "model": "…", "tokens": 42, "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}, "finish_reason": "stop", "tool_hops": 1, "duration_ms": 812}}
{"request_id": "r1", "status": "cancelled", "metadata": {"conversation_id": "c-…"}}
{"request_id": "r1", "status": "error", "error": {"code": 409, "type": "CONVERSATION_BUSY", "message": "…"}}
{"request_id": "p1", "status": "complete", "result": {"pong": true}}
\`\`\`

- A \`chat\` gets \`processing\` first, then \`chunk\` frames in order, then exactly one terminal frame:
  \`complete\`, \`error\` or \`cancelled\`. Nothing is sent for a \`request_id\` after its terminal frame.
- \`text\` chunks concatenate to the answer; with streaming off each LLM reply comes as one
  \`text\` chunk. Clients ignore chunk types they do not know.
- \`tool_call\` is sent when the LLM's call is complete (\`arguments\` parsed; the raw text when it
  is not valid JSON; \`server\` null for a name no server has), \`progress\` while an MCP server
  reports progress, \`tool_result\` when the server answered. The calls of one LLM reply run
  concurrently, so their chunks may interleave. A failing tool (invalid arguments, an error
  result, a timeout, a server that is down or dies) is a \`tool_result\` with \`is_error: true\`;
  the turn goes on.
- \`tokens\` is \`usage.total_tokens\` summed over the turn's LLM calls as the provider reported
  them; where it reported none, the platform's own count (tiktoken). \`tool_hops\` counts the
  rounds of tool calls.
- \`finish_reason\` is \`stop\`, \`length\`, \`content_filter\`, or \`tool_limit_reached\` after
  \`chat.service.max_tool_hops\` rounds of tool calls (the answer then says so).
- Other actions answer with one \`complete\` whose \`result\` holds the data.
- A \`chat\` whose \`request_id\` already has a finished answer in this process's store is not run
  again: the stored answer is sent as one \`text\` chunk and \`complete\` has \`"replayed": true\`.

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
