// What a chat turn brings besides its text (protocol.md, chat): an MCP prompt, whose messages go
// before the text, and MCP resources, whose contents go with it. They are fetched once, when the
// turn starts, and stored with its user_message as they were then, so the history stays true
// even if the server's prompt or resource changes later.
import type { ContentBlock } from '@modelcontextprotocol/sdk/types.js'
import { errors } from '../errors.js'
import type { McpContent } from '../mcp/types.js'
import type { Attachments, ResourceAttachment } from '../store/types.js'
import { base64Bytes } from '../util/base64.js'
import { inFrame } from './actions.js'
import { renderResource } from './messages.js'
import type { ChatPayload } from './protocol.js'

/** Whether a chat payload names a prompt or resources. */
export function namesAttachments(payload: ChatPayload): boolean {
  return payload.prompt !== undefined || (payload.resources?.length ?? 0) > 0
}

/** The prompt and resources a chat payload names, fetched; undefined when it names none. */
export async function fetchAttachments(
  mcp: McpContent | undefined,
  payload: ChatPayload,
  signal: AbortSignal,
): Promise<Attachments | undefined> {
  if (!namesAttachments(payload)) return undefined
  const { prompt: ref, resources: refs = [] } = payload
  const [prompt, resources] = await Promise.all([
    ref ? fetchPrompt(mcp, ref, signal) : undefined,
    refs.length > 0 ? fetchResources(mcp, refs, signal) : undefined,
  ])
  return { ...(prompt ? { prompt } : {}), ...(resources ? { resources } : {}) }
}

async function fetchPrompt(
  mcp: McpContent | undefined,
  ref: NonNullable<ChatPayload['prompt']>,
  signal: AbortSignal,
): Promise<NonNullable<Attachments['prompt']>> {
  if (!mcp) throw new errors.MCP_SERVER_NOT_FOUND(ref.server)
  const args = ref.arguments ?? {}
  const result = await mcp
    .getPrompt(ref.server, ref.name, args, signal)
    .catch(inFrame('payload.prompt.arguments'))
  return {
    server: ref.server,
    name: ref.name,
    arguments: args,
    messages: result.messages.map((m) => ({ role: m.role, content: contentText(m.content) })),
  }
}

async function fetchResources(
  mcp: McpContent | undefined,
  refs: NonNullable<ChatPayload['resources']>,
  signal: AbortSignal,
): Promise<ResourceAttachment[]> {
  const wanted = new Map<string, { server?: string; uri: string }>()
  for (const ref of refs) {
    const { server, uri } = typeof ref === 'string' ? { server: undefined, uri: ref } : ref
    wanted.set(`${server ?? ''}\u0000${uri}`, server === undefined ? { uri } : { server, uri })
  }
  const reads = await Promise.all(
    [...wanted.values()].map(({ server, uri }) => {
      if (!mcp) throw new errors.RESOURCE_NOT_FOUND(uri)
      return mcp.readResource(uri, server, signal)
    }),
  )
  return reads.flatMap(({ server, result }) =>
    result.contents.map((c): ResourceAttachment => {
      const attachment: ResourceAttachment = { server, uri: c.uri }
      if (c.mimeType !== undefined) attachment.mime_type = c.mimeType
      if ('text' in c && typeof c.text === 'string') attachment.text = c.text
      else attachment.bytes = 'blob' in c && typeof c.blob === 'string' ? base64Bytes(c.blob) : 0
      return attachment
    }),
  )
}

/** Characters of attached text, to refuse what no context could hold before counting its tokens. */
export function attachedChars(attachments: Attachments | undefined): number {
  if (!attachments) return 0
  const prompt = (attachments.prompt?.messages ?? []).reduce((n, m) => n + m.content.length, 0)
  return (attachments.resources ?? []).reduce((n, r) => n + (r.text?.length ?? 0), prompt)
}

/** A prompt message's content as text: binary parts are described by type and size. */
function contentText(block: ContentBlock): string {
  switch (block.type) {
    case 'text':
      return block.text
    case 'image':
    case 'audio':
      return `[${block.type} ${block.mimeType}, ${base64Bytes(block.data)} bytes, not included]`
    case 'resource': {
      const { resource } = block
      const text = 'text' in resource && typeof resource.text === 'string' ? resource.text : undefined
      const bytes = 'blob' in resource && typeof resource.blob === 'string' ? base64Bytes(resource.blob) : 0
      return renderResource({
        uri: resource.uri,
        ...(resource.mimeType === undefined ? {} : { mime_type: resource.mimeType }),
        ...(text === undefined ? { bytes } : { text }),
      })
    }
    case 'resource_link':
      return `[resource link: ${block.uri}${block.name ? ` (${block.name})` : ''}]`
    default:
      return `[${(block as { type: string }).type} content, not included]`
  }
}
