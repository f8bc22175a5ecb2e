// MCP tools describe their arguments with JSON Schema; providers accept a subset. These adapt a
// tool's input schema to what a wire takes, without changing what it means.
import { isObject } from '../util/values.js'

/** OpenAI-compatible `function.parameters`: an object schema with `properties`, no `$schema`. */
export function openAiParameters(schema: Record<string, unknown>): Record<string, unknown> {
  return objectSchema(schema)
}

/**
 * Anthropic's `input_schema`: the messages API rejects a tool whose schema is not `type: object`,
 * and a `$schema` dialect it does not know; MCP servers may send either.
 */
export function anthropicInputSchema(schema: Record<string, unknown>): Record<string, unknown> {
  return objectSchema(schema)
}

function objectSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = schema
  return {
    ...rest,
    type: 'object',
    properties: isObject(rest.properties) ? rest.properties : {},
  }
}
