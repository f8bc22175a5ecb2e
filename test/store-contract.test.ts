// The chat store's contract (src/store/types.ts), one suite run against every repository: what
// the chat service relies on must hold the same on memory, on a jsonl file and, later, on
// PostgreSQL (one line in REPOSITORIES).
import { pino } from 'pino'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { JsonlStore } from '../src/store/jsonl.js'
import { MemoryStore } from '../src/store/memory.js'
import {
  titleOf,
  type BeginTurnResult,
  type ChatEvent,
  type ChatStore,
  type NewEvent,
  type RequestPeek,
  type StoreOptions,
} from '../src/store/types.js'
import type { WorkerTask } from './helpers/store-worker.js'

const WORKER = fileURLToPath(new URL('./helpers/store-worker.js', import.meta.url))

interface Opened {
  store: ChatStore
  /** Durable repositories: close, then open the same data again. */
  reopen?: () => Promise<ChatStore>
  /** Shared repositories: runs turns in another process that opens the same data. */
  elsewhere?: (turns: { begin: NewEvent; append: NewEvent[] }[]) => Promise<void>
  dispose: () => Promise<void>
}

interface Repository {
  name: string
  /** Keeps its data across close and open (gets the reopen test). */
  durable: boolean
  /** Shared by several processes (gets the cross-process tests). */
  shared: boolean
  open: (options: StoreOptions) => Promise<Opened>
}

const quiet = pino({ enabled: false })

const memory: Repository = {
  name: 'memory',
  durable: false,
  shared: false,
  open: (options) => {
    const store = new MemoryStore(options)
    return Promise.resolve({ store, dispose: () => store.close() })
  },
}

const jsonl: Repository = {
  name: 'jsonl',
  durable: true,
  shared: true,
  open: async (options) => {
    const dir = await mkdtemp(join(tmpdir(), 'store-contract-'))
    const path = join(dir, 'data', 'events.jsonl')
    const open = () => JsonlStore.open({ path, fsync: true, log: quiet, ...options })
    let current = await open()
    return {
      store: current,
      reopen: async () => {
        await current.close()
        current = await open()
        return current
      },
      elsewhere: async (turns) => {
        const task: WorkerTask = { task: 'turns', path, turns }
        await promisify(execFile)(process.execPath, [WORKER, JSON.stringify(task)])
      },
      dispose: async () => {
        await current.close()
        await rm(dir, { recursive: true, force: true })
      },
    }
  },
}

const REPOSITORIES: Repository[] = [memory, jsonl]

function userMessage(fields: Partial<NewEvent> & { conversation_id: string; request_id: string }): NewEvent {
  return {
    type: 'user_message',
    role: 'user',
    content: 'Hello',
    principal: 'alice',
    status: 'complete',
    instance: 'instance-a',
    ...fields,
  }
}

function answer(
  message: Pick<NewEvent, 'conversation_id' | 'request_id' | 'principal'>,
  status: NewEvent['status'] = 'complete',
  content = 'Hi!',
): NewEvent {
  return { ...message, type: 'assistant_message', role: 'assistant', content, status, model: 'm' }
}

/** The started event, or a failed assertion naming what came instead. */
function started(result: Awaited<ReturnType<ChatStore['beginTurn']>>): ChatEvent & { retry: boolean } {
  assert.equal(result.outcome, 'started', JSON.stringify(result))
  if (result.outcome !== 'started') throw new Error('unreachable')
  return { ...result.event, retry: result.retry }
}

function duplicate(result: Awaited<ReturnType<ChatStore['beginTurn']>>): ChatEvent[] {
  assert.equal(result.outcome, 'duplicate', JSON.stringify(result))
  if (result.outcome !== 'duplicate') throw new Error('unreachable')
  return result.events
}

/**
 * peekRequest, then beginTurn (which is what changes the state) agrees with it: new and retry
 * start (a retry in the request's conversation), running and finished are duplicates, finished
 * with the events the peek gave.
 */
