// What looks like a credential in a provider's error text. A provider that echoes a request back,
// or a proxy that prints its own headers, may quote a key the platform never knew of (so the
// Redactor, which knows the configured secrets, cannot catch it): such text is scrubbed by shape
// before it reaches an error frame or a log line.

const REDACTED = '[redacted]'

/**
 * `Bearer …`, `Basic …`: the scheme stays, the credential goes. Only a credential-long token (12
 * or more characters) counts, so "basic models" and "missing bearer token" stay words.
 */
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{12,}/gi
/** Keys known by their prefix: OpenAI `sk-…` (and `sk-proj-`, `sk-ant-` of Anthropic), Groq `gsk_…`, xAI, Google, Hugging Face, GitHub, AWS. */
const PREFIXED_KEY = /\b(?:sk-|gsk_|xai-|AIza|hf_|ghp_|gho_|github_pat_|AKIA)[A-Za-z0-9_-]{8,}/g
/** `api_key=…`, `token=…`, `client_secret=…` in a query or form; the name stays. */
const NAMED_VALUE = /\b([\w-]*(?:key|token|secret|password|passwd))=[^\s&"',;]+/gi
/** `"api_key": "…"` in JSON; the name stays. */
const NAMED_JSON = /("[\w-]*(?:key|token|secret|password|passwd)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi
/** A JSON Web Token: three base64url parts, the first an encoded `{"`. */
const JWT = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g
/**
 * A long run of hex or base64 characters: a key or a signature of unknown shape. Without `/`, so a
 * URL path (the useful part of a "deployment not found") stays.
 */
const LONG_RUN = /[A-Za-z0-9+_]{32,}={0,2}/g

/**
 * `text` with every credential-looking token replaced by `[redacted]`. Runs of 32 or more
 * base64 or hex characters count only when they mix letters and digits, so long words and
 * numbers survive; model names and request ids that look like keys may not.
 */
export function stripCredentials(text: string): string {
  return text
    .replace(AUTH_SCHEME, `$1 ${REDACTED}`)
    .replace(JWT, REDACTED)
    .replace(PREFIXED_KEY, REDACTED)
    .replace(NAMED_VALUE, `$1=${REDACTED}`)
    .replace(NAMED_JSON, `$1"${REDACTED}"`)
    .replace(LONG_RUN, (run) => (/[0-9]/.test(run) && /[A-Za-z]/.test(run) ? REDACTED : run))
}
