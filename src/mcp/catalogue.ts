// The catalogue: what every server offers, by server (its namespace), and the LLM-facing tool names
// that route a call back to its server and tool. Lists are kept while a server is down (the names
// stay stable, and route to the server's "unavailable" answer), but only ready servers are shown.
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js'
import type { Prompt, Tool } from '@modelcontextprotocol/sdk/types.js'
import type { ServerConfig } from '../config/types.js'
import { errors } from '../errors.js'
import { emptyLists, type Lists } from './listing.js'
import { assignToolNames } from './naming.js'
import type { RegisteredTool, ServerPrompt, ServerResource, ServerResourceTemplate } from './types.js'

/** A tool as the catalogue routes it: its LLM-facing name, its server, its definition there. */
export interface CatalogueTool {
  name: string
  server: string
  definition: Tool
}

/** What a server offers, as /ready and the logs count it. */
export interface Counts {
  tools: number
  prompts: number
  resources: number
}

export class Catalogue {
  readonly #filters: Map<string, ServerConfig['tools']>
  readonly #lists = new Map<string, Lists>()
  readonly #isReady: (server: string) => boolean
  #tools = new Map<string, CatalogueTool>()

  constructor(servers: Record<string, ServerConfig>, isReady: (server: string) => boolean) {
    this.#filters = new Map(Object.entries(servers).map(([name, config]) => [name, config.tools]))
    // In the configuration's order, which is the order of every listing.
    for (const name of Object.keys(servers)) this.#lists.set(name, emptyLists())
    this.#isReady = isReady
  }

  /** Replaces the lists given (a new connection has all of them, a refresh one kind). */
  update(server: string, lists: Partial<Lists>): void {
    const current = this.#lists.get(server) ?? emptyLists()
    const tools = lists.tools === undefined ? current.tools : this.#visible(server, lists.tools)
    this.#lists.set(server, { ...current, ...lists, tools })
    if (lists.tools !== undefined) this.#reindex()
  }

  counts(server: string): Counts {
    const { tools, prompts, resources, templates } = this.#lists.get(server) ?? emptyLists()
    return { tools: tools.length, prompts: prompts.length, resources: resources.length + templates.length }
  }

  /** The tool the LLM calls by this name, whether its server is ready or not. */
  tool(name: string): CatalogueTool | undefined {
    return this.#tools.get(name)
  }

  /** A server's prompt by name, as last listed. */
  prompt(server: string, name: string): Prompt | undefined {
    return this.#lists.get(server)?.prompts.find((p) => p.name === name)
  }

  tools(): RegisteredTool[] {
    return [...this.#tools.values()].filter((t) => this.#isReady(t.server)).map(registered)
  }

  prompts(): ServerPrompt[] {
    return this.#ready().flatMap(([server, lists]) => lists.prompts.map((prompt) => ({ server, prompt })))
  }

  resources(): ServerResource[] {
    return this.#ready().flatMap(([server, lists]) =>
      lists.resources.map((resource) => ({ server, resource })),
    )
  }

  resourceTemplates(): ServerResourceTemplate[] {
    return this.#ready().flatMap(([server, lists]) =>
      lists.templates.map((template) => ({ server, template })),
    )
  }

  /** The one server that lists this URI, or failing that has a template matching it. */
  ownerOf(uri: string): string {
    const all = [...this.#lists]
    let owners = all.filter(([, lists]) => lists.resources.some((r) => r.uri === uri))
    if (owners.length === 0) {
      owners = all.filter(([, lists]) => lists.templates.some((t) => matches(t.uriTemplate, uri)))
    }
    if (owners.length === 0) throw new errors.RESOURCE_NOT_FOUND(uri)
    if (owners.length > 1) throw new errors.RESOURCE_AMBIGUOUS(uri, owners.map(([name]) => name).join(', '))
    return (owners[0] as [string, Lists])[0]
  }

  #ready(): [string, Lists][] {
    return [...this.#lists].filter(([server]) => this.#isReady(server))
  }

  /** allow/deny of the server's configuration; tools that only run as tasks cannot be called here. */
  #visible(server: string, tools: Tool[]): Tool[] {
    const { allow, deny } = this.#filters.get(server) ?? {}
    return tools.filter(
      (t) =>
        (!allow || allow.includes(t.name)) &&
        !(deny ?? []).includes(t.name) &&
        t.execution?.taskSupport !== 'required',
    )
  }

  /** Names every known tool again: a change on one server may resolve or create a collision. */
  #reindex(): void {
    const entries = [...this.#lists].flatMap(([server, lists]) =>
      lists.tools.map((definition) => ({ server, definition })),
    )
    const names = assignToolNames(entries.map((e) => ({ server: e.server, tool: e.definition.name })))
    this.#tools = new Map(
      entries.map((entry, i) => [names[i] as string, { name: names[i] as string, ...entry }]),
    )
  }
}

function registered(tool: CatalogueTool): RegisteredTool {
  const { definition } = tool
  const registered: RegisteredTool = {
    name: tool.name,
    server: tool.server,
    tool: definition.name,
    description: definition.description ?? definition.title ?? '',
    input_schema: definition.inputSchema,
  }
  if (definition.annotations) registered.annotations = definition.annotations
  return registered
}

function matches(template: string, uri: string): boolean {
  try {
    return new UriTemplate(template).match(uri) !== null
  } catch {
    return false
  }
}
