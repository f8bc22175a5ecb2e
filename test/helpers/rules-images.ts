// What the real APIs refuse about images and tool results, for the stand-in provider
// (provider-rules.ts). Each rule: the documented rule, where it is documented, and the API's own
// words for the refusal where they are known (seen in users' reports, linked).
import type { Rule } from './provider-rules.js'

type Json = Record<string, any>

const messagesOf = (body: Json): Json[] => (Array.isArray(body.messages) ? body.messages : [])
const partsOf = (content: unknown): Json[] => (Array.isArray(content) ? content : [])

// ---------------------------------------------------------------------------------------------
// OpenAI chat completions
// ---------------------------------------------------------------------------------------------

/**
 * Image parts go in user messages only: a tool (or assistant, or system) message's content is
 * text or text parts (https://platform.openai.com/docs/api-reference/chat/create, `messages`:
 * the tool message's `content` is "string or array" of text content parts; only the user message
 * lists image parts). The refusal, word for word as users met it
 * (https://github.com/openai/openai-node/issues/1030,
 * https://github.com/OpenHands/OpenHands/issues/7700): "Invalid 'messages[234]'. Image URLs are only
 * allowed for messages with role 'user', but this message with role 'tool' contains an image URL."
 */
export const openAiImagesOnlyInUserMessages: Rule = (body) => {
  for (const [i, m] of messagesOf(body).entries()) {
    if (m.role === 'user') continue
    if (partsOf(m.content).some((p) => p?.type === 'image_url')) {
      return `Invalid 'messages[${i}]'. Image URLs are only allowed for messages with role 'user', but this message with role '${m.role}' contains an image URL.`
    }
  }
  return undefined
}

/**
 * An assistant message with `tool_calls` is followed by one tool message per call before any
 * other message (https://platform.openai.com/docs/guides/function-calling, "append the results";
 * the refusal as users met it, https://github.com/BerriAI/litellm/issues/10083: "An assistant
 * message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.
 * The following tool_call_ids did not have response messages: call_…"). So a user message with
 * images may come only after the last tool message of the run.
 */
export const openAiToolCallsAnsweredFirst: Rule = (body) => {
  const messages = messagesOf(body)
  for (const [i, m] of messages.entries()) {
    if (m.role !== 'assistant' || !Array.isArray(m.tool_calls) || !m.tool_calls.length) continue
    const open = new Set<string>(m.tool_calls.map((c: Json) => c.id))
    for (let j = i + 1; j < messages.length && messages[j]!.role === 'tool'; j++) {
      open.delete(messages[j]!.tool_call_id)
    }
    if (open.size) {
      return `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(', ')}`
    }
  }
  return undefined
}

/**
 * An image part's data: URL is of an accepted type (PNG, JPEG, WEBP, non-animated GIF) and at
 * most 20 MB (https://platform.openai.com/docs/guides/images-vision, "Image input
 * requirements"). The wording of this refusal is the stand-in's own.
 */
