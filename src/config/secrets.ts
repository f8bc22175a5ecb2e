// Secret fields: an `env:NAME` reference takes its value from the environment, anything else is
// used as written. Every secret value resolved is kept, so logs and frames can cut it out
// (config.md: secrets never appear in a log line or an error frame). A secret is what the
// configuration marks as one: an `env:` value, an API or auth key, a header value, a URL, and a
// server `env` entry whose name says it holds a credential. Any other literal `env` value (`true`,
// `2000`, `ready`) is an ordinary setting: cutting it out would hide words everywhere.
import type { Problems } from './problems.js'

const ENV_REF = /^env:(.*)$/s
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
/** `${…}` inside a string of a server entry: `${env:NAME}` (VS Code), `${NAME}`, `${NAME:-default}` (Claude Code). */
const PLACEHOLDER = /\$\{([^}]*)\}/g
const PLACEHOLDER_FORMS = /^(?:env:(?<env>.*)|(?<name>[^:]*?)(?::-(?<fallback>.*))?)$/s
/** VS Code's own variables: not in the environment, so a pasted file's use of one needs a word. */
const VS_CODE_VARIABLES = new Set([
  'workspaceFolder',
  'workspaceFolderBasename',
  'userHome',
  'pathSeparator',
  'cwd',
  'file',
])
// Shorter values would redact ordinary words and numbers from every log line.
const MIN_SECRET_LENGTH = 4
/** A credential after an HTTP authentication scheme (`Bearer TOKEN`, `Basic …`, `Token …`). */
const AUTH_SCHEME = /^(?:Bearer|Basic|Token|Bot|Digest|ApiKey)\s+(\S+)$/i

/**
 * The words of a server `env` name that say it holds a credential, matched as whole words of the
 * name (split at `_`, `-`, `.` and camelCase): `API_TOKEN`, `db_password`, `ClientSecret`,
 * `SIGNING_KEY`, `AWS_CREDENTIALS`, `AUTH_HEADER`, `APIKEY`. Not `MAX_TOKENS`,
 * `TOKENIZERS_PARALLELISM`, `AUTHOR`, `KEYBOARD_LAYOUT` or `OAUTH_CALLBACK_PORT`.
 */
const SECRET_WORDS = new Set([
  'token',
  'key',
  'apikey',
  'secret',
  'secrets',
  'password',
  'passwd',
  'pwd',
  'credential',
  'credentials',
  'auth',
])

/** True when a server `env` entry of this name holds a secret even when written literally. */
export function isSecretName(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .split(/[_\-.]+/)
    .map((word) => word.toLowerCase())
  return words.some((word) => SECRET_WORDS.has(word))
}

/** True for `env:…`: the value written is a reference, not the secret itself. */
export function isEnvReference(value: string): boolean {
  return ENV_REF.test(value)
}

/** The secrets of one load: resolves references against `env`, reports what it cannot resolve. */
export class Secrets {
  readonly #env: Record<string, string | undefined>
  readonly #problems: Problems
  readonly #values = new Set<string>()

  constructor(env: Record<string, string | undefined>, problems: Problems) {
    this.#env = env
    this.#problems = problems
  }

  /** Every secret value resolved so far, for redaction. */
  values(): string[] {
    return [...this.#values]
  }

  /**
   * A field's value: `env:NAME` from the environment (always a secret), anything else as written
   * (a secret unless `literal` says it is an ordinary setting).
   */
  resolve(path: string, value: string, literal: 'secret' | 'plain' = 'secret'): string | undefined {
    const ref = ENV_REF.exec(value)
    if (!ref) {
      if (literal === 'secret') this.#keep(value)
      return value
    }
    const name = ref[1] ?? ''
    if (!ENV_NAME.test(name)) {
      this.#problems.add(
        path,
        `'env:${name}' is not a valid reference (expected env:NAME, NAME made of A-Z, a-z, 0-9, _)`,
      )
      return undefined
    }
    // Own keys only: `env:constructor` must not find Object.prototype.constructor.
    const resolved = Object.hasOwn(this.#env, name) ? this.#env[name] : undefined
    if (resolved === undefined || resolved === '') {
      this.#problems.add(path, `environment variable ${name} is not set or is empty`)
      return undefined
    }
    this.#keep(resolved)
    return resolved
  }

  /** A value the configuration marks as a secret otherwise (an envFile entry named as a credential). */
  add(value: string): void {
    this.#keep(value)
  }

  /**
   * A string of a server entry with each `${env:NAME}`, `${NAME}` and `${NAME:-default}` replaced by
   * the variable's value; an unset or empty variable without a default is a problem naming the
   * field and the variable. With `whole`, a value that is all `env:NAME` is resolved as resolve()
   * does (the fields that took `env:` before: url, headers, env). `literal` says whether the result
   * and the variables' values in it are secrets: in a url, a header or a credential-named env entry
   * they are; in a command line, a folder or an ordinary env entry (`PATH`, `HOME`) only a variable
   * named as a credential (`${GITHUB_TOKEN}`, isSecretName) is, as
   * every local user sees a process's command line anyway, and a secret is also withheld from every
   * stdio child's environment and cut from every log line, which would break servers (no `HOME`)
   * and logs (every path redacted) for nothing.
   */
  expand(
    path: string,
    value: string,
    literal: 'secret' | 'plain' = 'secret',
    whole = false,
  ): string | undefined {
    if (whole && ENV_REF.test(value)) return this.resolve(path, value, literal)
    let ok = true
    const expanded = value.replace(PLACEHOLDER, (written, inner: string) => {
      const resolved = this.#placeholder(path, written, inner, literal)
      if (resolved === undefined) ok = false
      return resolved ?? ''
    })
    if (!ok) return undefined
    if (literal === 'secret') this.#keep(expanded)
    return expanded
  }

  /** The value of one `${…}`, or undefined and a problem. */
  #placeholder(
    path: string,
    written: string,
    inner: string,
    literal: 'secret' | 'plain',
  ): string | undefined {
    const form = PLACEHOLDER_FORMS.exec(inner)?.groups ?? {}
    const name = form.env ?? form.name ?? ''
    if (!ENV_NAME.test(name)) {
      this.#problems.add(
        path,
        inner.startsWith('input:')
          ? `'${written}' is a VS Code input, which only VS Code can ask for; write \${env:NAME} and set NAME`
          : `'${written}' is not a reference the platform resolves (expected \${NAME}, \${env:NAME} or \${NAME:-default}, NAME made of A-Z, a-z, 0-9, _)`,
      )
      return undefined
    }
    const resolved = Object.hasOwn(this.#env, name) ? this.#env[name] : undefined
    if (resolved === undefined || resolved === '') {
      // `${NAME:-default}`: the default is part of what the file says, no more secret than it.
      if (form.fallback !== undefined) return form.fallback
      const vsCode = VS_CODE_VARIABLES.has(name)
        ? ` (\${${name}} is a VS Code variable: write its value)`
        : ''
      this.#problems.add(path, `environment variable ${name} is not set or is empty${vsCode}`)
      return undefined
    }
    // `--api-key ${CONTEXT7_API_KEY}`: a variable named as a credential is a secret wherever it goes.
    if (literal === 'secret' || isSecretName(name)) this.#keep(resolved)
    return resolved
  }

  #keep(value: string): void {
    if (value.length >= MIN_SECRET_LENGTH) this.#values.add(value)
    // `Bearer sk-…`: a server that quotes the credential alone must not get it past redaction.
    const credential = AUTH_SCHEME.exec(value)?.[1]
    if (credential !== undefined && credential.length >= MIN_SECRET_LENGTH) this.#values.add(credential)
  }
}
