// llm-provider: the active provider's client, decorated as `llm`. Built from the `llm` section of
// the configuration, or handed in ready-made by the host app.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { PlatformConfig, ProviderConfig } from '../src/config/types.js'
import type { WireOptions } from '../src/llm/http.js'
import type { LlmProvider } from '../src/llm/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    llm: LlmProvider
  }
}

export interface LlmProviderOptions {
  /** The `llm` section of the configuration: the active provider and the request settings. */
  config?: PlatformConfig['llm']
  /** Or a provider built by the host app, used as it is (and closed with the app). */
  provider?: LlmProvider
}

async function llmProvider(fastify: FastifyInstance, options: LlmProviderOptions): Promise<void> {
  const { config, provider } = options
  if (!provider && !config)
    throw new TypeError('llm-provider: give options.config (the llm section) or options.provider')
  const llm =
    provider ??
    (await forWire(config!.provider, config!.request, {
      log: fastify.log.child({ component: 'llm', provider: config!.provider.name }),
    }))
  fastify.decorate('llm', llm)
  fastify.addHook('onClose', async () => {
    await llm.close()
  })
}

/**
 * One class per wire, only the configured one loaded: a wire added to the config's types fails to
 * compile here until it has one.
 */
async function forWire(
  provider: ProviderConfig,
  request: PlatformConfig['llm']['request'],
  options: WireOptions,
): Promise<LlmProvider> {
  switch (provider.type) {
    case 'openai': {
      const { OpenAiProvider } = await import('../src/llm/openai.js')
      return new OpenAiProvider(provider, request, options)
    }
    case 'anthropic': {
      const { AnthropicProvider } = await import('../src/llm/anthropic.js')
      return new AnthropicProvider(provider, request, options)
    }
  }
}

export default fp(llmProvider, { name: 'llm-provider', fastify: '5.x' })
