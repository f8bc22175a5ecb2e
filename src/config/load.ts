// Reads config.yaml and servers_config.json, checks them against the schemas and the rules the
// schemas cannot say, resolves `env:` secrets and relative paths, and returns PlatformConfig. Every
// problem of both files is collected before anything is thrown, so one start shows them all.
// The work itself is in sources, problems, secrets, settings and servers; this file only wires.
import { basename, resolve } from 'node:path'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ConfigError } from '../errors.js'
import { checkSchema, Problems } from './problems.js'
import { ConfigFileSchema, ServersFileSchema } from './schema.js'
import { Secrets } from './secrets.js'
import { resolveServers } from './servers.js'
import { resolveSettings } from './settings.js'
import { parseJson, parseYaml, readSource, rootMapping } from './sources.js'
import type { PlatformConfig } from './types.js'

export { defaultPaths } from './sources.js'

export interface LoadConfigOptions {
  configPath: string
  serversPath: string
  env: Record<string, string | undefined>
  /** Overrides `logging.level` (LOG_LEVEL). */
  logLevel?: string
  /** `unused`: the active provider's secret is not read (a command that never calls the LLM). */
  providerSecret?: 'required' | 'unused'
}

const checkConfigFile = TypeCompiler.Compile(ConfigFileSchema)
const checkServersFile = TypeCompiler.Compile(ServersFileSchema)

// What each file must be, said when it is empty or not a mapping at all.
const CONFIG_EXPECTED = `the settings: ${ConfigFileSchema.required.join(', ')}`
const CONFIG_SHAPE = `an object with ${Object.keys(ConfigFileSchema.properties).join(', ')}`
const SERVERS_EXPECTED = '{"mcpServers": {...}}'
const SERVERS_SHAPE = "an object with mcpServers (or VS Code's servers)"

export async function loadConfig(opts: LoadConfigOptions): Promise<PlatformConfig> {
  const files = { config: resolve(opts.configPath), servers: resolve(opts.serversPath) }
  const problems = new Problems()
  const secrets = new Secrets(opts.env, problems)
  // One after the other: read at once, their problems would come in whichever order the reads end.
  const configText = await readSource(problems, files.config, '--config or MCP_CONFIG_PATH')
  const serversText = await readSource(problems, files.servers, '--servers or MCP_SERVERS_CONFIG_PATH')

  const configFile =
    configText === undefined
      ? undefined
      : rootMapping(
          problems,
          files.config,
          parseYaml(problems, files.config, configText, CONFIG_EXPECTED),
          CONFIG_SHAPE,
        )
  const configValid =
    configFile !== undefined && checkSchema(problems, checkConfigFile, configFile, basename(files.config))
  const serversFile =
    serversText === undefined
      ? undefined
      : rootMapping(
          problems,
          files.servers,
          parseJson(problems, files.servers, serversText, SERVERS_EXPECTED),
          SERVERS_SHAPE,
        )
  const serversValid =
    serversFile !== undefined && checkSchema(problems, checkServersFile, serversFile, basename(files.servers))

  // Semantic checks run on whatever parts of a file are valid, even when other parts are not.
  const settings =
    configFile === undefined
      ? undefined
      : resolveSettings(problems, secrets, configFile, files.config, opts.logLevel, opts.providerSecret)
  const servers =
    serversFile === undefined
      ? undefined
      : await resolveServers(problems, secrets, serversFile, files.servers)
  if (!configValid || !serversValid || problems.count > 0 || !settings || !servers) {
    throw new ConfigError(problems.all())
  }
  return {
    ...settings,
    servers,
    debug_tokens: opts.env.DEBUG_TOKENS === '1',
    files,
    secrets: secrets.values(),
    warnings: problems.warnings(),
  }
}