async function agree(
  store: ChatStore,
  message: NewEvent,
  expected: RequestPeek['state'],
  create = false,
): Promise<BeginTurnResult> {
  const peek = await store.peekRequest(message.principal, message.request_id)
  assert.equal(peek.state, expected, `peekRequest(${message.principal}, ${message.request_id})`)
  const result = await store.beginTurn(message, create)
  if (peek.state === 'new' || peek.state === 'retry') {
    assert.equal(started(result).retry, peek.state === 'retry')
  } else {
    const events = duplicate(result)
    if (peek.state === 'finished') assert.deepEqual(events, peek.events)
    else assert.notEqual(events.at(-1)?.type, 'assistant_message', 'running: no answer yet')
  }
  return result
}

/** Timestamps have millisecond resolution: orderings by time need the clock to move on. */
async function nextMillisecond(): Promise<void> {
  const now = Date.now()
  while (Date.now() === now) await new Promise((resolve) => setTimeout(resolve, 1))
}

for (const repository of REPOSITORIES) {
  describe(`store contract: ${repository.name}`, () => {
    const withStore = async (
      fn: (store: ChatStore, opened: Opened) => Promise<void>,
      options: StoreOptions = { isLive: () => true },
    ) => {
      const opened = await repository.open(options)
      try {
        await fn(opened.store, opened)
      } finally {
        await opened.dispose()
      }
    }

    test('beginTurn on a new conversation appends the user message as seq 1', () =>
      withStore(async (store) => {
        const event = started(
          await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r1' }), true),
        )
        assert.equal(event.retry, false)
        assert.equal(event.seq, 1)
        assert.equal(event.conversation_id, 'c1')
        assert.equal(event.content, 'Hello')
        assert.equal(event.instance, 'instance-a')
        assert.match(event.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
        assert.ok(event.id.length > 0)
        const { retry: _retry, ...stored } = event
        assert.deepEqual(await store.history('alice', 'c1'), [stored])
        assert.deepEqual(store.status().ready, true)
        assert.equal(store.status().type, repository.name)
      }))

    test('what a store keeps cannot be changed through the objects that went in or came out', () =>
      withStore(async (store) => {
        started(await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r1' }), true))
        const call: NewEvent = {
          ...answer({ conversation_id: 'c1', request_id: 'r1', principal: 'alice' }),
          type: 'tool_call',
          content: 'Looking.',
          tool_calls: [{ id: 'k1', name: 'demo__add', arguments: '{"a":1}' }],
          usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
          token_count: 7,
        }
        const [returned] = await store.append([call])
        const kept = await store.history('alice', 'c1')
        const expected = structuredClone(kept)
        // Changed after the append: the caller's own objects, and those the store gave back. A
        // repository may hand out frozen events (changing them throws) or copies (nothing else sees it).
        call.content = 'changed'
        call.tool_calls![0]!.name = 'changed'
        call.usage!.total_tokens = 99
        for (const event of [returned!, ...kept!]) {
          try {
            event.content = 'changed'
            event.tool_calls?.push({ id: 'k2', name: 'x', arguments: '' })
            if (event.usage) event.usage.total_tokens = 99
          } catch (err) {
            assert.ok(err instanceof TypeError, String(err))
          }
        }
        assert.deepEqual(await store.history('alice', 'c1'), expected)
        const peeked = await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r2' }), false)
        assert.equal(started(peeked).seq, 3)
      }))

    test('not_found: create on a taken id, continue an unknown one or someone else’s', () =>
      withStore(async (store) => {
        started(await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r1' }), true))
        const taken = await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r2' }), true)
        assert.deepEqual(taken, { outcome: 'not_found' })
        const unknown = await store.beginTurn(
          userMessage({ conversation_id: 'nope', request_id: 'r3' }),
          false,
        )
        assert.deepEqual(unknown, { outcome: 'not_found' })
        const theirs = await store.beginTurn(
          userMessage({ conversation_id: 'c1', request_id: 'r4', principal: 'mallory' }),
          false,
        )
        assert.deepEqual(theirs, { outcome: 'not_found' })
        const taken2 = await store.beginTurn(
          userMessage({ conversation_id: 'c1', request_id: 'r5', principal: 'mallory' }),
          true,
        )
        assert.deepEqual(taken2, { outcome: 'not_found' })
        assert.equal((await store.history('alice', 'c1'))!.length, 1, 'nothing was appended')
        // Continuing one's own conversation works.
        const next = started(
          await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r6' }), false),
        )
        assert.equal(next.seq, 2)
      }))

    test('a running request is a duplicate with its events, whatever conversation the caller names', () =>
      withStore(async (store) => {
        const first = started(
          await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r1' }), true),
        )
        const elsewhere = await store.beginTurn(
          userMessage({ conversation_id: 'other', request_id: 'r1' }),
          true,
        )
        assert.deepEqual(
          duplicate(elsewhere).map((e) => e.id),
          [first.id],
        )
        const [toolCall] = await store.append([
          {
            conversation_id: 'c1',
            request_id: 'r1',
            principal: 'alice',
            type: 'tool_call',
            role: 'assistant',
            content: '',
            status: 'complete',
            tool_calls: [{ id: 'call-1', name: 'demo__echo', arguments: '{"text":"x"}' }],
          },
        ])
        const again = duplicate(
          await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r1' }), false),
        )
        assert.deepEqual(again, [(await store.history('alice', 'c1'))![0], toolCall])
        assert.equal(await store.history('alice', 'other'), undefined, 'no conversation was created')
      }))

    test('a finished request is a duplicate with its whole attempt', () =>
      withStore(async (store) => {
        const message = userMessage({ conversation_id: 'c1', request_id: 'r1' })
        started(await store.beginTurn(message, true))
        await store.append([answer(message)])
        const events = duplicate(await store.beginTurn(message, true))
        assert.deepEqual(
          events.map((e) => [e.type, e.status, e.seq]),
          [
            ['user_message', 'complete', 1],
            ['assistant_message', 'complete', 2],
          ],
        )
        // The same request_id of another principal is another request.
        const theirs = started(
          await store.beginTurn(
            userMessage({ conversation_id: 'c2', request_id: 'r1', principal: 'bob' }),
            true,
          ),
        )
        assert.equal(theirs.retry, false)
        assert.equal(theirs.conversation_id, 'c2')
      }))

    for (const status of ['interrupted', 'error'] as const) {
      test(`a request whose attempt ended ${status} runs again in its original conversation`, () =>
        withStore(async (store) => {
          const message = userMessage({ conversation_id: 'c1', request_id: 'r1' })
          started(await store.beginTurn(message, true))
          await store.append([answer(message, status, 'Half an ans')])
          // The caller asks for a new conversation; the retry still lands in c1.
          const retry = started(await store.beginTurn({ ...message, conversation_id: 'new-one' }, true))
          assert.equal(retry.retry, true)
          assert.equal(retry.conversation_id, 'c1')
          assert.equal(retry.seq, 3)
          assert.equal(await store.history('alice', 'new-one'), undefined)
          // While the retry runs, a duplicate sees only the latest attempt.
          const events = duplicate(await store.beginTurn(message, false))
          assert.deepEqual(
            events.map((e) => e.seq),
            [3],
          )
          await store.append([answer(message)])
          const finished = duplicate(await store.beginTurn(message, false))
          assert.deepEqual(
            finished.map((e) => [e.type, e.status, e.seq]),
            [
              ['user_message', 'complete', 3],
              ['assistant_message', 'complete', 4],
            ],
          )
        }))
    }

    test('a request whose instance died runs again; a live instance keeps it', async () => {
      const dead = new Set<string>()
      await withStore(
        async (store) => {
          const message = userMessage({ conversation_id: 'c1', request_id: 'r1', instance: 'instance-a' })
          started(await store.beginTurn(message, true))
          await store.append([
            { ...answer(message), type: 'tool_result', role: 'tool', tool_call_id: 'call-1', content: 'ok' },
          ])
          duplicate(await store.beginTurn({ ...message, instance: 'instance-b' }, false))
          dead.add('instance-a')
          const retry = started(await store.beginTurn({ ...message, instance: 'instance-b' }, false))
          assert.equal(retry.retry, true)
          assert.equal(retry.seq, 3)
          assert.equal(retry.instance, 'instance-b')
          // instance-b lives: its attempt is running.
          const events = duplicate(await store.beginTurn({ ...message, instance: 'instance-c' }, false))
          assert.deepEqual(
            events.map((e) => [e.seq, e.instance]),
            [[3, 'instance-b']],
          )
          // A finished request stays finished even once its instance is gone.
          await store.append([answer(message)])
          dead.add('instance-b')
          assert.equal(duplicate(await store.beginTurn(message, false)).length, 2)
        },
        { isLive: (instance) => !dead.has(instance) },
      )
    })

    test('peekRequest says where a request stands, and beginTurn agrees: new, running, retry, finished', async () => {
      const dead = new Set<string>()
      await withStore(
        async (store) => {
          const message = userMessage({ conversation_id: 'c1', request_id: 'r1', instance: 'instance-a' })
          assert.deepEqual(await store.peekRequest('alice', 'r1'), { state: 'new' })
          assert.equal(started(await agree(store, message, 'new', true)).retry, false)
          // Running in a live instance, also with more of its events; another principal's is new.
          await agree(store, message, 'running')
          await store.append([{ ...answer(message), type: 'tool_result', role: 'tool', tool_call_id: 'x' }])
          await agree(store, message, 'running')
          assert.deepEqual(await store.peekRequest('bob', 'r1'), { state: 'new' })
          // Its instance died: it may run again, and then runs in instance-b.
          dead.add('instance-a')
          assert.equal(
            started(await agree(store, { ...message, instance: 'instance-b' }, 'retry')).retry,
            true,
          )
          await agree(store, message, 'running')
          // Ended unfinished: retry.
          await store.append([answer(message, 'error', '')])
          await agree(store, { ...message, instance: 'instance-c' }, 'retry')
          // Finished: its latest attempt's events, also once its instance is gone.
          await store.append([answer(message)])
          dead.add('instance-c')
          const peek = await store.peekRequest('alice', 'r1')
          assert.equal(peek.state, 'finished')
          if (peek.state !== 'finished') return
          assert.deepEqual(peek.events, (await store.history('alice', 'c1'))!.slice(-2))
          assert.deepEqual(
            peek.events.map((e) => [e.type, e.status]),
            [
              ['user_message', 'complete'],
              ['assistant_message', 'complete'],
            ],
          )
          assert.equal(peek.events[0]!.instance, 'instance-c', 'the latest attempt')
          await agree(store, message, 'finished')
          assert.deepEqual(await store.peekRequest('alice', 'r1'), peek, 'reading changes nothing')
          // A request that only ever appended events (no user_message) answers as beginTurn does.
          await store.append([answer({ ...message, request_id: 'r2' }, 'interrupted')])
          await agree(store, userMessage({ conversation_id: 'c1', request_id: 'r2' }), 'retry')
          // An open attempt naming no instance: nothing says it is gone, so it is running.
          const anonymous = userMessage({ conversation_id: 'c2', request_id: 'r3', instance: undefined })
          started(await store.beginTurn(anonymous, true))
          await agree(store, anonymous, 'running')
        },
        { isLive: (instance) => !dead.has(instance) },
      )
    })

    if (repository.shared) {
      test('peekRequest sees what another process wrote: finished with its events, running, retry', async () => {
        const dead = new Set(['instance-gone'])
        await withStore(
          async (store, opened) => {
            const finished = userMessage({
              conversation_id: 'x1',
              request_id: 'x1',
              instance: 'instance-other',
            })
            const running = userMessage({
              conversation_id: 'x2',
              request_id: 'x2',
              instance: 'instance-other',
            })
            const orphan = userMessage({ conversation_id: 'x3', request_id: 'x3', instance: 'instance-gone' })
            for (const m of [finished, running, orphan])
              assert.deepEqual(await store.peekRequest('alice', m.request_id), { state: 'new' })
            await opened.elsewhere!([
              { begin: finished, append: [answer(finished, 'complete', 'From elsewhere')] },
              { begin: running, append: [] },
              { begin: orphan, append: [] },
            ])
            const peek = await store.peekRequest('alice', 'x1')
            assert.equal(peek.state, 'finished')
            if (peek.state !== 'finished') return
            assert.deepEqual(
              peek.events.map((e) => [e.type, e.content, e.seq]),
              [
                ['user_message', 'Hello', 1],
                ['assistant_message', 'From elsewhere', 2],
              ],
            )
            assert.deepEqual(peek.events, await store.history('alice', 'x1'))
            await agree(store, finished, 'finished')
            await agree(store, running, 'running')
            await agree(store, { ...orphan, instance: 'instance-a' }, 'retry')
          },
          { isLive: (instance) => !dead.has(instance) },
        )
      })
    }

    test('concurrent beginTurns of one request: exactly one starts', () =>
      withStore(async (store) => {
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            store.beginTurn(userMessage({ conversation_id: `c${i}`, request_id: 'same' }), true),
          ),
        )
        assert.equal(results.filter((r) => r.outcome === 'started').length, 1)
        assert.equal(results.filter((r) => r.outcome === 'duplicate').length, 5)
      }))

    test('seq is gapless per conversation under concurrent appends; append keeps order', () =>
      withStore(async (store) => {
        for (const id of ['a', 'b'])
          started(await store.beginTurn(userMessage({ conversation_id: id, request_id: id }), true))
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.append(
              [1, 2, 3].map((k) => ({
                ...answer({
                  conversation_id: i % 2 ? 'a' : 'b',
                  request_id: i % 2 ? 'a' : 'b',
                  principal: 'alice',
                }),
                type: 'tool_result' as const,
                role: 'tool' as const,
                content: `${i}.${k}`,
              })),
            ),
          ),
        )
        for (const events of results) {
          assert.deepEqual(
            events.map((e) => e.content.split('.')[1]),
            ['1', '2', '3'],
          )
          assert.deepEqual(
            events.map((e) => e.seq - events[0]!.seq),
            [0, 1, 2],
            'one append gets consecutive seqs',
          )
        }
        for (const id of ['a', 'b']) {
          const history = (await store.history('alice', id))!
          assert.deepEqual(
            history.map((e) => e.seq),
            Array.from({ length: 31 }, (_, i) => i + 1),
          )
          const returned = results.flat().filter((e) => e.conversation_id === id)
          assert.deepEqual(
            history.slice(1),
            returned.sort((x, y) => x.seq - y.seq),
          )
          assert.equal(new Set(history.map((e) => e.id)).size, 31)
        }
      }))

    test('an event that does not fit the schema is refused, and nothing of its append is stored', () =>
      withStore(async (store) => {
        started(await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r1' }), true))
        const good = answer({ conversation_id: 'c1', request_id: 'r1', principal: 'alice' })
        const bad = { ...good, type: 'shout' } as unknown as NewEvent
        await assert.rejects(store.append([good, bad]), { code: 'STORE_INVALID_EVENT' })
        const [stored] = await store.append([good])
        assert.equal(stored!.seq, 2)
      }))

    test('a final answer keeps its finish_reason, through history, a replay and a peek', () =>
      withStore(async (store) => {
        const reasons = ['stop', 'length', 'content_filter', 'tool_limit_reached'] as const
        started(await store.beginTurn(userMessage({ conversation_id: 'c1', request_id: 'r0' }), true))
        for (const finish_reason of reasons) {
          const message = userMessage({ conversation_id: 'c1', request_id: finish_reason })
          started(await store.beginTurn(message, false))
          const [stored] = await store.append([{ ...answer(message), finish_reason }])
          assert.equal(stored!.finish_reason, finish_reason)
          const peek = await store.peekRequest('alice', finish_reason)
          assert.equal(peek.state === 'finished' && peek.events.at(-1)!.finish_reason, finish_reason)
          assert.equal(duplicate(await store.beginTurn(message, false)).at(-1)!.finish_reason, finish_reason)
        }
        const history = (await store.history('alice', 'c1'))!
        assert.deepEqual(
          history.filter((e) => e.type === 'assistant_message').map((e) => e.finish_reason),
          reasons,
        )
        assert.ok(!('finish_reason' in history[0]!), 'absent where none was given')
        const bad = {
          ...answer(userMessage({ conversation_id: 'c1', request_id: 'r0' })),
          finish_reason: 'tired',
        }
        await assert.rejects(store.append([bad as unknown as NewEvent]), { code: 'STORE_INVALID_EVENT' })
      }))

    test('history: limit, beforeSeq, and owners only', () =>
      withStore(async (store) => {
        const message = userMessage({ conversation_id: 'c1', request_id: 'r1' })
        started(await store.beginTurn(message, true))
        await store.append(Array.from({ length: 9 }, (_, i) => ({ ...answer(message), content: `${i}` })))
        const seqs = async (options?: { limit?: number; beforeSeq?: number }) =>
          (await store.history('alice', 'c1', options))!.map((e) => e.seq)
        assert.deepEqual(await seqs(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        assert.deepEqual(await seqs({ limit: 3 }), [8, 9, 10])
        assert.deepEqual(await seqs({ beforeSeq: 5 }), [1, 2, 3, 4])
        assert.deepEqual(await seqs({ beforeSeq: 8, limit: 2 }), [6, 7])
        assert.deepEqual(await seqs({ beforeSeq: 1 }), [])
        assert.deepEqual(await seqs({ beforeSeq: 99, limit: 2 }), [9, 10])
        assert.deepEqual(await seqs({ limit: 50 }), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        assert.deepEqual(await seqs({ limit: 0 }), [])
        assert.equal(await store.history('mallory', 'c1'), undefined)
        assert.equal(await store.history('alice', 'nope'), undefined)
      }))

    test('listConversations: newest first, limit, before, title, owners only', () =>
      withStore(async (store) => {
        const long = `First line\n\n  of a question that goes on ${'and on '.repeat(20)}`
        started(
          await store.beginTurn(
            userMessage({ conversation_id: 'c1', request_id: 'r1', content: long }),
            true,
          ),
        )
        await nextMillisecond()
        started(
          await store.beginTurn(
            userMessage({ conversation_id: 'c2', request_id: 'r2', content: 'Two' }),
            true,
          ),
        )
        await nextMillisecond()
        started(
          await store.beginTurn(
            userMessage({ conversation_id: 'c3', request_id: 'r3', content: 'Three' }),
            true,
          ),
        )
        await nextMillisecond()
        started(
          await store.beginTurn(
            userMessage({ conversation_id: 'm1', request_id: 'r1', principal: 'mallory', content: 'Mine' }),
            true,
          ),
        )
        await nextMillisecond()
        // A later event makes c1 the newest; its title stays the first user text.
        await store.append([answer({ conversation_id: 'c1', request_id: 'r1', principal: 'alice' })])

        const all = await store.listConversations('alice', { limit: 10 })
        assert.deepEqual(
          all.map((c) => c.id),
          ['c1', 'c3', 'c2'],
        )
        assert.equal(all[0]!.title, titleOf(long))
        assert.ok(all[0]!.title.length <= 80)
        assert.deepEqual(all.map((c) => c.title).slice(1), ['Three', 'Two'])
        for (const c of all) assert.ok(c.created <= c.updated)
        assert.ok(all[0]!.created < all[0]!.updated)

        const page1 = await store.listConversations('alice', { limit: 2 })
        assert.deepEqual(
          page1.map((c) => c.id),
          ['c1', 'c3'],
        )
        const page2 = await store.listConversations('alice', { limit: 2, before: page1[1]!.updated })
        assert.deepEqual(
          page2.map((c) => c.id),
          ['c2'],
        )
        assert.deepEqual(await store.listConversations('alice', { limit: 2, before: all[2]!.updated }), [])
        assert.deepEqual(
          (await store.listConversations('mallory', { limit: 10 })).map((c) => c.id),
          ['m1'],
        )
        assert.deepEqual(await store.listConversations('nobody', { limit: 10 }), [])
      }))

    if (repository.durable) {
      test('reopened, everything is there and numbering and request_ids carry on', () =>
        withStore(async (store, opened) => {
          const message = userMessage({ conversation_id: 'c1', request_id: 'r1' })
          started(await store.beginTurn(message, true))
          await store.append([{ ...answer(message), finish_reason: 'length' }])
          const interrupted = userMessage({ conversation_id: 'c1', request_id: 'r2' })
          started(await store.beginTurn(interrupted, false))
          await store.append([answer(interrupted, 'interrupted')])
          const before = await store.history('alice', 'c1')
          const listed = await store.listConversations('alice', { limit: 5 })

          const again = await opened.reopen!()
          assert.deepEqual(await again.history('alice', 'c1'), before)
          assert.equal(before![1]!.finish_reason, 'length', 'read back from the file')
          assert.deepEqual(await again.listConversations('alice', { limit: 5 }), listed)
          assert.equal((await again.peekRequest('alice', 'r1')).state, 'finished')
          assert.equal((await again.peekRequest('alice', 'r2')).state, 'retry')
          assert.equal(duplicate(await again.beginTurn(message, false)).length, 2)
          const retry = started(await again.beginTurn(interrupted, false))
          assert.equal((await again.peekRequest('alice', 'r2')).state, 'running')
          assert.equal(retry.retry, true)
          assert.equal(retry.seq, 5)
          await assert.rejects(store.append([answer(message)]), { code: 'STORE_CLOSED' })
        }))
    }
  })
}
