// A tool's CallToolResult as the text the LLM gets back, plus its images for a model that takes
// them. Text goes through as it is; binary content is described, never inlined (base64 would cost
// tokens and tell the model nothing): image and audio blocks, embedded blobs, data: URLs in text,
// and base64 strings inside structured content. Progress goes to the caller as it comes.
import { isUtf8 } from 'node:buffer'
import type {
  CallToolResult,
  Progress,
  CompatibilityCallToolResult,
  ContentBlock,
  EmbeddedResource,
  ImageContent,
  ResourceLink,
} from '@modelcontextprotocol/sdk/types.js'
import { base64Bytes } from '../util/base64.js'
import { sniffBase64Image, sniffImage } from '../util/image.js'
import type { ToolCallOptions, ToolImage, ToolOutcome } from './types.js'

export function toolOutcome(result: CallToolResult | CompatibilityCallToolResult): ToolOutcome {
  // Servers of the 2024-10-07 protocol answer with `toolResult` instead of content blocks.
  if (!Array.isArray(result.content))
    return { content: JSON.stringify(withoutBinary(result.toolResult)) ?? '', is_error: false }
  return contentOutcome(result as CallToolResult)
}

function contentOutcome(result: CallToolResult): ToolOutcome {
  const isError = result.isError === true
  const content = result.content ?? []
  const parts = content.map(describeBlock)
  // Structured content usually repeats the text, or the binary blocks (an image's data and type
  // again): sent only when there is no text to read and it says something the blocks do not.
  const hasText = content.some((block) => block.type === 'text')
  const structured = result.structuredContent
  if (!hasText && structured !== undefined && !onlyRepeats(structured, content)) {
    parts.push(JSON.stringify(withoutBinary(structured)))
  }
  const images = content.flatMap((block) => (block.type === 'image' ? toImage(block) : []))
  const extra = images.length ? { images } : {}
  const text = parts.join('\n')
  if (text !== '') return { content: text, is_error: isError, ...extra }
  return {
    content: isError ? 'The tool failed without saying why.' : '(the tool returned no content)',
    is_error: isError,
    ...extra,
  }
}

/**
 * An image block as an image part, its type read from its bytes; none when the bytes are no image
 * every provider accepts (the description in the text stands alone then).
 */
function toImage(block: ImageContent): ToolImage[] {
  let data = typeof block.data === 'string' ? block.data.replace(/\s+/g, '') : ''
  if (!BASE64.test(data)) return []
  const info = sniffBase64Image(data)
  if (!info) return []
  // Providers take standard, padded base64; base64url or unpadded data is written out again.
  if (data.length % 4 !== 0 || /[-_]/.test(data)) data = Buffer.from(data, 'base64').toString('base64')
  return [{ ...info, data, bytes: base64Bytes(data) }]
}

export function describeBlock(block: ContentBlock): string {
  switch (block.type) {
    case 'text':
      return textWithoutBinary(block.text)
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

/** Strings at least this long made only of base64 characters are taken for binary data. */
const BINARY_MIN_CHARS = 256
const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2})$/
/** `data:[type][;param=value…];base64,DATA`; the data's characters of both base64 alphabets. */
const DATA_URL = /data:([\w.+-]+\/[\w.+-]+)?((?:;[\w.+-]+=[^;,\s"]*)*);base64,([A-Za-z0-9+/_-]*={0,2})/g

/**
 * A text with each base64 data: URL in it described. A text that is all base64 is described whole
 * when it is a value of structured content, or when its bytes are a known file type; a text
 * block's other base64 may be what the tool means to say (a token, a key), so it stays.
 */
function textWithoutBinary(text: string, structured = false): string {
  const whole = base64String(text.trim(), structured)
  if (whole !== undefined) return whole
  return text.includes('data:') ? text.replace(DATA_URL, (url) => describeDataUrl(url)) : text
}

/**
 * A copy of a JSON value whose strings have their binary data described: a string that is all
 * base64, and each base64 data: URL within a string. Keys are kept: they say what the data was.
 */
function withoutBinary(value: unknown): unknown {
  if (typeof value === 'string') return textWithoutBinary(value, true)
  if (Array.isArray(value)) return value.map(withoutBinary)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutBinary(v)]))
  }
  return value
}

