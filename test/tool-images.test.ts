// No bytes in the LLM's context: a tool's images reach a model that takes images as image parts
// (an Anthropic tool_result's image blocks; on the OpenAI wire a user message after the tool
// messages) and any other model as a short description; base64 never goes into text, neither from
// content blocks nor from structured content; failed tools are `is_error: true` on the Anthropic
// wire. Through the whole platform: /ws/chat, real MCP servers over stdio (server-everything and
// test/fixtures/image-server.ts), stand-in providers that refuse what the real APIs refuse
// (test/helpers/rules-images.ts), and assertions on the raw request bodies.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { toolOutcome } from '../src/mcp/results.js'
import type { ImagePart, LlmMessage } from '../src/llm/types.js'
import {
  ANTHROPIC_IMAGE_LIMITS,
  GROQ_IMAGE_LIMITS,
  imagesToSend,
  imageTokens,
  knownVisionModel,
  MAX_IMAGE_TOKENS,
  OPENAI_IMAGE_LIMITS,
  openAiWireLimits,
  takesImages,
} from '../src/llm/vision.js'
import { countMessage } from '../src/tokens/counter.js'
import { sniffBase64Image, sniffImage } from '../src/util/image.js'
import { fakeJpeg, noisePng } from './fixtures/images.js'
import {
  anthropicDefaultReply,
  anthropicStream,
  anthropicToolUse,
  openAiStream,
  openAiToolCalls,
  startLlmServer,
  type LlmServer,
  type RecordedRequest,
} from './helpers/llm-server.js'
import { Client, mcpSettled, startPlatform, terminal, type Frame, type Platform } from './helpers/platform.js'
import { anthropicRefusals, openAiRefusals } from './helpers/provider-rules.js'
import {
  anthropicImageBlocks,
  anthropicToolResultContent,
  openAiImageDataUrls,
  openAiImagesOnlyInUserMessages,
  openAiToolCallsAnsweredFirst,
} from './helpers/rules-images.js'

const EVERYTHING_DIR = fileURLToPath(
  new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/', import.meta.url),
)
const IMAGE_SERVER = fileURLToPath(new URL('./fixtures/image-server.js', import.meta.url))
/** server-everything's get-tiny-image: a 20 × 20 PNG. */
const { MCP_TINY_IMAGE: TINY } = (await import(
  pathToFileURL(join(EVERYTHING_DIR, 'tools', 'get-tiny-image.js')).href
)) as { MCP_TINY_IMAGE: string }
const TINY_BYTES = Buffer.from(TINY, 'base64').length
/** What image-server.ts sends (the same generator, the same bytes). */
const PHOTO = noisePng(100, 100).toString('base64')
const PHOTO_BYTES = Buffer.from(PHOTO, 'base64').length
const JPEG = fakeJpeg(64, 48).toString('base64')

const SERVERS = {
  everything: { command: process.execPath, args: [join(EVERYTHING_DIR, 'index.js'), 'stdio'] },
  images: { command: process.execPath, args: [IMAGE_SERVER] },
}

const OPENAI_RULES = openAiRefusals(
  openAiImagesOnlyInUserMessages,
  openAiToolCallsAnsweredFirst,
  openAiImageDataUrls,
)
const ANTHROPIC_RULES = anthropicRefusals(anthropicToolResultContent, anthropicImageBlocks)

interface Setup {
  llm: LlmServer
  platform: Platform
}

/** A platform whose one provider is `provider` on a stand-in that refuses what the real API does. */
async function setUp(wire: 'openai' | 'anthropic', provider: Record<string, unknown>): Promise<Setup> {
  const llm = await startLlmServer({ refuse: wire === 'openai' ? OPENAI_RULES : ANTHROPIC_RULES })
  if (wire === 'anthropic') llm.setDefault(anthropicDefaultReply)
  const platform = await startPlatform({
    baseUrl: llm.baseUrl,
    patch: (config) => {
      config.llm.providers = {
        p: {
          type: wire,
          base_url: llm.baseUrl,
          ...(wire === 'anthropic' ? { api_key: 'sk-ant-images' } : {}),
          temperature: 0.5,
          max_tokens: 500,
          ...provider,
        },
      }
      config.llm.active = 'p'
    },
    servers: SERVERS,
  })
  await mcpSettled(platform.app)
  const states = platform.app.mcp.status().map((s) => `${s.name}:${s.state}`)
  assert.deepEqual(states, ['everything:ready', 'images:ready'])
  return { llm, platform }
}

