// chat-store: the conversation store behind one interface, chosen by `store.type`.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { assertSupported, storeProblem } from '../src/config/support.js'
import type { StoreConfig } from '../src/config/types.js'
import { JsonlStore, type StoreLogger } from '../src/store/jsonl.js'
import { MemoryStore } from '../src/store/memory.js'
import type { ChatStore, StoreOptions } from '../src/store/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    chatStore: ChatStore
  }
}

export interface ChatStoreOptions {
  /** Use this store instead of building one from the configuration. */
  store?: ChatStore
  /**
   * Whether the platform instance that began a turn still runs, so a turn it left unfinished may
   * run again (src/chat/instance.ts). Default: every instance lives.
   */
  isLive?: (instance: string) => boolean
}

async function chatStore(fastify: FastifyInstance, options: ChatStoreOptions): Promise<void> {
  if (!options.store) assertSupported(storeProblem(fastify.config))
  const store =
    options.store ??
    (await buildStore(fastify.config.store, {
      isLive: options.isLive ?? (() => true),
      log: fastify.log.child({ component: 'chat-store' }),
    }))
  fastify.decorate('chatStore', store)
  // Registered before the other plugins, so closed after them: the store flushes last.
  fastify.addHook('onClose', async () => {
    await store.close()
  })
}

async function buildStore(
  config: StoreConfig,
  options: StoreOptions & { log: StoreLogger },
): Promise<ChatStore> {
  switch (config.type) {
    case 'jsonl':
      return JsonlStore.open({ ...options, path: config.path, fsync: config.fsync })
    case 'memory':
      return new MemoryStore(options)
    default:
      // Unreachable: storeProblem refuses every type this version cannot build.
      throw new Error(`store type '${config.type}' is not available`)
  }
}

export default fp(chatStore, {
  name: 'chat-store',
  fastify: '5.x',
  dependencies: ['config'],
  decorators: { fastify: ['config'] },
})
