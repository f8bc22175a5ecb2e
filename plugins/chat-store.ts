// chat-store: the conversation store behind one interface, decorated as `chatStore`. Built from
// its configuration section (`store`), or handed in ready-made by the host app.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { isInstanceAlive } from '../src/chat/instance.js'
import { assertSupported, storeProblem } from '../src/config/support.js'
import type { StoreConfig } from '../src/config/types.js'
import type { Logger } from '../src/logging.js'
import type { ChatStore, StoreOptions } from '../src/store/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    chatStore: ChatStore
  }
}

export interface ChatStoreOptions {
  /** The `store` section of the configuration: which repository, and its settings. */
  config?: StoreConfig
  /** Or a store built by the host app, used as it is (and closed with the app). */
  store?: ChatStore
  /**
   * Whether the platform instance that began a turn still runs, so a turn it left unfinished may
   * run again. Default: the real check of this machine's processes (src/chat/instance.ts).
   */
  isLive?: (instance: string) => boolean
}

async function chatStore(fastify: FastifyInstance, options: ChatStoreOptions): Promise<void> {
  const { config, store: given } = options
  // A root hook, so it runs before the preClose of encapsulated plugins (chat-route ends its turns
  // there, and they write what they had said): the store bounds those writes from this moment.
  const shutdown = new AbortController()
  fastify.addHook('preClose', () => {
    shutdown.abort()
    return Promise.resolve()
  })
  if (!given && !config)
    throw new TypeError('chat-store: give options.config (the store section) or options.store')
  if (config) assertSupported(storeProblem(config))
  const store =
    given ??
    (await buildStore(config!, {
      isLive: options.isLive ?? isInstanceAlive,
      log: fastify.log.child({ component: 'chat-store' }),
      shutdown: shutdown.signal,
    }))
  fastify.decorate('chatStore', store)
  // onClose hooks run last-registered first: registered before the plugins that write to it (as
  // buildApp does), the store flushes last.
  fastify.addHook('onClose', async () => {
    await store.close()
  })
}

async function buildStore(
  config: StoreConfig,
  options: StoreOptions & { log: Logger; shutdown: AbortSignal },
): Promise<ChatStore> {
  // Only the configured repository is loaded (jsonl brings the file lock with it).
  switch (config.type) {
    case 'jsonl': {
      const { JsonlStore } = await import('../src/store/jsonl.js')
      return JsonlStore.open({ ...options, path: config.path, fsync: config.fsync })
    }
    case 'memory': {
      const { MemoryStore } = await import('../src/store/memory.js')
      return new MemoryStore(options)
    }
    default:
      // Unreachable: storeProblem refuses every type this version cannot build.
      throw new Error(`store type '${config.type}' is not available`)
  }
}

export default fp(chatStore, { name: 'chat-store', fastify: '5.x' })
