import type { Wire } from '../config/types.js'

/** Providers whose wire and endpoint are known, so config.yaml need not say them. */
export const KNOWN_PROVIDERS: Record<string, { type: Wire; base_url: string }> = {
  groq: { type: 'openai', base_url: 'https://api.groq.com/openai/v1' },
  openai: { type: 'openai', base_url: 'https://api.openai.com/v1' },
  openrouter: { type: 'openai', base_url: 'https://openrouter.ai/api/v1' },
  anthropic: { type: 'anthropic', base_url: 'https://api.anthropic.com/v1' },
}
