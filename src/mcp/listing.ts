// What a server lists (tools, prompts, resources, resource templates), every page of it: the
// server's cursors are followed to the end, within a bound, since a server could page forever.
// Tools are checked one by one: a tool the server describes invalidly is left out (and said why),
// never the server with it, as the SDK's own listTools would (it refuses the whole list).
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js'
import {
  ErrorCode,
  McpError,
  ResultSchema,
  ToolSchema,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'
import { z } from 'zod'
import { isObject } from '../util/values.js'
import type { ToolNote } from './types.js'

/** A paginated list longer than this many pages is refused. */
export const MAX_PAGES = 1_000

/** The lists a server keeps, each refreshed by its own list_changed notification. */
export type ListKind = 'tools' | 'prompts' | 'resources'

export interface Lists {
  /** The tools whose definitions are valid. */
  tools: Tool[]
  /** The tools listed with an invalid definition (left out), each with why. */
  invalidTools: ToolNote[]
  prompts: Prompt[]
  resources: Resource[]
  templates: ResourceTemplate[]
}

export function emptyLists(): Lists {
  return { tools: [], invalidTools: [], prompts: [], resources: [], templates: [] }
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
  return { ...tools, prompts, ...resources }
}

/** One kind listed again, after its list_changed. */
export async function listAgain(
  client: Client,
  kind: ListKind,
  options: RequestOptions,
): Promise<Partial<Lists>> {
  if (kind === 'tools') return listTools(client, options)
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

/** A tool's definition as the SDK checks it, but its input schema only as an object: ours follow. */
const ToolDefinition = ToolSchema.extend({ inputSchema: z.record(z.string(), z.unknown()) })

/** The server's tools, the valid ones apart from those left out. */
export async function listTools(
  client: Client,
  options: RequestOptions,
): Promise<Pick<Lists, 'tools' | 'invalidTools'>> {
  if (!client.getServerCapabilities()?.tools) return { tools: [], invalidTools: [] }
  const listed = await allPages('tools/list', async (params) => {
    // Read as any result: the list is checked here, each tool on its own.
    const page: Record<string, unknown> = await client.request(
      { method: 'tools/list', params },
      ResultSchema,
      options,
    )
    if (!Array.isArray(page.tools)) throw new Error("the server's tools/list answer holds no list of tools")
    const next = page.nextCursor
    if (next !== undefined && typeof next !== 'string') {
      throw new Error("the server's tools/list answer has a nextCursor that is not a string")
    }
    return { items: page.tools as unknown[], next }
  })
  const checked = checkTools(listed)
  rememberTools(client, checked.tools)
  return checked
}

// The SDK's own validator, as callTool will use it: an output schema it cannot compile would make
// it throw for every tool of the list. One for the process, made when a first tool has an output
// schema (building one compiles the meta-schemas), reused by every listing after.
let outputValidator: AjvJsonSchemaValidator | undefined
function outputSchemas(): AjvJsonSchemaValidator {
  return (outputValidator ??= new AjvJsonSchemaValidator())
}

/** Each tool checked as the SDK would check the list, and more: one invalid tool is left out alone. */
export function checkTools(listed: unknown[]): Pick<Lists, 'tools' | 'invalidTools'> {
  const tools: Tool[] = []
  const invalidTools: ToolNote[] = []
  const names = new Set<string>()
  listed.forEach((entry, i) => {
    const parsed = ToolDefinition.safeParse(entry)
    const name =
      isObject(entry) && typeof entry.name === 'string' ? entry.name : `(tool ${i + 1} of the list, no name)`
    const leftOut = (reason: string) => invalidTools.push({ tool: name, action: 'left_out', reason })
    if (!parsed.success) return leftOut(`its definition is invalid: ${describeIssues(parsed.error)}`)
    const tool = parsed.data as Tool
    const notObject = objectSchemaProblem(tool.inputSchema)
    if (notObject) return leftOut(notObject)
    if (tool.outputSchema) {
      try {
        outputSchemas().getValidator(tool.outputSchema)
      } catch (err) {
        return leftOut(`its output schema is not valid JSON Schema: ${(err as Error).message}`)
      }
    }
    if (names.has(tool.name)) return leftOut('the server lists another tool of the same name before it')
    names.add(tool.name)
    tools.push(tool)
  })
  return { tools, invalidTools }
}

/**
 * Why an input schema is not an object schema. One without `type` is taken (the LLM is told
 * `type: "object"`): servers leave it out, and a top-level union of objects (zod's) has none.
 */
function objectSchemaProblem(schema: Record<string, unknown>): string | undefined {
  const { type } = schema
  if (type === undefined || type === 'object') return undefined
  return `its input schema is not an object schema (type ${JSON.stringify(type)})`
}

/** A zod error in a line: the first few problems, each at its place. */
function describeIssues(error: z.ZodError): string {
  const issues = error.issues.slice(0, 3).map((issue) => {
    const at = issue.path.map(String).join('.')
    return at ? `${at}: ${issue.message}` : issue.message
  })
  const more = error.issues.length > 3 ? ` (and ${error.issues.length - 3} more)` : ''
  return `${issues.join('; ')}${more}`
}

/**
 * What the SDK's listTools would remember of the tools: callTool checks a result's structured
 * content against its tool's output schema, and refuses a tool that only runs as a task. Given
 * every page at once (the SDK's own forgets the earlier pages).
 */
function rememberTools(client: Client, tools: Tool[]): void {
  const sdk = client as unknown as { cacheToolMetadata?: (tools: Tool[]) => void }
  sdk.cacheToolMetadata?.(tools)
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
