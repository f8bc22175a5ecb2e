// The server half of the protocol, checked: every frame the test client receives must fit the
// schemas of src/chat/protocol.ts, so a frame that drifts from them (and from docs/protocol.md,
// rendered from them) fails the test that received it. Compiled once.
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import {
  ActionCompleteFrame,
  ChatCompleteFrame,
  CHUNKS,
  RESULTS,
  SERVER_FRAMES,
  ServerFrame,
} from '../../src/chat/server-frames.js'

const compile = <T extends Record<string, TSchema>>(schemas: T) =>
  Object.fromEntries(Object.entries(schemas).map(([k, s]) => [k, TypeCompiler.Compile(s)])) as Record<
    string,
    TypeCheck<TSchema>
  >

const anyFrame = TypeCompiler.Compile(ServerFrame)
const byStatus = compile(SERVER_FRAMES)
const byChunk = compile(CHUNKS)
const byResult = compile(RESULTS)
const chatComplete = TypeCompiler.Compile(ChatCompleteFrame)
const actionComplete = TypeCompiler.Compile(ActionCompleteFrame)

/**
 * How a received frame breaks the protocol's schemas; empty when it fits. `action` is what the
 * client sent under the frame's request_id, when known: then a `complete` must carry what that
 * action answers (a chat its metadata, another action its `result`).
 */
export function frameProblems(frame: unknown, action?: string): string[] {
  const value = frame as Record<string, any>
  if (anyFrame.Check(frame) && action === undefined) return []
  if (typeof frame !== 'object' || frame === null) return ['a frame is a JSON object']
  const status = value.status as unknown
  if (typeof status !== 'string' || !Object.hasOwn(byStatus, status)) {
    return [`/status: ${JSON.stringify(status)} is not one of ${Object.keys(SERVER_FRAMES).join(', ')}`]
  }
  // A union's own error says only that no variant fits: check the variant the frame claims to be.
  if (status === 'chunk') {
    const type = value.chunk?.type as unknown
    if (typeof type !== 'string' || !Object.hasOwn(byChunk, type)) {
      return [`/chunk/type: ${JSON.stringify(type)} is not one of ${Object.keys(CHUNKS).join(', ')}`]
    }
    return [
      ...errorsOf(byStatus.chunk!, frame).filter((p) => !p.startsWith('/chunk:')),
      ...errorsOf(byChunk[type]!, value.chunk, '/chunk'),
    ]
  }
  if (status !== 'complete') return errorsOf(byStatus[status]!, frame)
  const chat = action === undefined ? 'metadata' in value : action === 'chat'
  if (chat) return errorsOf(chatComplete, frame)
  const result = action === undefined ? undefined : byResult[action]
  if (action !== undefined && !result) return [`no result is defined for the action '${action}'`]
  const problems = errorsOf(actionComplete, frame)
  if (!result) return problems
  return [...problems.filter((p) => !p.startsWith('/result:')), ...errorsOf(result, value.result, '/result')]
}

/** The errors of a check, one line each (`/path: message`), union errors left to the caller. */
function errorsOf(check: TypeCheck<TSchema>, value: unknown, prefix = ''): string[] {
  if (check.Check(value)) return []
  return [...check.Errors(value)].map((e) => `${prefix}${e.path || '/'}: ${e.message}`)
}
