// What the rest of the platform sees of the MCP servers: their tools under LLM-safe names, a way
// to call one that never fails the turn, and each server's state for /ready.

import type {
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
} from '@modelcontextprotocol/sdk/types.js'
import type { ImageType } from '../util/image.js'

/**
 * `starting`: a stdio child still running after connection_timeout without having answered yet
 * (an `npx -y` installing its package): waited for, up to its start budget.
 */
export type ServerState = 'connecting' | 'starting' | 'ready' | 'failed' | 'closed'

export interface ServerStatus {
  /** The tools' namespace. */
  name: string
  /** The name servers_config.json gives, when it differs from the namespace (dots, slashes, long). */
  configured_name?: string
  transport: 'stdio' | 'http' | 'sse'
  state: ServerState
  /** Why the last attempt failed, or why the server went away (no secrets). */
  error?: string
  /** Tools the LLM sees from this server (after allow/deny). */
  tools: number
  prompts: number
  /** Resources and resource templates. */
  resources: number
  /** Failed connection attempts since the last success. */
  attempts: number
  /** The stdio child's process id while it runs. */
  pid?: number
  /** Tools whose listing needed a change (schema adapted for the provider) or was refused (left out). */
  tool_notes?: ToolNote[]
}

/** What happened to one tool of a server's list on its way to the LLM. */
export interface ToolNote {
  /** The tool's own name on its server. */
  tool: string
  /** `adapted`: offered with a changed schema; `left_out`: not offered (invalid, or refused by the provider). */
  action: 'adapted' | 'left_out'
  /** What was wrong or what was changed, for a person to read. */
  reason: string
}

export interface RegisteredTool {
  /** The name the LLM sees and calls: `SERVER__TOOL`, `[A-Za-z0-9_-]`, at most 64 characters. */
  name: string
  server: string
  /** The tool's own name on its server. */
  tool: string
  /** The server's description, and the forms of a merged top-level union when there was one. */
  description: string
  /**
   * The tool's input JSON Schema as the LLM sees it: the server's, adapted to what the provider
   * accepts (always an object schema). Arguments are still checked against the server's own.
   */
  input_schema: Record<string, unknown>
  annotations?: Record<string, unknown>
}

/**
 * Adapts a tool's input schema to what the active LLM provider accepts (the app gives one; the
 * registry knows no provider): the schema as the LLM will see it and what was changed, or why the
 * provider could not take it (the tool is then left out).
 */
export type ToolSchemaAdapter = (schema: Record<string, unknown>) =>
  | {
      schema: Record<string, unknown>
      /** What was changed, for a person; empty when nothing that matters was. */
      changes: string[]
      /** The forms of a merged top-level union, in words for the LLM (added to the description). */
      alternatives?: string
    }
  | { refused: string }

export interface ToolProgress {
  progress: number
  total?: number
  message?: string
}

export interface ToolOutcome {
  /** The text the LLM gets as the tool's result (binary content described, never inlined). */
  content: string
  is_error: boolean
  /**
   * The image blocks of the result whose bytes are an image every provider accepts (PNG, JPEG,
   * GIF, WebP), for a model that takes images; `content` describes them as well.
   */
  images?: ToolImage[]
}

export interface ToolImage {
  /** Read from the bytes (the tool's own `mimeType` may be wrong). */
  mime_type: ImageType
  /** Base64, without line breaks. */
  data: string
  /** Decoded size. */
  bytes: number
  width?: number
  height?: number
}

export interface ToolCallOptions {
  /** The turn's signal: when it fires the call is cancelled on its server and the reason thrown. */
  signal: AbortSignal
  onProgress?: (progress: ToolProgress) => void
}

export interface ToolRunner {
  /** Every tool of every ready server, as the LLM sees them. */
  list(): RegisteredTool[]
  /**
   * Calls a tool by its LLM-facing name with the arguments exactly as the LLM wrote them. Never
   * rejects for a failure of the tool (unknown name, invalid JSON or arguments, server down or
   * dying, timeout, an isError result): those come back as `is_error: true` with a text the LLM
   * can act on. Rejects only with the signal's reason when the signal fires.
   */
  call(name: string, args: string, options: ToolCallOptions): Promise<ToolOutcome>
}

/** A prompt, resource or resource template with the server it comes from. */
export interface ServerPrompt {
  server: string
  prompt: Prompt
}
export interface ServerResource {
  server: string
  resource: Resource
}
export interface ServerResourceTemplate {
  server: string
  template: ResourceTemplate
}

/**
 * The prompts and resources of the connected servers. Lists are the servers' own, every page,
 * refreshed on list_changed. Fetching throws the platform's errors (errors.ts): unknown server,
 * prompt or resource (404), a prompt's missing arguments (MissingPromptArguments, a 400 the caller
 * words), a server that is not connected (503), refused (400) or failed (502) the request, or did
 * not answer in time (504).
 */
export interface McpContent {
  prompts(): ServerPrompt[]
  resources(): ServerResource[]
  resourceTemplates(): ServerResourceTemplate[]
  getPrompt(
    server: string,
    name: string,
    args: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<GetPromptResult>
  /** `server` may be left out when exactly one server lists the URI or has a template matching it. */
  readResource(
    uri: string,
    server?: string,
    signal?: AbortSignal,
  ): Promise<{ server: string; result: ReadResourceResult }>
}

/** The registry as the platform uses it (the `mcp` decorator): tools, prompts and resources, states. */
export interface McpRegistryApi extends ToolRunner, McpContent {
  /** Connects every server in the background: returns at once. Called again, does nothing. */
  start(): void
  /** Each server's state, in the configuration's order. */
  status(): ServerStatus[]
  /** Whether every server's first connection attempt has ended, one way or the other. */
  settled(): boolean
  /** Ends every server's connection (and process group), all in parallel. */
  close(): Promise<void>
}
