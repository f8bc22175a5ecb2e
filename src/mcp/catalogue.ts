// The catalogue: what every server offers, by server (its namespace), and the LLM-facing tool names
// that route a call back to its server and tool. Lists are kept while a server is down (the names
// stay stable, and route to the server's "unavailable" answer), but only ready servers are shown.
// Each listed tool is offered as the provider accepts it (its schema adapted), or left out; either
// is noted for /ready and logged once per listing, and never touches the server's other tools.
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js'
import type { Prompt, Tool } from '@modelcontextprotocol/sdk/types.js'
import type { ServerConfig } from '../config/types.js'
import { errors } from '../errors.js'
import type { Logger } from '../logging.js'
import { emptyLists, type Lists } from './listing.js'
import { assignToolNames } from './naming.js'
import type {
  RegisteredTool,
  ServerPrompt,
  ServerResource,
  ServerResourceTemplate,
  ToolNote,
  ToolSchemaAdapter,
} from './types.js'

/** A tool as the catalogue routes it: its LLM-facing name, its server, its definition there. */
export interface CatalogueTool {
  name: string
  server: string
  /** As the server listed it: its input schema is what arguments are checked against. */
  definition: Tool
  /** What the LLM is shown. */
  offer: Offer
}

/** A tool as the LLM sees it. */
export interface Offer {
  description: string
  input_schema: Record<string, unknown>
}

export interface CatalogueOptions {
  isReady: (server: string) => boolean
  /** Why a tool's input schema cannot check arguments (it does not compile); undefined when it can. */
  inputSchemaProblem: (server: string, tool: Tool) => string | undefined
  /** The provider's view of a schema; without one, schemas are offered as the servers give them. */
  adaptSchema?: ToolSchemaAdapter
  log: Logger
  /** A server's text as we repeat it (no secrets, cut short). */
  clean: (text: string) => string
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
  readonly #options: CatalogueOptions
  /** Each server's offered tools as the LLM sees them, by the tool's definition. */
  readonly #offers = new Map<string, WeakMap<Tool, Offer>>()
  /** Each server's tools adapted or left out at its last listing. */
  readonly #notes = new Map<string, ToolNote[]>()
  #tools = new Map<string, CatalogueTool>()

  constructor(servers: Record<string, ServerConfig>, options: CatalogueOptions) {
    this.#filters = new Map(Object.entries(servers).map(([name, config]) => [name, config.tools]))
    // In the configuration's order, which is the order of every listing.
    for (const name of Object.keys(servers)) this.#lists.set(name, emptyLists())
    this.#options = options
  }

  /** Replaces the lists given (a new connection has all of them, a refresh one kind). */
  update(server: string, lists: Partial<Lists>): void {
    const current = this.#lists.get(server) ?? emptyLists()
    if (lists.tools === undefined) {
      this.#lists.set(server, { ...current, ...lists, tools: current.tools })
      return
    }
    const tools = this.#offer(server, this.#visible(server, lists.tools), lists.invalidTools ?? [])
    this.#lists.set(server, { ...current, ...lists, tools })
    this.#reindex()
  }

  /** The server's tools adapted or left out at its last listing. */
  notes(server: string): ToolNote[] {
    return this.#notes.get(server) ?? []
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
    return [...this.#tools.values()].filter((t) => this.#options.isReady(t.server)).map(registered)
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
    return [...this.#lists].filter(([server]) => this.#options.isReady(server))
  }

  /** allow/deny of the server's configuration; tools that only run as tasks cannot be called here. */
  #visible(server: string, tools: Tool[]): Tool[] {
    return tools.filter((t) => this.#wanted(server, t.name) && t.execution?.taskSupport !== 'required')
  }

  #wanted(server: string, tool: string): boolean {
    const { allow, deny } = this.#filters.get(server) ?? {}
    return (!allow || allow.includes(tool)) && !(deny ?? []).includes(tool)
  }

  /**
   * The tools offered, each as the provider accepts it: one whose schema cannot check arguments,
   * or that the provider would refuse, is left out. Each tool adapted or left out (invalid ones
   * among them) is noted and logged, once per listing.
   */
  #offer(server: string, tools: Tool[], invalid: ToolNote[]): Tool[] {
    const { adaptSchema, inputSchemaProblem, clean } = this.#options
    const notes: ToolNote[] = invalid.filter((note) => this.#wanted(server, note.tool))
    const offers = new WeakMap<Tool, Offer>()
    const offered: Tool[] = []
    for (const tool of tools) {
      const leftOut = (reason: string) => notes.push({ tool: tool.name, action: 'left_out', reason })
      const problem = inputSchemaProblem(server, tool)
      if (problem !== undefined) {
        leftOut(`its input schema is not valid JSON Schema: ${problem}`)
        continue
      }
      const description = tool.description ?? tool.title ?? ''
      const original = tool.inputSchema as Record<string, unknown>
      // One tool's schema must never break the listing of the others, whatever it holds.
      let adapted: ReturnType<ToolSchemaAdapter>
      try {
        adapted = adaptSchema ? adaptSchema(original) : { schema: original, changes: [] }
      } catch (err) {
        adapted = { refused: `its input schema could not be adapted: ${(err as Error).message}` }
      }
      if ('refused' in adapted) {
        leftOut(adapted.refused)
        continue
      }
      if (adapted.changes.length > 0) {
        notes.push({ tool: tool.name, action: 'adapted', reason: adapted.changes.join('; ') })
      }
      const alternatives = adapted.alternatives
      offers.set(tool, {
        description: alternatives
          ? description
            ? `${description}\n\n${alternatives}`
            : alternatives
          : description,
        input_schema: adapted.schema,
      })
      offered.push(tool)
    }
    const cleaned = notes.map((note) => ({ ...note, tool: clean(note.tool), reason: clean(note.reason) }))
    this.#offers.set(server, offers)
    this.#notes.set(server, cleaned)
    for (const note of cleaned) {
      const message = note.action === 'adapted' ? 'mcp tool adapted for the provider' : 'mcp tool left out'
      this.#options.log.warn({ server, ...note }, message)
    }
    return offered
  }

  /** Names every known tool again: a change on one server may resolve or create a collision. */
  #reindex(): void {
    const entries = [...this.#lists].flatMap(([server, lists]) =>
      lists.tools.map((definition) => ({ server, definition })),
    )
    const names = assignToolNames(entries.map((e) => ({ server: e.server, tool: e.definition.name })))
    this.#tools = new Map(
      entries.map((entry, i) => {
        const name = names[i] as string
        const offer = this.#offers.get(entry.server)?.get(entry.definition) ?? asListed(entry.definition)
        return [name, { name, ...entry, offer }]
      }),
    )
  }
}

/** A tool offered as its server listed it. */
function asListed(definition: Tool): Offer {
  return {
    description: definition.description ?? definition.title ?? '',
    input_schema: definition.inputSchema,
  }
}

function registered(tool: CatalogueTool): RegisteredTool {
  const { definition } = tool
  const registered: RegisteredTool = {
    name: tool.name,
    server: tool.server,
    tool: definition.name,
    description: tool.offer.description,
    input_schema: tool.offer.input_schema,
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
