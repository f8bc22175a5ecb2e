// What a server lists (tools, prompts, resources, resource templates), every page of it: the
// server's cursors are followed to the end, within a bound, since a server could page forever.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js'
import {
  ErrorCode,
  McpError,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'

/** A paginated list longer than this many pages is refused. */
export const MAX_PAGES = 1_000

/** The lists a server keeps, each refreshed by its own list_changed notification. */
export type ListKind = 'tools' | 'prompts' | 'resources'

export interface Lists {
  tools: Tool[]
  prompts: Prompt[]
  resources: Resource[]
  templates: ResourceTemplate[]
}

export function emptyLists(): Lists {
  return { tools: [], prompts: [], resources: [], templates: [] }
}

/**
 * Every list the server offers, every page. Tools decide whether the server is usable: a server
 * whose prompts or resources cannot be listed still serves its tools (`failed` hears why).
 */
export async function listEverything(
  client: Client,
  options: RequestOptions,
  failed: (kind: ListKind, err: unknown) => void,
): Promise<Lists> {
  const tolerant = <T>(kind: ListKind, listing: Promise<T>, empty: T): Promise<T> =>
    listing.catch((err: unknown) => {
      failed(kind, err)
      return empty
    })
  const [tools, prompts, resources] = await Promise.all([
    listTools(client, options),
    tolerant('prompts', listPrompts(client, options), []),
    tolerant('resources', listResources(client, options), { resources: [], templates: [] }),
  ])
  return { tools, prompts, ...resources }
}

/** One kind listed again, after its list_changed. */
export async function listAgain(
  client: Client,
  kind: ListKind,
  options: RequestOptions,
): Promise<Partial<Lists>> {
  if (kind === 'tools') return { tools: await listTools(client, options) }
  if (kind === 'prompts') return { prompts: await listPrompts(client, options) }
  return listResources(client, options)
}

interface Page<T> {
  items: T[]
  next?: string | undefined
}

/** Every page of a paginated list, following the server's cursors to the end. */
export async function allPages<T>(
  method: string,
  page: (params?: { cursor: string }) => Promise<Page<T>>,
): Promise<T[]> {
  const items: T[] = []
  const seen = new Set<string>()
  let cursor: string | undefined
  do {
    const result = await page(cursor === undefined ? undefined : { cursor })
    items.push(...result.items)
    cursor = result.next
    // A server that hands out the same cursor again would keep us here forever.
    if (cursor !== undefined && seen.has(cursor)) throw new Error(`the server repeated a ${method} cursor`)
    if (cursor !== undefined) seen.add(cursor)
    if (seen.size >= MAX_PAGES) throw new Error(`the server sent more than ${MAX_PAGES} pages of ${method}`)
  } while (cursor !== undefined)
  return items
}

export async function listTools(client: Client, options: RequestOptions): Promise<Tool[]> {
  if (!client.getServerCapabilities()?.tools) return []
  return allPages('tools/list', async (params) => {
    const result = await client.listTools(params, options)
    return { items: result.tools, next: result.nextCursor }
  })
}

export async function listPrompts(client: Client, options: RequestOptions): Promise<Prompt[]> {
  if (!client.getServerCapabilities()?.prompts) return []
  return allPages('prompts/list', async (params) => {
    const result = await client.listPrompts(params, options)
    return { items: result.prompts, next: result.nextCursor }
  })
}

export async function listResources(
  client: Client,
  options: RequestOptions,
): Promise<{ resources: Resource[]; templates: ResourceTemplate[] }> {
  if (!client.getServerCapabilities()?.resources) return { resources: [], templates: [] }
  const [resources, templates] = await Promise.all([
    allPages('resources/list', async (params) => {
      const result = await client.listResources(params, options)
      return { items: result.resources, next: result.nextCursor }
    }),
    allPages('resources/templates/list', async (params) => {
      const result = await client.listResourceTemplates(params, options)
      return { items: result.resourceTemplates, next: result.nextCursor }
    }).catch((err: unknown) => {
      // Templates are optional: a server without any may not know the method.
      if (err instanceof McpError && err.code === Number(ErrorCode.MethodNotFound)) return []
      throw err
    }),
  ])
  return { resources, templates }
}
