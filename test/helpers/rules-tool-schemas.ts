// What the providers refuse in a request's tool schemas, so the stand-in refuses it too. A single
// tool they refuse fails every request that offers it, so the whole chat: each rule below is the
// documented rule, where it is documented, and the API's own error text (as users quote it).
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { LlmReply, RecordedRequest } from './llm-server.js'
import type { Rule } from './provider-rules.js'

type Schema = Record<string, unknown>

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v)
const meta = new Ajv2020({ strict: false, validateFormats: false, logger: false })

/** Each tool of an openai-wire body: its name and `function.parameters`. */
function openAiTools(body: Schema): { name: string; schema: unknown }[] {
  const tools = Array.isArray(body.tools) ? body.tools : []
  return tools.map((t: unknown) => {
    const fn = isObject(t) && isObject(t.function) ? t.function : {}
    return { name: String(fn.name), schema: fn.parameters }
  })
}

/** Each tool of an anthropic-wire body: its name and `input_schema`. */
function anthropicTools(body: Schema): { name: string; schema: unknown }[] {
  const tools = Array.isArray(body.tools) ? body.tools : []
  return tools.map((t: unknown) => ({
    name: isObject(t) ? String(t.name) : '',
    schema: isObject(t) ? t.input_schema : undefined,
  }))
}

/** Every subschema of `schema` with its path (property names and keywords), the schema first. */
function* subschemas(schema: unknown, path: string[] = []): Generator<[Schema, string[]]> {
  if (!isObject(schema)) return
  yield [schema, path]
  for (const key of ['items', 'additionalProperties', 'not', 'contains', 'if', 'then', 'else']) {
    if (isObject(schema[key])) yield* subschemas(schema[key], [...path, key])
  }
  for (const key of ['anyOf', 'oneOf', 'allOf', 'prefixItems']) {
    const list = schema[key]
    if (Array.isArray(list))
      for (const [i, s] of list.entries()) yield* subschemas(s, [...path, key, String(i)])
  }
  for (const key of ['properties', '$defs', 'definitions']) {
    const map = schema[key]
    if (isObject(map)) for (const [name, s] of Object.entries(map)) yield* subschemas(s, [...path, key, name])
  }
}

// ---- OpenAI, chat completions ----

/**
 * `function.parameters` must be an object schema, without a union, enum or `not` at its top.
 * Documented: "parameters: the parameters the functions accepts, described as a JSON Schema
 * object" (https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools) and
 * https://platform.openai.com/docs/guides/function-calling. Error text as quoted in
 * https://github.com/nspady/google-calendar-mcp/issues/39 and
 * https://github.com/langchain-ai/langchainjs/issues/9804 (400, code invalid_function_parameters).
 */
export const openAiObjectParameters: Rule = (body) => {
  for (const { name, schema } of openAiTools(body)) {
    const top = isObject(schema) ? schema : {}
    if (top.type !== 'object' || ['oneOf', 'anyOf', 'allOf', 'enum', 'not'].some((k) => k in top)) {
      return `Invalid schema for function '${name}': schema must have type 'object' and not have 'oneOf'/'anyOf'/'allOf'/'enum'/'not' at the top level.`
    }
  }
  return undefined
}

/**
 * An array schema needs `items`, anywhere in the parameters (non-strict function calling too).
 * Error text as quoted in https://github.com/mark3labs/mcphost/issues/35 (gpt-4o) and
 * https://github.com/gumloop/guMCP/pull/136; `items: {}` is accepted
 * (https://github.com/langchain4j/langchain4j/pull/3452, tested against OpenAI).
 */
export const openAiArrayItems: Rule = (body) => {
  for (const { name, schema } of openAiTools(body)) {
    for (const [node, path] of subschemas(schema)) {
      const array = node.type === 'array' || (Array.isArray(node.type) && node.type.includes('array'))
      if (array && node.items === undefined) {
        const context = path.map((p) => `'${p}'`).join(', ')
        return `Invalid schema for function '${name}': In context=(${context}), array schema missing items.`
      }
    }
  }
  return undefined
}

/**
 * The parameters must be valid JSON Schema (checked against the meta-schema). Error text as quoted
 * in https://github.com/FoundationAgents/OpenManus/issues/1162 ("[] is not of type 'object',
 * 'boolean'"); the stand-in words the problem as ajv finds it.
 */
export const openAiValidJsonSchema: Rule = (body) => {
  for (const { name, schema } of openAiTools(body)) {
    if (!meta.validateSchema(schema as Schema)) {
      return `Invalid schema for function '${name}': ${meta.errorsText(meta.errors)}`
    }
  }
  return undefined
}

