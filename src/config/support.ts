// What this version can run of what the configuration may name. Checked by the plugins at
// start-up and by `check-config`, so a setting for a later feature fails fast, not at the first chat.
import { ConfigError, type ConfigProblem } from '../errors.js'
import type { StoreConfig } from './types.js'

export const AVAILABLE_STORES: readonly string[] = ['memory', 'jsonl']

export function storeProblem(store: Pick<StoreConfig, 'type'>): ConfigProblem | undefined {
  if (AVAILABLE_STORES.includes(store.type)) return undefined
  return {
    path: 'store.type',
    message: `'${store.type}' is not available in this version; use one of: ${AVAILABLE_STORES.join(', ')}`,
  }
}

export function assertSupported(problem: ConfigProblem | undefined): void {
  if (problem) throw new ConfigError([problem])
}