async function tearDown(setup: Setup | undefined): Promise<void> {
  await setup?.platform.close()
  await setup?.llm.close()
}

/** One chat turn; returns its frames after checking it completed. */
async function chat(platform: Platform, id: string, payload: Record<string, unknown>): Promise<Frame[]> {
  const client = await Client.inject(platform.app)
  const frames = await client.chatAndWait(id, payload)
  client.close()
  assert.equal(terminal(frames).status, 'complete', JSON.stringify(frames))
  return frames
}

const toolResults = (frames: Frame[]): any[] =>
  frames.filter((f) => f.chunk?.type === 'tool_result').map((f) => f.chunk!.data)
const conversationOf = (frames: Frame[]): string => terminal(frames).metadata!.conversation_id as string

/** A piece from the middle of base64 data: found in a body only where the data went. */
const piece = (base64: string): string =>
  base64.slice(Math.floor(base64.length / 2), Math.floor(base64.length / 2) + 40)

/** Occurrences of `base64`'s middle piece in the raw body. */
function timesIn(req: RecordedRequest, base64: string): number {
  return req.raw.split(piece(base64)).length - 1
}

/** Asserts no piece of any of these images is anywhere in the request body. */
function assertNoBytes(req: RecordedRequest, ...images: string[]): void {
  for (const image of images)
    assert.equal(timesIn(req, image), 0, `no base64 of the image in ${req.raw.slice(0, 2000)}`)
}

// -------------------------------------------------------------------------------------------------
// The rules the stand-ins enforce bite (otherwise the tests below prove nothing).
// -------------------------------------------------------------------------------------------------

test('the stand-in rules refuse what the APIs refuse', () => {
  const image = { type: 'image_url', image_url: { url: `data:image/png;base64,${TINY}` } }
  assert.match(
    openAiImagesOnlyInUserMessages({ messages: [{ role: 'tool', tool_call_id: 'c', content: [image] }] }) ??
      '',
    /^Invalid 'messages\[0\]'\. Image URLs are only allowed for messages with role 'user', but this message with role 'tool' contains an image URL\.$/,
  )
  assert.equal(openAiImagesOnlyInUserMessages({ messages: [{ role: 'user', content: [image] }] }), undefined)
  const calls = { role: 'assistant', content: null, tool_calls: [{ id: 'c1' }, { id: 'c2' }] }
  assert.match(
    openAiToolCallsAnsweredFirst({
      messages: [
        calls,
        { role: 'tool', tool_call_id: 'c1' },
        { role: 'user', content: 'x' },
        { role: 'tool', tool_call_id: 'c2' },
      ],
    }) ?? '',
    /did not have response messages: c2$/,
  )
  const mislabeled = { type: 'image_url', image_url: { url: `data:image/png;base64,${JPEG}` } }
  assert.ok(openAiImageDataUrls({ messages: [{ role: 'user', content: [mislabeled] }] }))

  const result = (content: unknown, extra = {}) => ({
    messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content, ...extra }] }],
  })
  const block = (media_type: string, data: string) => ({
    type: 'image',
    source: { type: 'base64', media_type, data },
  })
  assert.equal(
    anthropicImageBlocks(result([block('image/svg+xml', TINY)])),
    "messages.0.content.0.tool_result.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
  )
  assert.equal(
    anthropicImageBlocks(result([block('image/png', JPEG)])),
    'messages.0.content.0.tool_result.content.0.image.source.base64: The image was specified using the image/png media type, but the image appears to be a image/jpeg image',
  )
  assert.match(
    anthropicImageBlocks(result([block('image/png', 'A'.repeat(6 * 1024 * 1024))])) ?? '',
    /exceeds 5 MB maximum/,
  )
  assert.match(
    anthropicImageBlocks(result([block('image/png', noisePng(8001, 1).toString('base64'))])) ?? '',
    /8000 pixels/,
  )
  assert.equal(anthropicImageBlocks(result([block('image/png', TINY)])), undefined)
  assert.match(anthropicToolResultContent(result([{ type: 'text', text: '' }])) ?? '', /must be non-empty/)
  assert.match(
    anthropicToolResultContent(result('x', { is_error: 'yes' })) ?? '',
    /is_error: Input should be a valid boolean/,
  )
})

