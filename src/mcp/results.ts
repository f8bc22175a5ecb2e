// A tool's CallToolResult as the text the LLM gets back. Text goes through as it is; binary
// content is described, never inlined (base64 would cost tokens and tell the model nothing). Progress
// goes to the caller as it comes.
import type {
  CallToolResult,
  Progress,
  CompatibilityCallToolResult,
  ContentBlock,
  EmbeddedResource,
  ResourceLink,
} from '@modelcontextprotocol/sdk/types.js'
import { base64Bytes } from '../util/base64.js'
import type { ToolCallOptions, ToolOutcome } from './types.js'

export function toolOutcome(result: CallToolResult | CompatibilityCallToolResult): ToolOutcome {
  // Servers of the 2024-10-07 protocol answer with `toolResult` instead of content blocks.
  if (!Array.isArray(result.content))
    return { content: JSON.stringify(result.toolResult) ?? '', is_error: false }
  return contentOutcome(result as CallToolResult)
}

function contentOutcome(result: CallToolResult): ToolOutcome {
  const isError = result.isError === true
  const content = result.content ?? []
  const parts = content.map(describeBlock)
  // Structured content usually repeats the text: only sent when there is no text to read.
  const hasText = content.some((block) => block.type === 'text')
  if (!hasText && result.structuredContent !== undefined) parts.push(JSON.stringify(result.structuredContent))
  const text = parts.join('\n')
  if (text !== '') return { content: text, is_error: isError }
  return {
    content: isError ? 'The tool failed without saying why.' : '(the tool returned no content)',
    is_error: isError,
  }
}

export function describeBlock(block: ContentBlock): string {
  switch (block.type) {
    case 'text':
      return block.text
    case 'image':
    case 'audio':
      return `[${block.type}: ${block.mimeType}, ${base64Bytes(block.data)} bytes]`
    case 'resource':
      return describeResource(block)
    case 'resource_link':
      return describeLink(block)
    default:
      return `[${(block as { type: string }).type} content]`
  }
}

function describeResource(block: EmbeddedResource): string {
  const { resource } = block
  const mime = resource.mimeType ? ` (${resource.mimeType})` : ''
  if ('text' in resource && typeof resource.text === 'string')
    return `[resource: ${resource.uri}${mime}]\n${resource.text}`
  const blob = 'blob' in resource && typeof resource.blob === 'string' ? resource.blob : ''
  return `[resource: ${resource.uri}${mime}, ${base64Bytes(blob)} bytes of binary data, not shown]`
}

function describeLink(link: ResourceLink): string {
  const details = [link.title ?? link.name, link.mimeType].filter(Boolean).join(', ')
  const head = `[resource link: ${link.uri}${details ? ` (${details})` : ''}]`
  return link.description ? `${head} ${link.description}` : head
}

/** The SDK's progress notifications as the caller's `onProgress` takes them. */
export function forwardProgress(
  onProgress: NonNullable<ToolCallOptions['onProgress']>,
): (p: Progress) => void {
  return (p) => {
    try {
      onProgress({
        progress: p.progress,
        ...(p.total === undefined ? {} : { total: p.total }),
        ...(p.message === undefined ? {} : { message: p.message }),
      })
    } catch {
      // A listener's failure must not break the call (the SDK would drop the whole message).
    }
  }
}
