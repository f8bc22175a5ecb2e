// What this version can run of what the configuration may name. Checked by the plugins at
// start-up and by `check-config`, so a setting for a later feature fails fast, not at the first chat.
import { ConfigError, type ConfigProblem } from '../errors.js'
import type { PlatformConfig } from './types.js'

export const AVAILABLE_STORES: readonly string[] = ['memory', 'jsonl']
export const AVAILABLE_WIRES: readonly string[] = ['openai', 'anthropic']

export function storeProblem(config: PlatformConfig): ConfigProblem | undefined {
  if (AVAILABLE_STORES.includes(config.store.type)) return undefined
  return {
    path: 'store.type',
    message: `'${config.store.type}' is not available in this version; use one of: ${AVAILABLE_STORES.join(', ')}`,
  }
}

export function wireProblem(config: PlatformConfig): ConfigProblem | undefined {
  const { provider } = config.llm
  if (AVAILABLE_WIRES.includes(provider.type)) return undefined
  return {
    path: `llm.providers.${provider.name}.type`,
    message: `the ${provider.type} wire is not available in this version; use one of: ${AVAILABLE_WIRES.join(', ')}`,
  }
}

export function assertSupported(problem: ConfigProblem | undefined): void {
  if (problem) throw new ConfigError([problem])
}
