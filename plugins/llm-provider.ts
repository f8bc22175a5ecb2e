// llm-provider: the active provider's client, decorated as `llm`.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { assertSupported, wireProblem } from '../src/config/support.js'
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
  const llm = options.provider ?? new OpenAiProvider(provider, request)
  fastify.decorate('llm', llm)
  fastify.addHook('onClose', async () => {
    await llm.close()
  })
}

export default fp(llmProvider, {
  name: 'llm-provider',
  fastify: '5.x',
  dependencies: ['config'],
  decorators: { fastify: ['config'] },
})