/**
 * Every `$ref` must resolve within the schema. The providers compile a tool's schema (OpenAI
 * validates `parameters` and constrains decoding by it; Anthropic checks draft 2020-12), and a
 * reference that points nowhere makes it unusable (JSON Schema 2020-12 core, section 8.2.3.1; a
 * provider refusing one: https://github.com/RooCodeInc/Roo-Code/issues/11430). The wording here
 * is the stand-in's own: no documented text was found.
 */
function unresolvedRef(schema: unknown): string | undefined {
  try {
    meta.compile(schema as Schema)
    return undefined
  } catch (err) {
    return (err as Error).message
  } finally {
    meta.removeSchema(schema as Schema)
  }
}

export const openAiResolvableRefs: Rule = (body) => {
  for (const { name, schema } of openAiTools(body)) {
    const problem = unresolvedRef(schema)
    if (problem) return `Invalid schema for function '${name}': ${problem}`
  }
  return undefined
}

export const OPENAI_TOOL_RULES: Rule[] = [
  openAiObjectParameters,
  openAiArrayItems,
  openAiValidJsonSchema,
  openAiResolvableRefs,
]

// ---- Anthropic, messages ----

/**
 * `input_schema` needs `type` (and it is `object`). Documented: "input_schema: JSON schema for the
 * tool input shape" with `type: "object"` required
 * (https://docs.anthropic.com/en/api/messages#body-tools). Error text as quoted in
 * https://github.com/Kilo-Org/kilocode/issues/12238 ("Field required"); a wrong value gets the same
 * validator's "Input should be 'object'".
 */
export const anthropicObjectType: Rule = (body) => {
  for (const [i, { schema }] of anthropicTools(body).entries()) {
    const type = isObject(schema) ? schema.type : undefined
    if (type === undefined) return `tools.${i}.custom.input_schema.type: Field required`
    if (type !== 'object') return `tools.${i}.custom.input_schema.type: Input should be 'object'`
  }
  return undefined
}

/**
 * No oneOf/allOf/anyOf at the top of `input_schema` (undocumented, found from the error: see
 * https://github.com/marianfoo/mcp-sap-docs/pull/51). Error text as quoted in
 * https://github.com/anthropics/claude-code/issues/5973 and
 * https://github.com/dearlordylord/huly-mcp/issues/66.
 */
export const anthropicNoTopLevelUnions: Rule = (body) => {
  for (const [i, { schema }] of anthropicTools(body).entries()) {
    if (isObject(schema) && ['oneOf', 'allOf', 'anyOf'].some((k) => k in schema)) {
      return `tools.${i}.custom.input_schema: input_schema does not support oneOf, allOf, or anyOf at the top level`
    }
  }
  return undefined
}

/**
 * `input_schema` must be valid JSON Schema draft 2020-12. Error text as quoted in
 * https://github.com/anthropics/claude-code/issues/63673 and
 * https://github.com/anthropics/anthropic-sdk-java/issues/241.
 */
export const anthropicDraft202012: Rule = (body) => {
  for (const [i, { schema }] of anthropicTools(body).entries()) {
    if (!meta.validateSchema(schema as Schema)) {
      return `tools.${i}.custom.input_schema: JSON schema is invalid. It must match JSON Schema draft 2020-12 (https://json-schema.org/draft/2020-12). Learn more about tool use at https://docs.claude.com/en/docs/tool-use.`
    }
  }
  return undefined
}

/** As openAiResolvableRefs: every `$ref` must resolve (the stand-in's own wording). */
export const anthropicResolvableRefs: Rule = (body) => {
  for (const [i, { schema }] of anthropicTools(body).entries()) {
    const problem = unresolvedRef(schema)
    if (problem) return `tools.${i}.custom.input_schema: JSON schema is invalid: ${problem}`
  }
  return undefined
}

export const ANTHROPIC_TOOL_RULES: Rule[] = [
  anthropicObjectType,
  anthropicNoTopLevelUnions,
  anthropicDraft202012,
  anthropicResolvableRefs,
]

// ---- Gemini, function declarations (also through its OpenAI-compatible endpoint) ----

/**
 * The Schema object's fields: "a select subset of an OpenAPI 3.0 schema object"
 * (https://ai.google.dev/api/caching#Schema; the same list in the generativelanguage v1beta
 * ISchema, https://docs.cloud.google.com/nodejs/docs/reference/generativelanguage/latest/generativelanguage/protos.google.ai.generativelanguage.v1beta.ischema).
 */
const GEMINI_FIELDS = new Set([
  'type',
  'format',
  'title',
  'description',
  'nullable',
  'enum',
  'maxItems',
  'minItems',
  'properties',
  'required',
  'minProperties',
  'maxProperties',
  'minLength',
  'maxLength',
  'pattern',
  'example',
  'anyOf',
  'propertyOrdering',
  'default',
  'items',
  'minimum',
  'maximum',
])

