// Images for models that take them: which models do, what each API accepts, which of a request's
// tool images go along, and what one costs in tokens. A model that takes no images (or an image
// past a limit) gets the description already in the tool's text, never the bytes.
import type { ProviderConfig } from '../config/types.js'
import type { ImageType } from '../util/image.js'
import type { ImagePart, LlmMessage } from './types.js'

/**
 * Models known to take images, by name, matched anywhere in the configured model name (so
 * `openai/gpt-4o` of OpenRouter, `meta-llama/llama-4-scout-…` of Groq and `llava:13b` of Ollama
 * count). A provider's `vision: true | false` overrides this list either way.
 */
const VISION_MODELS: RegExp[] = [
  /gpt-4o/, // gpt-4o, gpt-4o-mini, chatgpt-4o-latest
  /gpt-4\.1/,
  /gpt-4\.5/,
  /gpt-4-turbo/,
  /gpt-4-vision/,
  /gpt-5/,
  /(^|\/)o1(?!-mini|-preview)(\b|-)/,
  /(^|\/)o3(?!-mini)(\b|-)/,
  /(^|\/)o4-mini/,
  // Claude 3 and later: claude-3-…, claude-3.5-…, claude-sonnet-4-…, claude-opus-4-1, …
  /claude-(?:[3-9]|\d\d)/,
  /claude-(?:opus|sonnet|haiku)-(?:[3-9]|\d\d)/,
  /gemini-(?:1\.5|[2-9])/,
  /gemini-.*vision/,
  /gemma-?3(?!n)(?![-:](?:1b|270m))/,
  /llama-?4/,
  /llama-?3\.2-?(?:\d+b-)?vision/,
  /pixtral/,
  /mistral-(?:small|medium)-(?:3\.[12]|2503|2505|2506|latest)/,
  /llava/,
  /bakllava/,
  /qwen[\d.]*-?vl/,
  /qvq/,
  /minicpm-v/,
  /moondream/,
  /internvl/,
  /granite[\d.]*-vision/,
  /phi-?[34](?:\.5)?-(?:vision|multimodal)/,
  /grok-(?:[2-9]-)?vision/,
  /grok-4/,
]

/** Names that contain a vision model's but are not one (audio, speech, embeddings, search). */
const NOT_VISION: RegExp[] = [/-audio/, /-realtime/, /-transcribe/, /-tts/, /embedding/, /-search-/]

/** Whether the model is known by its name to take images. */
export function knownVisionModel(model: string): boolean {
  const name = model.toLowerCase()
  return VISION_MODELS.some((r) => r.test(name)) && !NOT_VISION.some((r) => r.test(name))
}

/** The provider's `vision` when it says; otherwise what the model's name tells. */
export function takesImages(provider: Pick<ProviderConfig, 'vision'>, model: string): boolean {
  return provider.vision ?? knownVisionModel(model)
}

/** What one API accepts of images in a request. */
export interface ImageLimits {
  types: ReadonlySet<ImageType>
  /** Base64 characters of one image. */
  maxImageChars: number
  /** Base64 characters of all images of one request together. */
  maxRequestChars: number
  maxImages: number
  /** Pixels of the longer side; an image of unknown size is let through. */
  maxSide?: number
  /** Pixels of one image (width × height); an image of unknown size is let through. */
  maxPixels?: number
}

const MB = 1024 * 1024
const ALL_TYPES: ReadonlySet<ImageType> = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp'])

/**
 * Anthropic (https://docs.anthropic.com/en/docs/build-with-claude/vision): JPEG, PNG, GIF, WebP;
 * at most 5 MB per image, which the API measures on the base64 it receives ("image exceeds 5 MB
 * maximum: … bytes > 5242880 bytes"); at most 8000 px a side, but 2000 px once a request holds
 * more than 20 images, so no more than 20 are sent; and 32 MB for the whole request, of which
 * images take at most 24 MB here, leaving room for the conversation.
 */