export const openAiImageDataUrls: Rule = (body) => {
  for (const [i, m] of messagesOf(body).entries()) {
    for (const [j, p] of partsOf(m.content).entries()) {
      if (p?.type !== 'image_url') continue
      const url = String(p.image_url?.url ?? '')
      const match = /^data:(image\/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/]+={0,2})$/.exec(url)
      if (!match)
        return `Invalid 'messages[${i}].content[${j}].image_url.url': not a supported image data URL.`
      const bytes = Buffer.from(match[2]!, 'base64')
      if (bytes.length > 20 * 1024 * 1024)
        return `Invalid 'messages[${i}].content[${j}]': image larger than 20 MB.`
      if (magicType(bytes) !== match[1])
        return `Invalid 'messages[${i}].content[${j}].image_url.url': the data is not a ${match[1]} image.`
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Anthropic messages
// ---------------------------------------------------------------------------------------------

/**
 * A `tool_result`'s `content` is a string or a list of content blocks of type text or image (also
 * document and search_result, which the platform does not send); `is_error` is a boolean
 * (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use, "Handling
 * tool use and tool result content blocks"). Text blocks are never empty ("messages: text content
 * blocks must be non-empty").
 */
export const anthropicToolResultContent: Rule = (body) => {
  for (const [i, m] of messagesOf(body).entries()) {
    for (const [j, block] of partsOf(m.content).entries()) {
      if (block?.type !== 'tool_result') continue
      const at = `messages.${i}.content.${j}.tool_result`
      if (block.is_error !== undefined && typeof block.is_error !== 'boolean')
        return `${at}.is_error: Input should be a valid boolean`
      if (block.content === undefined || typeof block.content === 'string') continue
      if (!Array.isArray(block.content)) return `${at}.content: Input should be a valid list`
      for (const [k, inner] of block.content.entries()) {
        if (inner?.type === 'text') {
          if (typeof inner.text !== 'string' || !inner.text.trim())
            return 'messages: text content blocks must be non-empty'
        } else if (inner?.type !== 'image') {
          return `${at}.content.${k}: Input tag '${inner?.type}' found using 'type' does not match any of the expected tags: 'text', 'image', 'search_result', 'document'`
        }
      }
    }
  }
  return undefined
}

/**
 * An image block, in a user message or in a tool_result's content: a base64 source's
 * `media_type` is one of image/jpeg, image/png, image/gif, image/webp; the data is at most 5 MB
 * (measured on the base64 sent) and its bytes are of the type said; no side over 8000 px
 * (https://docs.anthropic.com/en/docs/build-with-claude/vision, "FAQ" and "Evaluate image size").
 * The refusals as users met them: https://github.com/anthropics/claude-code/issues/2438 ("…
 * tool_result.content.0.image.source.base64.media_type: Input should be 'image/jpeg',
 * 'image/png', 'image/gif' or 'image/webp'"), https://github.com/anthropics/claude-code/issues/10612
 * ("… image.source.base64: image exceeds 5 MB maximum: 15908784 bytes > 5242880 bytes"),
 * https://github.com/BerriAI/litellm/issues/24900 ("… image.source.base64: The image was specified
 * using the image/png media type, but the image appears to be a image/jpeg image"),
 * https://github.com/anthropics/claude-code/issues/4778 ("… image.source.base64.data: At least one
 * of the image dimensions exceed max allowed size: 8000 pixels").
 */
export const anthropicImageBlocks: Rule = (body) => {
  for (const [i, m] of messagesOf(body).entries()) {
    for (const [j, block] of partsOf(m.content).entries()) {
      if (block?.type === 'image') {
        const refusal = imageRefusal(block, `messages.${i}.content.${j}`)
        if (refusal) return refusal
      }
      if (block?.type !== 'tool_result') continue
      for (const [k, inner] of partsOf(block.content).entries()) {
        if (inner?.type !== 'image') continue
        const refusal = imageRefusal(inner, `messages.${i}.content.${j}.tool_result.content.${k}`)
        if (refusal) return refusal
      }
    }
  }
  return undefined
}

const ANTHROPIC_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp']
const FIVE_MB = 5 * 1024 * 1024

function imageRefusal(block: Json, at: string): string | undefined {
  const source = block.source ?? {}
  if (source.type !== 'base64') return undefined
  if (!ANTHROPIC_TYPES.includes(source.media_type))
    return `${at}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`
  const data = String(source.data ?? '')
  if (data.length > FIVE_MB)
    return `${at}.image.source.base64: image exceeds 5 MB maximum: ${data.length} bytes > ${FIVE_MB} bytes`
  const bytes = Buffer.from(data, 'base64')
  const actual = magicType(bytes)
  if (actual !== source.media_type)
    return `${at}.image.source.base64: The image was specified using the ${source.media_type} media type, but the image appears to be a ${actual ?? 'unknown'} image`
  const size = pngSize(bytes)
  if (size && Math.max(size.width, size.height) > 8000)
    return `${at}.image.source.base64.data: At least one of the image dimensions exceed max allowed size: 8000 pixels`
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Bytes, read the way the providers read them: by their signature, whatever a label says.
// ---------------------------------------------------------------------------------------------

function magicType(b: Buffer): string | undefined {
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])))
    return 'image/png'
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg'
  if (/^GIF8[79]a/.test(b.toString('latin1', 0, 6))) return 'image/gif'
  if (b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'image/webp'
  return undefined
}

function pngSize(b: Buffer): { width: number; height: number } | undefined {
  if (magicType(b) !== 'image/png' || b.length < 24) return undefined
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) }
}
