// chat-store: the conversation store behind one interface, chosen by `store.type`.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { assertSupported, storeProblem } from '../src/config/support.js'
import { MemoryStore } from '../src/store/memory.js'
import type { ChatStore } from '../src/store/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    chatStore: ChatStore
  }
}

export interface ChatStoreOptions {
  /** Use this store instead of building one from the configuration. */
  store?: ChatStore
}

async function chatStore(fastify: FastifyInstance, options: ChatStoreOptions): Promise<void> {
  if (!options.store) assertSupported(storeProblem(fastify.config))
  const store = options.store ?? new MemoryStore()
  fastify.decorate('chatStore', store)
  // Registered before the other plugins, so closed after them: the store flushes last.
  fastify.addHook('onClose', async () => {
    await store.close()
  })
}

export default fp(chatStore, {
  name: 'chat-store',
  fastify: '5.x',
  dependencies: ['config'],
  decorators: { fastify: ['config'] },
})
