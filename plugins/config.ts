// The `config` plugin: validates the environment (@fastify/env) and both configuration files, and
// decorates `platformConfig` (PlatformConfig) and `platformEnv`: names of their own, so an app
// that also registers @fastify/env (which decorates `config`) keeps it. Problems of the
// environment and of the files are reported together in one ConfigError, before any other plugin
// starts.
import fp from 'fastify-plugin'
import fastifyEnv from '@fastify/env'
import type { FastifyInstance } from 'fastify'
import { ConfigError, type ConfigProblem } from '../src/errors.js'
import { defaultPaths, loadConfig } from '../src/config/load.js'
import { dottedPath, valueProblem } from '../src/config/problems.js'
import { EnvSchema, type Env, type TSchema } from '../src/config/schema.js'
import type { PlatformConfig } from '../src/config/types.js'

export interface ConfigPluginOptions {
  /** config.yaml; default from MCP_CONFIG_PATH or ./config.yaml. */
  configPath?: string
  /** servers_config.json; default from MCP_SERVERS_CONFIG_PATH or ./servers_config.json. */
  serversPath?: string
  /** The environment to read (`env:` secrets, MCP_*_PATH, LOG_LEVEL, DEBUG_TOKENS): usually process.env. */
  env: Record<string, string | undefined>
  /** The folder relative paths given here (and the default file names) are taken from. */
  cwd: string
  /** An already loaded configuration, used as it is (the files are not read). */
  config?: PlatformConfig
  /** `unused`: the active provider's secret is not read (`mcp-platform tools` never calls the LLM). */
  providerSecret?: 'required' | 'unused'
}

declare module 'fastify' {
  interface FastifyInstance {
    platformConfig: PlatformConfig
    platformEnv: Env
  }
}

/** The subset of an ajv error this plugin reads. */
interface AjvError {
  instancePath: string
}

async function configPlugin(fastify: FastifyInstance, opts: ConfigPluginOptions): Promise<void> {
  const { env } = opts
  let envFailure: unknown
  fastify
    .register(fastifyEnv, {
      confKey: 'platformEnv',
      // env-schema sets additionalProperties on the schema it is given: give it a copy.
      schema: { ...EnvSchema },
      data: env,
      dotenv: false,
      // Only the environment passed in counts (env-schema would otherwise merge process.env).
      env: false,
    })
    // Taking the error here keeps boot going, so the files are checked in the same run.
    .after((err) => {
      envFailure = err
    })
  await fastify.after()

  const problems = envFailure ? envProblems(envFailure, env) : []
  const config = opts.config ?? (await loadFiles(opts, env, problems))
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems)
  fastify.decorate('platformConfig', config)
}

async function loadFiles(
  opts: ConfigPluginOptions,
  env: Record<string, string | undefined>,
  problems: ConfigProblem[],
): Promise<PlatformConfig | undefined> {
  const wrong = new Set(problems.map((p) => p.path))
  // A variable that failed its check is not used, so its problem is not reported twice.
  const usable = (name: string) => (wrong.has(`env.${name}`) ? undefined : env[name])
  const paths = defaultPaths(
    {
      MCP_CONFIG_PATH: usable('MCP_CONFIG_PATH'),
      MCP_SERVERS_CONFIG_PATH: usable('MCP_SERVERS_CONFIG_PATH'),
    },
    opts.cwd,
    { config: opts.configPath, servers: opts.serversPath },
  )
  try {
    return await loadConfig({
      ...paths,
      env,
      logLevel: usable('LOG_LEVEL'),
      ...(opts.providerSecret === undefined ? {} : { providerSecret: opts.providerSecret }),
    })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    problems.push(...err.problems)
    return undefined
  }
}

/** @fastify/env's failure (ajv errors) as one problem per variable, worded like the files' ones. */
function envProblems(failure: unknown, env: Record<string, string | undefined>): ConfigProblem[] {
  const errors = (failure as { errors?: AjvError[] }).errors
  if (!Array.isArray(errors))
    return [{ path: 'env', message: failure instanceof Error ? failure.message : 'is not valid' }]
  const properties = EnvSchema.properties as Record<string, TSchema>
  const names = new Set(errors.map((e) => dottedPath(e.instancePath)))
  return [...names].map((name) => {
    const schema = properties[name]
    const message = schema ? valueProblem(schema, env[name]) : 'is not valid'
    return { path: name ? `env.${name}` : 'env', message }
  })
}

export default fp(configPlugin, { name: 'config', fastify: '5.x' })