/** Where Gemini says a problem is: `parameters.properties[path].items` */
function geminiPlace(i: number, path: string[]): string {
  let place = `tools[0].function_declarations[${i}].parameters`
  for (let k = 0; k < path.length; k++) {
    const key = path[k] as string
    if (key === 'properties') place += `.properties[${path[++k]}].value`
    else if (key === 'anyOf') place += `.any_of[${path[++k]}]`
    else place += `.${key}`
  }
  return place
}

/**
 * A field the Schema object does not have is refused: "Invalid JSON payload received. Unknown name
 * "additionalProperties" at '…': Cannot find field." (as quoted in
 * https://github.com/openswarm-ai/openswarm/issues/24 for $schema, additionalProperties, const,
 * exclusiveMinimum, propertyNames; https://github.com/zed-industries/zed/issues/44875 for const).
 * A list of types is refused by the proto too: "Proto field is not repeating, cannot start list."
 * (https://github.com/zed-industries/zed/issues/53919).
 */
export const geminiKnownFields: Rule = (body) => {
  for (const [i, { schema }] of openAiTools(body).entries()) {
    for (const [node, path] of subschemas(schema)) {
      for (const key of Object.keys(node)) {
        const at = geminiPlace(i, path)
        if (!GEMINI_FIELDS.has(key))
          return `Invalid JSON payload received. Unknown name "${key}" at '${at}': Cannot find field.`
        if (key === 'type' && Array.isArray(node.type))
          return `Invalid JSON payload received. Unknown name "type" at '${at}': Proto field is not repeating, cannot start list.`
      }
    }
  }
  return undefined
}

/**
 * A string's `format` is only `enum` or `date-time` on the Gemini API ("When using the Gemini
 * Developer API, this must be either 'enum' or 'date-time', otherwise requests will fail":
 * https://firebase.google.com/docs/reference/js/ai.schemashared). Error text as quoted in
 * https://github.com/google-gemini/gemini-cli/issues/5450.
 */
export const geminiStringFormats: Rule = (body) => {
  for (const [i, { schema }] of openAiTools(body).entries()) {
    for (const [node, path] of subschemas(schema)) {
      if (
        node.type === 'string' &&
        typeof node.format === 'string' &&
        !['enum', 'date-time'].includes(node.format)
      ) {
        const name = path.at(-1) ?? ''
        return `* GenerateContentRequest.tools[0].function_declarations[${i}].parameters.properties[${name}].format: only 'enum' and 'date-time' are supported for STRING type\n`
      }
    }
  }
  return undefined
}

/**
 * Every schema needs a `type` unless it has `anyOf`; `required` names only properties that exist;
 * `enum` holds strings (the field is `string[]`). Error texts as quoted in
 * https://github.com/danny-avila/LibreChat/issues/6971 ("type: must be specified when not using
 * one_of, any_of or all_of fields") and https://github.com/vercel/ai/pull/11319 ("property is not
 * defined").
 */
export const geminiTypedSchemas: Rule = (body) => {
  for (const [i, { schema }] of openAiTools(body).entries()) {
    for (const [node, path] of subschemas(schema)) {
      const at = `GenerateContentRequest.${geminiPlace(i, path)}`
      if (node.type === undefined && node.anyOf === undefined)
        return `* ${at}.type: must be specified when not using one_of, any_of or all_of fields\n`
      const properties = isObject(node.properties) ? node.properties : {}
      const required = Array.isArray(node.required) ? node.required : []
      for (const [k, name] of required.entries()) {
        if (!(String(name) in properties)) return `* ${at}.required[${k}]: property is not defined\n`
      }
      if (Array.isArray(node.enum) && node.enum.some((v) => typeof v !== 'string'))
        return `Invalid value at '${geminiPlace(i, path)}.enum' (TYPE_STRING)`
    }
  }
  return undefined
}

export const GEMINI_TOOL_RULES: Rule[] = [geminiKnownFields, geminiStringFormats, geminiTypedSchemas]

/**
 * Gemini's OpenAI-compatible endpoint answers a refused request with 400 and its API error,
 * `[{"error": {"code": 400, "message", "status": "INVALID_ARGUMENT"}}]`
 * (https://ai.google.dev/gemini-api/docs/openai; the shape as quoted in
 * https://github.com/zed-industries/zed/issues/44875).
 */
export function geminiRefusals(...rules: Rule[]): (req: RecordedRequest) => LlmReply | undefined {
  return (req) => {
    const body = req.body as Schema
    for (const rule of rules) {
      const message = rule(body)
      if (message !== undefined) {
        return { status: 400, json: [{ error: { code: 400, message, status: 'INVALID_ARGUMENT' } }] }
      }
    }
    return undefined
  }
}
