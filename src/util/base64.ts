// The size of base64 data, for describing binary content without decoding it.

/**
 * How many bytes base64 data decodes to, by Node's own arithmetic (`Buffer.byteLength`), padded or
 * not. Line breaks and other white space (MIME wraps base64 at 76 characters) are not data.
 */
export function base64Bytes(data: string): number {
  return Buffer.byteLength(/\s/.test(data) ? data.replace(/\s+/g, '') : data, 'base64')
}
