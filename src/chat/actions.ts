// The actions of /ws/chat that are not a chat turn (protocol.md): listing what the MCP servers
// offer, fetching a prompt or a resource, and reading this principal's conversations. Each answers
// with the `result` of its `complete` frame, or throws a platform error.
import { errors, withData } from '../errors.js'
import { MissingPromptArguments } from '../mcp/arguments.js'
import type { McpContent, ToolRunner } from '../mcp/types.js'
import type { ChatStore } from '../store/types.js'
import type { ClientFrame } from './protocol.js'
import type { ActionResult } from './server-frames.js'

export interface ActionsOptions {
  /** Conversations, for `get_history` and `list_conversations`. */
  store: ChatStore
  /** The MCP tools (for `list_tools`); none when absent. */
  tools?: ToolRunner
  /** The MCP prompts and resources; none when absent. */
  content?: McpContent
}

/** An action answered at once, from what this process holds or the store. */
export type QueryFrame = Extract<
  ClientFrame,
  { action: 'ping' | 'list_tools' | 'list_prompts' | 'list_resources' | 'list_conversations' | 'get_history' }
>
/** An action that asks an MCP server, and so runs as a request that can be cancelled. */
export type FetchFrame = Extract<ClientFrame, { action: 'get_prompt' | 'read_resource' }>

export class ChatActions {
  readonly #options: ActionsOptions

  constructor(options: ActionsOptions) {
    this.#options = options
  }

  /** The `result` of a query, for this principal. */
  async answer(frame: QueryFrame, principal: string): Promise<ActionResult<QueryFrame['action']>> {
    switch (frame.action) {
      case 'ping':
        return { pong: true }
      case 'list_tools':
        return { tools: this.#tools() }
      case 'list_prompts':
        return { prompts: this.#prompts() }
      case 'list_resources':
        return { resources: this.#resources() }
      case 'list_conversations': {
        const { limit = 20, before } = frame.payload
        return { conversations: await this.#options.store.listConversations(principal, { limit, before }) }
      }
      case 'get_history': {
        const { conversation_id, limit = 100, before_seq } = frame.payload
        const events = await this.#options.store.history(principal, conversation_id, {
          limit,
          beforeSeq: before_seq,
        })
        if (!events) throw new errors.CONVERSATION_NOT_FOUND(conversation_id)
        return {
          events: events.map(
            ({ instance: _instance, principal: _principal, reasoning_parts: _parts, ...event }) =>
              // The provider's own data on a call (a thought signature) is for the provider alone.
              event.tool_calls
                ? { ...event, tool_calls: event.tool_calls.map(({ extra_content: _extra, ...call }) => call) }
                : event,
          ),
        }
      }
    }
  }

  /** A prompt or resource from its MCP server; `signal` cancels the request on the server. */
  async fetch(frame: FetchFrame, signal: AbortSignal): Promise<ActionResult<FetchFrame['action']>> {
    const { content } = this.#options
    if (frame.action === 'get_prompt') {
      const { server, name, arguments: args = {} } = frame.payload
      if (!content) throw new errors.MCP_SERVER_NOT_FOUND(server)
      const result = await content.getPrompt(server, name, args, signal).catch(inFrame('payload.arguments'))
      const description = result.description ? { description: result.description } : {}
      return { messages: result.messages, ...description }
    }
    const { server, uri } = frame.payload
    if (!content) throw new errors.RESOURCE_NOT_FOUND(uri)
    const { result } = await content.readResource(uri, server, signal)
    return { contents: result.contents }
  }

  #tools(): ActionResult<'list_tools'>['tools'] {
    return (this.#options.tools?.list() ?? []).map((t) => ({
      name: t.name,
      server: t.server,
      description: t.description,
      input_schema: t.input_schema,
      annotations: t.annotations ?? {},
    }))
  }

  #prompts(): ActionResult<'list_prompts'>['prompts'] {
    return (this.#options.content?.prompts() ?? []).map(({ server, prompt }) => ({
      server,
      name: prompt.name,
      description: prompt.description ?? prompt.title ?? '',
      arguments: prompt.arguments ?? [],
    }))
  }

  #resources(): ActionResult<'list_resources'>['resources'] {
    const content = this.#options.content
    if (!content) return []
    const described = (item: { name: string; mimeType?: string; description?: string }) => ({
      name: item.name,
      ...(item.mimeType === undefined ? {} : { mime_type: item.mimeType }),
      ...(item.description === undefined ? {} : { description: item.description }),
    })
    return [
      ...content
        .resources()
        .map(({ server, resource }) => ({ server, uri: resource.uri, ...described(resource) })),
      ...content.resourceTemplates().map(({ server, template }) => ({
        server,
        uri_template: template.uriTemplate,
        ...described(template),
      })),
    ]
  }
}

/**
 * For a promise's catch: a prompt's missing arguments as the fields of the client's frame that
 * lacked them (`at` is where its arguments are: `payload.arguments` in get_prompt,
 * `payload.prompt.arguments` in a chat); any other error as it is.
 */
export function inFrame(at: string): (err: unknown) => never {
  return (err) => {
    if (!(err instanceof MissingPromptArguments)) throw err
    throw withData(new errors.VALIDATION_FAILED(), {
      validation_errors: err.data.missing_arguments.map((name) => ({
        field: `${at}.${name}`,
        message: `The prompt '${err.prompt}' needs the argument '${name}'`,
        type: 'missing',
      })),
    })
  }
}