// -------------------------------------------------------------------------------------------------
// What a tool result becomes (src/mcp/results.ts)
// -------------------------------------------------------------------------------------------------

describe('tool results: binary data described, images kept apart', () => {
  test('an image repeated in structured content is not sent twice (the 30 KB image that became a 40 KB message)', () => {
    const outcome = toolOutcome({
      content: [{ type: 'image', data: PHOTO, mimeType: 'image/png' }],
      structuredContent: { type: 'image', data: PHOTO, mimeType: 'image/png' },
    })
    assert.equal(outcome.content, `[image: image/png, ${PHOTO_BYTES} bytes]`)
    assert.ok(PHOTO_BYTES > 30_000)
    assert.deepEqual(outcome.images, [
      { mime_type: 'image/png', width: 100, height: 100, data: PHOTO, bytes: PHOTO_BYTES },
    ])
  })

  test('structured content of its own is sent, its binary strings described', () => {
    const outcome = toolOutcome({
      content: [{ type: 'image', data: PHOTO, mimeType: 'image/png' }],
      structuredContent: { caption: 'A cat', image: PHOTO, link: `see data:image/png;base64,${TINY} here` },
    })
    const [description, json] = outcome.content.split('\n')
    assert.equal(description, `[image: image/png, ${PHOTO_BYTES} bytes]`)
    assert.deepEqual(JSON.parse(json!), {
      caption: 'A cat',
      image: `[binary data (image/png), ${PHOTO_BYTES} bytes, not shown]`,
      link: `see [data: URL, image/png, ${TINY_BYTES} bytes, not shown] here`,
    })
  })

  test('base64 is found line-wrapped, in arrays, in base64url, and in the old toolResult', () => {
    const wrapped = PHOTO.slice(0, 3000).replace(/.{76}/g, '$&\r\n')
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(600, 7)])
    const outcome = toolOutcome({
      content: [],
      structuredContent: { pages: [wrapped, pdf.toString('base64url')], short: 'QUJD', count: 2 },
    })
    const json = JSON.parse(outcome.content)
    assert.match(json.pages[0], /^\[binary data \(image\/png\), \d+ bytes, not shown\]$/)
    assert.equal(json.pages[1], `[binary data (application/pdf), ${pdf.length} bytes, not shown]`)
    assert.equal(json.short, 'QUJD', 'a short string is text, whatever its letters')
    assert.equal(json.count, 2)
    const old = toolOutcome({ toolResult: { png: PHOTO } })
    assert.deepEqual(JSON.parse(old.content), {
      png: `[binary data (image/png), ${PHOTO_BYTES} bytes, not shown]`,
    })
  })

  test('prose and identifiers are not taken for base64', () => {
    const prose = 'word '.repeat(100)
    const letters = 'x'.repeat(1000)
    const token = `tok_${'Ab9'.repeat(100)}`
    const list = 'alpha\nbeta\ngamma\n'.repeat(30)
    const path = `/usr/local/${'segment/'.repeat(40)}file.txt`
    const outcome = toolOutcome({ content: [{ type: 'text', text: prose }], structuredContent: { path } })
    assert.equal(outcome.content, prose)
    assert.equal(toolOutcome({ content: [{ type: 'text', text: list }] }).content, list)
    assert.equal(
      toolOutcome({ content: [{ type: 'text', text: token }] }).content,
      token,
      'a token a tool returns',
    )
    assert.deepEqual(JSON.parse(toolOutcome({ content: [], structuredContent: { letters } }).content), {
      letters,
    })
    assert.deepEqual(JSON.parse(toolOutcome({ content: [], structuredContent: { path } }).content), { path })
    // An opaque cursor (base64 of JSON) is what the LLM must pass back to get the next page.
    const cursor = Buffer.from(
      JSON.stringify({
        after: 'item-00421',
        filters: { owner: 'alice', labels: ['a', 'b'] },
        pad: 'x'.repeat(200),
      }),
    ).toString('base64')
    assert.ok(cursor.length > 300)
    assert.deepEqual(
      JSON.parse(toolOutcome({ content: [], structuredContent: { nextCursor: cursor } }).content),
      {
        nextCursor: cursor,
      },
    )
    // The same length of binary bytes is described.
    const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 151 + 7) % 256)).toString('base64')
    assert.match(
      toolOutcome({ content: [], structuredContent: { bytes } }).content,
      /\[binary data, 300 bytes, not shown\]/,
    )
  })

  test('data: URLs in text are described, and a text block that is base64 of a known file type', () => {
    const outcome = toolOutcome({
      content: [
        { type: 'text', text: `Logo: data:image/png;base64,${TINY}.` },
        { type: 'text', text: PHOTO },
      ],
    })
    assert.equal(
      outcome.content,
      `Logo: [data: URL, image/png, ${TINY_BYTES} bytes, not shown].\n[binary data (image/png), ${PHOTO_BYTES} bytes, not shown]`,
    )
  })

  test("an image's type is read from its bytes; bytes that are no accepted image are only described", () => {
    const outcome = toolOutcome({
      content: [
        { type: 'image', data: JPEG, mimeType: 'image/png' },
        { type: 'image', data: Buffer.from('<svg/>').toString('base64'), mimeType: 'image/svg+xml' },
        { type: 'image', data: 'not base64 at all!', mimeType: 'image/png' },
      ],
    })
    assert.deepEqual(
      outcome.images?.map((i) => [i.mime_type, i.width, i.height]),
      [['image/jpeg', 64, 48]],
    )
    assert.match(outcome.content, /^\[image: image\/png, \d+ bytes\]\n\[image: image\/svg\+xml, 6 bytes\]/)
    const url = toolOutcome({
      content: [
        { type: 'image', data: Buffer.from(TINY, 'base64').toString('base64url'), mimeType: 'image/png' },
      ],
    })
    assert.equal(url.images?.[0]?.data, TINY, 'base64url, unpadded: sent as standard base64')
  })
})

