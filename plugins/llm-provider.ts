// llm-provider: the active provider's client, decorated as `llm`.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { assertSupported, wireProblem } from '../src/config/support.js'
import type { ProviderConfig, PlatformConfig } from '../src/config/types.js'
import { AnthropicProvider } from '../src/llm/anthropic.js'
import type { WireOptions } from '../src/llm/http.js'
import { OpenAiProvider } from '../src/llm/openai.js'
import type { LlmProvider } from '../src/llm/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    llm: LlmProvider
  }
}

export interface LlmProviderOptions {
  /** Use this provider instead of building one from the configuration. */
  provider?: LlmProvider
}

async function llmProvider(fastify: FastifyInstance, options: LlmProviderOptions): Promise<void> {
  const { provider, request } = fastify.config.llm
  if (!options.provider) assertSupported(wireProblem(fastify.config))
  const log = fastify.log.child({ component: 'llm', provider: provider.name })
  const llm = options.provider ?? forWire(provider, request, { log })
  fastify.decorate('llm', llm)
  fastify.addHook('onClose', async () => {
    await llm.close()
  })
}

/** One class per wire: a wire added to the config's types fails to compile here until it has one. */
function forWire(
  provider: ProviderConfig,
  request: PlatformConfig['llm']['request'],
  options: WireOptions,
): LlmProvider {
  switch (provider.type) {
    case 'openai':
      return new OpenAiProvider(provider, request, options)
    case 'anthropic':
      return new AnthropicProvider(provider, request, options)
  }
}

export default fp(llmProvider, {
  name: 'llm-provider',
  fastify: '5.x',
  dependencies: ['config'],
  decorators: { fastify: ['config'] },
})
