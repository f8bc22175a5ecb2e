// Who is on the other end of a WebSocket upgrade (protocol.md, Connection). Runs before the
// upgrade, so a refused client gets a plain HTTP 401/403 and no WebSocket ever exists.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { PlatformConfig } from '../config/types.js'
import { errors, type PlatformError } from '../errors.js'

export const ANONYMOUS = 'anonymous'
const BEARER_PROTOCOL = 'bearer.'

/** A refusal carries its error (UNAUTHENTICATED or ORIGIN_NOT_ALLOWED) and, for the route, its status and message. */
export type AuthResult =
  { ok: true; principal: string } | { ok: false; status: 401 | 403; message: string; error: PlatformError }

type Headers = Record<string, string | string[] | undefined>

export class Authenticator {
  readonly #keys: { name: string; digest: Buffer }[] | undefined
  readonly #origins: Set<string> | undefined

  constructor(config: Pick<PlatformConfig, 'auth' | 'websocket'>) {
    this.#keys = config.auth?.api_keys.map((k) => ({ name: k.name, digest: digest(k.key) }))
    this.#origins = config.websocket.allowed_origins && new Set(config.websocket.allowed_origins)
  }

  authenticate(headers: Headers): AuthResult {
    const origin = first(headers.origin)
    // Browsers always send Origin; other clients may not, and cannot be told apart by it anyway.
    if (this.#origins && origin !== undefined && !this.#origins.has(origin)) {
      return refusal(new errors.ORIGIN_NOT_ALLOWED(origin))
    }
    if (!this.#keys) return { ok: true, principal: ANONYMOUS }
    if (keyOf(headers) === undefined) return refusal(new errors.UNAUTHENTICATED('Missing'))
    const principal = this.keyHolder(headers)
    return principal ? { ok: true, principal } : refusal(new errors.UNAUTHENTICATED('Invalid'))
  }

  /** Whether `auth` is configured: without it everyone is ANONYMOUS. */
  get required(): boolean {
    return this.#keys !== undefined
  }

  /** The name of the `auth.api_keys` entry whose key the headers carry, whatever their Origin. */
  keyHolder(headers: Headers): string | undefined {
    const key = keyOf(headers)
    if (key === undefined || !this.#keys) return undefined
    const given = digest(key)
    return this.#keys.find((k) => timingSafeEqual(k.digest, given))?.name
  }
}

function refusal(error: PlatformError): AuthResult {
  return { ok: false, status: error.statusCode as 401 | 403, message: error.message, error }
}

/**
 * The subprotocol to accept: browsers that put their key in `bearer.KEY` fail the connection
 * unless the server selects one of the protocols they offered; prefer one that is not the key.
 */
export function selectProtocol(protocols: Set<string>): string | false {
  const offered = [...protocols]
  return offered.find((p) => !p.startsWith(BEARER_PROTOCOL)) ?? offered[0] ?? false
}

function keyOf(headers: Headers): string | undefined {
  const authorization = first(headers.authorization)
  const bearer = authorization && /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1]
  if (bearer) return bearer
  const protocols = first(headers['sec-websocket-protocol'])
  return protocols
    ?.split(',')
    .map((p) => p.trim())
    .find((p) => p.startsWith(BEARER_PROTOCOL) && p.length > BEARER_PROTOCOL.length)
    ?.slice(BEARER_PROTOCOL.length)
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest()
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