test('image headers: type and size of PNG, JPEG, GIF and WebP', () => {
  assert.deepEqual(sniffBase64Image(TINY), { mime_type: 'image/png', width: 20, height: 20 })
  assert.deepEqual(sniffImage(fakeJpeg(640, 480)), { mime_type: 'image/jpeg', width: 640, height: 480 })
  const gif = Buffer.from('GIF89a\x0a\x00\x05\x00', 'latin1')
  assert.deepEqual(sniffImage(gif), { mime_type: 'image/gif', width: 10, height: 5 })
  const vp8x = Buffer.alloc(30)
  vp8x.write('RIFF', 0, 'latin1')
  vp8x.write('WEBPVP8X', 8, 'latin1')
  vp8x.writeUIntLE(1919, 24, 3)
  vp8x.writeUIntLE(1079, 27, 3)
  assert.deepEqual(sniffImage(vp8x), { mime_type: 'image/webp', width: 1920, height: 1080 })
  assert.equal(sniffImage(Buffer.from('%PDF-1.7')), undefined)
})

// -------------------------------------------------------------------------------------------------
// Which models take images, what is sent, what it costs (src/llm/vision.ts)
// -------------------------------------------------------------------------------------------------

test('vision: known models by name, and the provider setting wins either way', () => {
  const yes = [
    'gpt-4o',
    'gpt-4o-mini',
    'openai/gpt-4.1-mini',
    'gpt-5',
    'o3',
    'o4-mini',
    'claude-3-haiku-20240307',
    'anthropic/claude-3.5-sonnet',
    'claude-sonnet-4-5',
    'claude-opus-4-1-20250805',
    'gemini-2.5-flash',
    'google/gemini-1.5-pro',
    'meta-llama/llama-4-scout-17b-16e-instruct',
    'pixtral-12b-2409',
    'llava:13b',
    'llama3.2-vision:11b',
    'qwen2.5vl:7b',
    'gemma3:27b',
  ]
  const no = [
    'llama-3.3-70b-versatile',
    'gpt-3.5-turbo',
    'o3-mini',
    'o1-mini',
    'claude-2.1',
    'gpt-4o-audio-preview',
    'text-embedding-3-small',
    'mixtral-8x7b-32768',
    'gemma3:1b',
    'test-model',
  ]
  for (const model of yes) assert.equal(knownVisionModel(model), true, model)
  for (const model of no) assert.equal(knownVisionModel(model), false, model)
  assert.equal(takesImages({}, 'gpt-4o'), true)
  assert.equal(takesImages({ vision: false }, 'gpt-4o'), false)
  assert.equal(takesImages({ vision: true }, 'my-local-model'), true)
})