/**
 * The description of a string that is base64 data as a whole, else undefined: long enough, of the
 * base64 alphabet, and either a known file type or (`mixed`) of mixed letters and digits, as
 * encoded bytes are; one letter repeated, or lowercase words run together, are text.
 */
function base64String(value: string, mixed: boolean): string | undefined {
  if (value.length < BINARY_MIN_CHARS) return undefined
  const data = unwrapped(value)
  if (data === undefined || data.length < BINARY_MIN_CHARS || !BASE64.test(data)) return undefined
  const type = sniffBase64Image(data)?.mime_type ?? sniffOther(data)
  if (!type && !(mixed && classes(data) >= 2)) return undefined
  // Base64 of text (an opaque pagination cursor, an encoded JSON token) is what the tool means the
  // LLM to pass back: kept. Bytes of binary data are almost never valid UTF-8 at this length.
  if (!type && isText(Buffer.from(data, 'base64'))) return undefined
  return `[binary data${type ? ` (${type})` : ''}, ${base64Bytes(data)} bytes, not shown]`
}

/** Valid UTF-8 without control characters other than tab and line breaks. */
function isText(bytes: Buffer): boolean {
  // eslint-disable-next-line no-control-regex
  return isUtf8(bytes) && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(bytes.toString('utf8'))
}

/** How many of uppercase, lowercase and digits the string holds. */
function classes(data: string): number {
  return Number(/[A-Z]/.test(data)) + Number(/[a-z]/.test(data)) + Number(/\d/.test(data))
}

/**
 * The string without its line breaks when it is wrapped as MIME wraps base64 (lines of one width,
 * the last no longer); the string itself when it has none; undefined otherwise: words one to a
 * line are text, not data.
 */
function unwrapped(value: string): string | undefined {
  if (!/[\r\n]/.test(value)) return value
  const lines = value.split(/\r?\n/)
  if (lines.at(-1) === '') lines.pop()
  const width = lines[0]!.length
  const last = lines.at(-1)!.length
  const even = lines.slice(0, -1).every((line) => line.length === width)
  return width >= 60 && even && last <= width ? lines.join('') : undefined
}

function describeDataUrl(url: string): string {
  const comma = url.indexOf(',')
  const type = /^data:([\w.+-]+\/[\w.+-]+)/.exec(url)?.[1] ?? 'application/octet-stream'
  return `[data: URL, ${type}, ${base64Bytes(url.slice(comma + 1))} bytes, not shown]`
}

/** A few non-image signatures, so a description says what the bytes were. */
function sniffOther(data: string): string | undefined {
  const head = Buffer.from(data.slice(0, 16), 'base64')
  if (sniffImage(head)) return undefined
  const text = head.toString('latin1')
  if (text.startsWith('%PDF-')) return 'application/pdf'
  if (text.startsWith('PK\x03\x04')) return 'application/zip'
  if (head[0] === 0x1f && head[1] === 0x8b) return 'application/gzip'
  if (text.startsWith('RIFF') && text.slice(8, 12) === 'WAVE') return 'audio/wav'
  if (text.startsWith('ID3') || text.startsWith('OggS') || text.startsWith('fLaC')) return 'audio'
  return undefined
}

/**
 * Whether structured content only repeats the result's non-text blocks: every string in it is one
 * of theirs (an image's data or data: URL, its mime type, a resource's URI) and it holds nothing
 * else (no number, no other text). Then it would add a second, longer copy of the same thing.
 */
function onlyRepeats(structured: unknown, content: ContentBlock[]): boolean {
  const known = new Set<string>()
  for (const block of content) {
    if (block.type === 'text') continue
    known.add(block.type)
    for (const value of Object.values(block)) if (typeof value === 'string') known.add(value)
    if ((block.type === 'image' || block.type === 'audio') && typeof block.data === 'string') {
      known.add(block.data.replace(/\s+/g, ''))
      known.add(`data:${block.mimeType};base64,${block.data}`)
    }
    if (block.type === 'resource') {
      for (const value of Object.values(block.resource)) if (typeof value === 'string') known.add(value)
    }
  }
  if (known.size === 0) return false
  const leaves = (value: unknown): boolean => {
    if (typeof value === 'string') return known.has(value) || known.has(value.replace(/\s+/g, ''))
    if (Array.isArray(value)) return value.every(leaves)
    if (typeof value === 'object' && value !== null) return Object.values(value).every(leaves)
    return value === null
  }
  return leaves(structured)
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