export const ANTHROPIC_IMAGE_LIMITS: ImageLimits = {
  types: ALL_TYPES,
  maxImageChars: 5 * MB,
  maxRequestChars: 24 * MB,
  maxImages: 20,
  maxSide: 8000,
}

/**
 * OpenAI (https://platform.openai.com/docs/guides/images-vision, "Image input requirements"):
 * PNG, JPEG, WebP, non-animated GIF; up to 20 MB per image, 50 MB of image bytes per request, 500
 * images per request. The sizes are counted here on the base64, which is a third larger: a bound
 * on the safe side.
 */
export const OPENAI_IMAGE_LIMITS: ImageLimits = {
  types: ALL_TYPES,
  maxImageChars: 20 * MB,
  maxRequestChars: 50 * MB,
  maxImages: 500,
}

/**
 * Groq (https://console.groq.com/docs/vision): a request with base64 images may be 4 MB in all,
 * with at most 5 images and 33 megapixels each. Images take at most 3 MB, leaving room for the
 * conversation.
 */
export const GROQ_IMAGE_LIMITS: ImageLimits = {
  types: ALL_TYPES,
  maxImageChars: 3 * MB,
  maxRequestChars: 3 * MB,
  maxImages: 5,
  maxPixels: 33_177_600,
}

/** The limits of an openai-wire provider: Groq's where it is Groq, OpenAI's for everyone else. */
export function openAiWireLimits(provider: Pick<ProviderConfig, 'name' | 'base_url'>): ImageLimits {
  let host = ''
  try {
    host = new URL(provider.base_url).hostname
  } catch {
    // A base_url the config accepted is a URL; an unreadable one is simply not Groq's.
  }
  return provider.name === 'groq' || host === 'groq.com' || host.endsWith('.groq.com')
    ? GROQ_IMAGE_LIMITS
    : OPENAI_IMAGE_LIMITS
}

/**
 * The tool images of a request that are sent as images: those the API accepts, newest first
 * (the model most likely needs the latest), while the request's limits hold. The others, and
 * every image when the model takes none (`limits` undefined), are left to their description.
 */
export function imagesToSend(messages: LlmMessage[], limits: ImageLimits | undefined): Set<ImagePart> {
  const chosen = new Set<ImagePart>()
  if (!limits) return chosen
  let chars = 0
  for (let i = messages.length - 1; i >= 0 && chosen.size < limits.maxImages; i--) {
    const m = messages[i]!
    if (m.role !== 'tool' || !m.images) continue
    for (let j = m.images.length - 1; j >= 0 && chosen.size < limits.maxImages; j--) {
      const image = m.images[j]!
      if (!limits.types.has(image.mime_type)) continue
      if (image.data.length > limits.maxImageChars || chars + image.data.length > limits.maxRequestChars)
        continue
      const { width = 0, height = 0 } = image
      if (limits.maxSide && Math.max(width, height) > limits.maxSide) continue
      if (limits.maxPixels && width * height > limits.maxPixels) continue
      chosen.add(image)
      chars += image.data.length
    }
  }
  return chosen
}

/**
 * The estimate of an image's tokens: Anthropic's documented cost, width × height / 750, after
 * the image is scaled to fit 1568 px a side and 1.15 megapixels (so at most about 1,600 tokens);
 * an image of unknown size counts as the largest. OpenAI's costs are of the same order (85 + 170
 * per 512-px tile for GPT-4o, at most 1,536 patches for the mini models). Only an estimate: the
 * provider's usage report is the truth.
 */
export function imageTokens(image: Pick<ImagePart, 'width' | 'height'>): number {
  const { width, height } = image
  if (!width || !height) return MAX_IMAGE_TOKENS
  const scale = Math.min(1, 1568 / Math.max(width, height))
  const pixels = Math.min(width * height * scale * scale, MAX_IMAGE_PIXELS)
  return Math.max(1, Math.ceil(pixels / 750))
}

const MAX_IMAGE_PIXELS = 1_150_000
export const MAX_IMAGE_TOKENS = Math.ceil(MAX_IMAGE_PIXELS / 750)