test('images sent: newest first within each API limits; the others keep their description', () => {
  const image = (n: number, chars = 100, extra: Partial<ImagePart> = {}): ImagePart => ({
    mime_type: 'image/png',
    data: String(n).padEnd(chars, 'A'),
    bytes: chars,
    ...extra,
  })
  const tool = (id: string, images: ImagePart[]): LlmMessage => ({
    role: 'tool',
    tool_call_id: id,
    content: id,
    images,
  })
  const many = Array.from({ length: 25 }, (_, n) => image(n))
  const sent = imagesToSend([tool('a', many.slice(0, 10)), tool('b', many.slice(10))], ANTHROPIC_IMAGE_LIMITS)
  assert.equal(sent.size, 20, 'Anthropic: 20 at most, so the 8000 px rule holds')
  assert.ok(
    many.slice(5).every((i) => sent.has(i)),
    'the 20 newest',
  )

  const big = image(1, 6 * 1024 * 1024)
  const wide = image(2, 100, { width: 9000, height: 10 })
  assert.equal(imagesToSend([tool('c', [big, wide])], ANTHROPIC_IMAGE_LIMITS).size, 0)
  assert.equal(imagesToSend([tool('c', [big, wide])], OPENAI_IMAGE_LIMITS).size, 2)
  assert.equal(imagesToSend([tool('c', many)], GROQ_IMAGE_LIMITS).size, 5)
  assert.equal(imagesToSend([tool('c', many)], undefined).size, 0, 'no vision: none')
  assert.equal(
    openAiWireLimits({ name: 'fast', base_url: 'https://api.groq.com/openai/v1' }),
    GROQ_IMAGE_LIMITS,
  )
  assert.equal(
    openAiWireLimits({ name: 'local', base_url: 'http://127.0.0.1:11434/v1' }),
    OPENAI_IMAGE_LIMITS,
  )
})

test('an image counts by its pixels (an estimate), never by its base64', () => {
  assert.equal(imageTokens({ width: 20, height: 20 }), 1)
  assert.equal(imageTokens({ width: 1000, height: 1000 }), 1334)
  assert.equal(imageTokens({ width: 8000, height: 8000 }), MAX_IMAGE_TOKENS)
  assert.equal(imageTokens({}), MAX_IMAGE_TOKENS, 'unknown size: the largest')
  const images = toolOutcome({ content: [{ type: 'image', data: PHOTO, mimeType: 'image/png' }] }).images!
  const without: LlmMessage = { role: 'tool', tool_call_id: 'c', content: 'a photo' }
  const withImage: LlmMessage = { ...without, images }
  assert.equal(countMessage(withImage, 'gpt-4o') - countMessage(without, 'gpt-4o'), imageTokens(images[0]!))
  assert.equal(
    imageTokens(images[0]!),
    14,
    '100 × 100 px: 14 tokens, where its 40 KB of base64 would be thousands',
  )
})

