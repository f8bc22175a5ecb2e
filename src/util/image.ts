// What kind of image some bytes are, and how large, read from the file's own header: a tool's
// `mimeType` may be wrong, and providers check the bytes against the type they are told.

/** The image formats every provider that takes images accepts (Anthropic and OpenAI alike). */
export type ImageType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp'

export interface ImageInfo {
  mime_type: ImageType
  /** Pixels, when the header holds them within the bytes read. */
  width?: number
  height?: number
}

/**
 * How much base64 is decoded to find the size: a JPEG's frame header may follow tens of kilobytes
 * of EXIF data and thumbnails. A multiple of 4, so the prefix decodes exactly.
 */
const HEADER_BASE64_CHARS = 128 * 1024

/** The type and size of base64 image data, or undefined when the bytes are no image we know. */
export function sniffBase64Image(base64: string): ImageInfo | undefined {
  return sniffImage(Buffer.from(base64.slice(0, HEADER_BASE64_CHARS), 'base64'))
}

export function sniffImage(b: Buffer): ImageInfo | undefined {
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) {
    // The IHDR chunk comes first: width and height at 16 and 20.
    return b.length >= 24 && b.toString('latin1', 12, 16) === 'IHDR'
      ? { mime_type: 'image/png', width: b.readUInt32BE(16), height: b.readUInt32BE(20) }
      : { mime_type: 'image/png' }
  }
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) {
    return b.length >= 10
      ? { mime_type: 'image/gif', width: b.readUInt16LE(6), height: b.readUInt16LE(8) }
      : { mime_type: 'image/gif' }
  }
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') {
    return { mime_type: 'image/webp', ...webpSize(b) }
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    return { mime_type: 'image/jpeg', ...jpegSize(b) }
  }
  return undefined
}

function webpSize(b: Buffer): { width: number; height: number } | undefined {
  if (b.length < 30) return undefined
  switch (b.toString('latin1', 12, 16)) {
    case 'VP8 ': // lossy: 14-bit sizes after the frame tag and start code
      return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff }
    case 'VP8L': {
      // lossless: 14 bits each, minus one, after the 0x2f signature
      const bits = b.readUInt32LE(21)
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 }
    }
    case 'VP8X': // extended: 24 bits each, minus one
      return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 }
    default:
      return undefined
  }
}

/** Walks the JPEG's segments to its first frame header (SOFn), which holds the size. */
function jpegSize(b: Buffer): { width: number; height: number } | undefined {
  let at = 2
  while (at + 9 < b.length) {
    if (b[at] !== 0xff) return undefined
    const marker = b[at + 1]!
    if (marker === 0xff) {
      at++ // fill byte
      continue
    }
    // Markers without a length: TEM and the restart markers.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2
      continue
    }
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: b.readUInt16BE(at + 5), width: b.readUInt16BE(at + 7) }
    }
    at += 2 + b.readUInt16BE(at + 2)
  }
  return undefined
}