// -------------------------------------------------------------------------------------------------
// The OpenAI wire
// -------------------------------------------------------------------------------------------------

describe('openai wire, a model that takes images (vision: true)', () => {
  let s: Setup
  before(async () => {
    s = await setUp('openai', { model: 'test-model', vision: true })
  })
  after(() => tearDown(s))

  test('the image goes in a user message after the tool messages, never as text; only within its turn', async () => {
    const { llm, platform } = s
    llm.requests.length = 0
    llm.reply({
      body: openAiToolCalls([
        { id: 'call_tiny', name: 'everything__get-tiny-image', arguments: {} },
        { id: 'call_fail', name: 'images__broken', arguments: {} },
      ]),
    })
    llm.reply({ body: openAiToolCalls([{ id: 'call_photo', name: 'images__photo', arguments: {} }]) })
    llm.reply({ body: openAiStream(['A logo and a photo.']) })
    const frames = await chat(platform, 'oa-1', { text: 'Show me the logo' })

    assert.equal(llm.requests.length, 3, 'no request refused')
    const [, second, third] = llm.requests
    const tinyText = `Here's the image you requested:\n[image: image/png, ${TINY_BYTES} bytes]\nThe image above is the MCP logo.`
    assert.deepEqual(second!.body.messages.slice(3), [
      { role: 'tool', tool_call_id: 'call_tiny', content: tinyText },
      { role: 'tool', tool_call_id: 'call_fail', content: 'The camera is offline.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'The image of the tool result call_tiny:' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${TINY}` } },
        ],
      },
    ])
    assert.equal(timesIn(second!, TINY), 1, 'the bytes once, in the image part')
    // The second hop: the first hop's image is still there, the new one after its own tool message.
    const hop2 = third!.body.messages.slice(6)
    assert.equal(hop2[0].role, 'assistant')
    assert.deepEqual(hop2[1], {
      role: 'tool',
      tool_call_id: 'call_photo',
      content: `[image: image/png, ${PHOTO_BYTES} bytes]`,
    })
    assert.deepEqual(hop2[2].content[1], {
      type: 'image_url',
      image_url: { url: `data:image/png;base64,${PHOTO}` },
    })
    assert.equal(timesIn(third!, TINY), 1)
    assert.equal(timesIn(third!, PHOTO), 1, 'the structured copy of the photo is not sent')

    // The client and the store get the description.
    assert.deepEqual(
      toolResults(frames)
        .map((r) => [r.id, r.is_error, r.content])
        .sort(),
      [
        ['call_fail', true, 'The camera is offline.'],
        ['call_photo', false, `[image: image/png, ${PHOTO_BYTES} bytes]`],
        ['call_tiny', false, tinyText],
      ],
    )
    const client = await Client.inject(platform.app)
    const history = await client.ask('get_history', { conversation_id: conversationOf(frames) })
    client.close()
    const stored = JSON.stringify(history.result!.events)
    assert.ok(!stored.includes(piece(TINY)) && !stored.includes(piece(PHOTO)), 'no bytes in the store')

    // A later turn reads the descriptions: the images went to the LLM in their own turn only.
    llm.requests.length = 0
    await chat(platform, 'oa-2', { text: 'And again?', conversation_id: conversationOf(frames) })
    const [later] = llm.requests
    assertNoBytes(later!, TINY, PHOTO)
    assert.ok(later!.body.messages.every((m: any) => typeof m.content === 'string' || m.content === null))
    assert.ok(later!.body.messages.some((m: any) => m.role === 'tool' && m.content === tinyText))
  })

  test('a mislabeled image is sent as what its bytes are; an SVG and audio only described', async () => {
    const { llm, platform } = s
    llm.requests.length = 0
    llm.reply({
      body: openAiToolCalls([
        { id: 'call_jpeg', name: 'images__mislabeled', arguments: {} },
        { id: 'call_svg', name: 'images__vector', arguments: {} },
        { id: 'call_wav', name: 'images__recording', arguments: {} },
      ]),
    })
    llm.reply({ body: openAiStream(['Seen.']) })
    await chat(platform, 'oa-3', { text: 'Show me everything' })
    const second = llm.requests[1]!
    const tool = (id: string) => second.body.messages.find((m: any) => m.tool_call_id === id).content
    assert.equal(
      tool('call_jpeg'),
      `A picture:\n[image: image/png, ${Buffer.from(JPEG, 'base64').length} bytes]`,
    )
    assert.equal(tool('call_svg'), '[image: image/svg+xml, 41 bytes]')
    assert.equal(tool('call_wav'), 'Recorded.\n[audio: audio/wav, 2016 bytes]')
    const images = second.body.messages.at(-1)
    assert.equal(images.role, 'user')
    assert.deepEqual(images.content, [
      { type: 'text', text: 'The image of the tool result call_jpeg:' },
      { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${JPEG}` } },
    ])
  })
})

describe('openai wire, a model that takes no images', () => {
  let s: Setup
  before(async () => {
    s = await setUp('openai', { model: 'llama-3.3-70b-versatile' })
  })
  after(() => tearDown(s))

  test('a 30 KB image with structured content is a short description, and no byte of it is sent', async () => {
    const { llm, platform } = s
    llm.requests.length = 0
    llm.reply({
      body: openAiToolCalls([
        { id: 'call_photo', name: 'images__photo', arguments: {} },
        { id: 'call_snap', name: 'images__snapshot', arguments: {} },
        { id: 'call_inline', name: 'images__inline', arguments: {} },
      ]),
    })
    llm.reply({ body: openAiStream(['Described.']) })
    await chat(platform, 'on-1', { text: 'Take a photo' })
    const second = llm.requests[1]!
    assertNoBytes(second, PHOTO)
    const tool = (id: string) => second.body.messages.find((m: any) => m.tool_call_id === id).content
    const said = ['call_photo', 'call_snap', 'call_inline'].map(tool).join('')
    assert.ok(
      said.length < 500,
      `the three results take ${said.length} characters, where the photo alone was 40,000`,
    )
    assert.equal(tool('call_photo'), `[image: image/png, ${PHOTO_BYTES} bytes]`)
    assert.deepEqual(JSON.parse(tool('call_snap')), {
      caption: 'The front page',
      thumbnail: `[data: URL, image/png, ${PHOTO_BYTES} bytes, not shown]`,
      raw: `[binary data (image/png), ${PHOTO_BYTES} bytes, not shown]`,
      pages: 3,
    })
    assert.equal(
      tool('call_inline'),
      `Here: [data: URL, image/png, ${PHOTO_BYTES} bytes, not shown] (the logo)`,
    )
    assert.ok(
      second.body.messages.every((m: any) => m.role !== 'user' || typeof m.content === 'string'),
      'no image message',
    )
  })

  test('a known vision model named in the chat gets the image', async () => {
    const { llm, platform } = s
    llm.requests.length = 0
    llm.reply({
      body: openAiToolCalls([{ id: 'call_tiny', name: 'everything__get-tiny-image', arguments: {} }]),
    })
    llm.reply({ body: openAiStream(['A logo.']) })
    await chat(platform, 'on-2', { text: 'Logo please', model: 'gpt-4o' })
    const second = llm.requests[1]!
    assert.equal(second.body.model, 'gpt-4o')
    assert.equal(second.body.messages.at(-1).content[1].image_url.url, `data:image/png;base64,${TINY}`)
    assert.equal(timesIn(second, TINY), 1)
  })
})

// -------------------------------------------------------------------------------------------------
// The Anthropic wire
// -------------------------------------------------------------------------------------------------

describe('anthropic wire, a Claude model (takes images)', () => {
  let s: Setup
  before(async () => {
    s = await setUp('anthropic', { model: 'claude-sonnet-4-5' })
  })
  after(() => tearDown(s))

  test('the image is an image block of its tool_result; a failed tool is is_error: true', async () => {
    const { llm, platform } = s
    llm.requests.length = 0
    llm.reply({
      body: anthropicToolUse([
        { id: 'toolu_tiny', name: 'everything__get-tiny-image', input: {} },
        { id: 'toolu_jpeg', name: 'images__mislabeled', input: {} },
        { id: 'toolu_fail', name: 'images__broken', input: {} },
        { id: 'toolu_svg', name: 'images__vector', input: {} },
      ]),
    })
    llm.reply({ body: anthropicStream(['I see them.']) })
    const frames = await chat(platform, 'an-1', { text: 'Show me' })

    assert.equal(llm.requests.length, 2, 'no request refused')
    const second = llm.requests[1]!
    const results = second.body.messages.at(-1)
    assert.equal(results.role, 'user')
    assert.deepEqual(results.content, [
      {
        type: 'tool_result',
        tool_use_id: 'toolu_tiny',
        content: [
          {
            type: 'text',
            text: `Here's the image you requested:\n[image: image/png, ${TINY_BYTES} bytes]\nThe image above is the MCP logo.`,
          },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: TINY } },
        ],
      },
      {
        type: 'tool_result',
        tool_use_id: 'toolu_jpeg',
        content: [
          {
            type: 'text',
            text: `A picture:\n[image: image/png, ${Buffer.from(JPEG, 'base64').length} bytes]`,
          },
          { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: JPEG } },
        ],
      },
      { type: 'tool_result', tool_use_id: 'toolu_fail', content: 'The camera is offline.', is_error: true },
      { type: 'tool_result', tool_use_id: 'toolu_svg', content: '[image: image/svg+xml, 41 bytes]' },
    ])
    assert.equal(timesIn(second, TINY), 1, 'the bytes once, in the image block')
    assert.equal(timesIn(second, JPEG), 1)

    // The next turn: the failure is still is_error (from the stored status), the images described.
    llm.requests.length = 0
    await chat(platform, 'an-2', { text: 'Thanks', conversation_id: conversationOf(frames) })
    const later = llm.requests[0]!
    assertNoBytes(later, TINY, JPEG)
    const earlier = later.body.messages[2].content
    assert.deepEqual(
      earlier.map((b: any) => [b.tool_use_id, typeof b.content, b.is_error]),
      [
        ['toolu_tiny', 'string', undefined],
        ['toolu_jpeg', 'string', undefined],
        ['toolu_fail', 'string', true],
        ['toolu_svg', 'string', undefined],
      ],
    )
  })
})

describe('anthropic wire, vision: false', () => {
  let s: Setup
  before(async () => {
    s = await setUp('anthropic', { model: 'claude-sonnet-4-5', vision: false })
  })
  after(() => tearDown(s))

  test('the images are described, and no byte of them is sent', async () => {
    const { llm, platform } = s
    llm.requests.length = 0
    llm.reply({
      body: anthropicToolUse([
        { id: 'toolu_tiny', name: 'everything__get-tiny-image', input: {} },
        { id: 'toolu_photo', name: 'images__photo', input: {} },
      ]),
    })
    llm.reply({ body: anthropicStream(['Described.']) })
    await chat(platform, 'af-1', { text: 'Show me' })
    const second = llm.requests[1]!
    assertNoBytes(second, TINY, PHOTO)
    assert.deepEqual(second.body.messages.at(-1).content, [
      {
        type: 'tool_result',
        tool_use_id: 'toolu_tiny',
        content: `Here's the image you requested:\n[image: image/png, ${TINY_BYTES} bytes]\nThe image above is the MCP logo.`,
      },
      {
        type: 'tool_result',
        tool_use_id: 'toolu_photo',
        content: `[image: image/png, ${PHOTO_BYTES} bytes]`,
      },
    ])
  })
})
