// MCP tools describe their arguments with JSON Schema; providers accept a subset, and refuse the
// whole request (every tool, every turn) over one schema they do not take. Each tool's input schema
// is adapted once, when its server lists it, to the active provider's profile: what the LLM sees
// changes, what it means as little as can be, and the platform still checks a call's arguments
// against the server's own schema. A schema that cannot be made acceptable is refused (the tool
// is left out), never sent.
//
// The profiles (what each API documents or answers when it refuses):
// - `openai` (chat completions): parameters must be `type: "object"`, with no oneOf/anyOf/allOf/
//   enum/not at the top; an array needs `items`; the schema must be valid JSON Schema. `$ref` into
//   `$defs`/`definitions` is resolved by the API.
// - `anthropic` (messages): `input_schema` must be `type: "object"`, with no oneOf/allOf/anyOf at
//   the top, and valid JSON Schema draft 2020-12. `$ref` is resolved.
// - `gemini` (function declarations, also behind the OpenAI-compatible endpoint): a subset of the
//   OpenAPI 3.0 schema object. Unknown keywords (`additionalProperties`, `$ref`, `$defs`, `const`,
//   `oneOf`, `exclusiveMinimum`, …) are refused, `type` is one name (never a list) and needed unless
//   `anyOf` is given, `enum` holds strings, a string's `format` is only `enum` or `date-time`.
import { Ajv2020 } from 'ajv/dist/2020.js'
import { isObject } from '../util/values.js'

type Schema = Record<string, unknown>

export type SchemaProfile = 'openai' | 'anthropic' | 'gemini'

/** The schema as the LLM sees it, what was changed (for a person), and the alternatives merged. */
export interface AdaptedSchema {
  schema: Schema
  /** Empty when the schema goes as the server gave it (less `$schema`). */
  changes: string[]
  /** The forms of a merged top-level union, in words for the LLM (added to the tool's description). */
  alternatives?: string
}

export type SchemaAdaptation = AdaptedSchema | { refused: string }

/** A `$ref` met again inside itself is followed this many times, then stands as a loose schema. */
export const RECURSION_LIMIT = 2
/** At most this many references are inlined in one schema (a schema could otherwise explode). */
export const MAX_INLINED = 200
/** The description of the alternatives is cut to this length. */
const MAX_ALTERNATIVES_CHARS = 500

const COMPOSITIONS = ['allOf', 'anyOf', 'oneOf'] as const
const GEMINI_STRING_FORMATS = new Set(['enum', 'date-time'])
const GEMINI_NUMBER_FORMATS: Record<string, Set<string>> = {
  number: new Set(['float', 'double']),
  integer: new Set(['int32', 'int64']),
}
/** Kept as they are by the Gemini profile (everything else is rewritten or removed). */
const GEMINI_PLAIN = [
  'description',
  'default',
  'example',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'minProperties',
  'maxProperties',
] as const
const JSON_TYPES = ['string', 'number', 'integer', 'boolean', 'object', 'array'] as const

/** One validator of draft 2020-12, the dialect the providers check against. */
const metaCheck = new Ajv2020({ strict: false, validateFormats: false, logger: false })

/**
 * The profile of the provider's API: Gemini (by its model's name or its endpoint) whatever the
 * wire, else the wire's own.
 */
export function schemaProfile(provider: {
  type: 'openai' | 'anthropic'
  model: string
  base_url: string
}): SchemaProfile {
  if (/gemini/i.test(provider.model)) return 'gemini'
  try {
    if (new URL(provider.base_url).hostname === 'generativelanguage.googleapis.com') return 'gemini'
  } catch {
    // Not a URL: the configuration's check says so; the wire's profile applies.
  }
  return provider.type
}

/** A tool's input schema as `profile` accepts it, or why it cannot be. */
export function adaptToolSchema(original: Schema, profile: SchemaProfile): SchemaAdaptation {
  const changes = new Changes()
  const { $schema: _dialect, ...root } = original
  const refs = new References(root, changes)
  // Gemini resolves no reference. The others resolve them, but the merge below moves what sits
  // under a top-level union: a reference into it (`#/anyOf/0/properties/mode`, as zod-to-json-schema
  // writes a repeated sub-schema) would point nowhere, so those are inlined; `$defs` stay.
  let schema: Schema =
    profile === 'gemini' ? refs.inlineAll(root) : refs.inlineWhere(refs.resolveTop(root), movedByMerge)
  const merged = mergeTopLevel(schema, refs, changes)
  if (merged.schema.type === undefined) changes.add('type "object" added at the top')
  schema = normalizeDraft(merged.schema, changes)
  if (profile === 'openai') schema = withArrayItems(schema, changes)
  if (profile === 'gemini') schema = geminiSchema(schema, changes, true)
  schema = topLevelObject(schema, changes)
  if (!metaCheck.validateSchema(schema)) {
    const problem = metaCheck.errorsText(metaCheck.errors, { dataVar: 'schema' })
    return { refused: `its input schema is not valid JSON Schema (draft 2020-12): ${problem}` }
  }
  // Compiled too, which resolves every reference: one that points nowhere is refused by providers.
  const unresolved = unresolvedReference(schema)
  if (unresolved !== undefined) return { refused: `its input schema ${unresolved}` }
  const adapted: AdaptedSchema = { schema, changes: changes.list() }
  if (merged.alternatives) adapted.alternatives = merged.alternatives
  return adapted
}

/** Whether a reference points into what the merge of a top-level union moves (not into `$defs`). */
function movedByMerge(ref: string): boolean {
  return ref.startsWith('#') && !/^#\/(\$defs|definitions)(\/|$)/.test(ref)
}

/** Why `schema` cannot be compiled (a reference that points nowhere), or undefined. */
function unresolvedReference(schema: Schema): string | undefined {
  try {
    metaCheck.compile(schema)
    return undefined
  } catch (err) {
    return `cannot be compiled: ${err instanceof Error ? err.message : String(err)}`
  } finally {
    metaCheck.removeSchema(schema)
  }
}

/** An adapter for the MCP registry: the tool's schema for this profile, or why it is refused. */
export function toolSchemaAdapter(profile: SchemaProfile): (schema: Schema) => SchemaAdaptation {
  return (schema) => adaptToolSchema(schema, profile)
}

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

// The wires' last guard: the registry already adapted the schema, this keeps a schema from any
// other source (an app embedding the platform) from being refused for the simplest reasons.
function objectSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = schema
  return {
    ...rest,
    type: 'object',
    properties: isObject(rest.properties) ? rest.properties : {},
  }
}

/** What was changed, each kind once, in the order first met. */
class Changes {
  readonly #seen = new Set<string>()
  readonly #dropped = new Set<string>()
  add(change: string): void {
    this.#seen.add(change)
  }
  /** A keyword Gemini does not take, removed (listed together, once each). */
  drop(keyword: string): void {
    this.#dropped.add(keyword)
  }
  list(): string[] {
    const dropped = [...this.#dropped].sort()
    return [
      ...this.#seen,
      ...(dropped.length ? [`keywords Gemini does not take removed: ${dropped.join(', ')}`] : []),
    ]
  }
}

/** The schema's own references (`#/$defs/…`, `#/definitions/…`, any JSON pointer into it). */
class References {
  readonly #root: Schema
  readonly #changes: Changes
  #inlined = 0

  constructor(root: Schema, changes: Changes) {
    this.#root = root
    this.#changes = changes
  }

  /** The node a local reference points to; undefined for one that is not a JSON pointer or misses. */
  target(ref: string): unknown {
    if (!ref.startsWith('#')) return undefined
    let node: unknown = this.#root
    let pointer: string
    try {
      pointer = decodeURIComponent(ref.slice(1))
    } catch {
      return undefined
    }
    if (pointer === '') return node
    if (!pointer.startsWith('/')) return undefined
    for (const raw of pointer.slice(1).split('/')) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
      if (Array.isArray(node)) node = node[Number(key)]
      else if (isObject(node)) node = node[key]
      else return undefined
    }
    return node
  }

  /** For providers that resolve references: only a top-level `$ref` is followed (to merge it). */
  resolveTop(root: Schema): Schema {
    if (typeof root.$ref !== 'string') return root
    this.#changes.add('top-level $ref resolved')
    return this.shallow(root)
  }

  /** `node` with its own `$ref` (and the target's, …) replaced by the target, beside its siblings. */
  shallow(node: Schema): Schema {
    let current = node
    // A chain of references (a $ref to a $ref …) is followed a few steps, never in circles.
    for (let hops = 0; typeof current.$ref === 'string' && hops < 10; hops++) {
      const { $ref, ...siblings } = current
      const target = this.target($ref)
      if (!isObject(target)) return siblings
      current = { ...target, ...siblings }
    }
    return current
  }

  /** Every reference replaced by what it points to, recursion cut at RECURSION_LIMIT; no `$defs` left. */
  inlineAll(root: Schema): Schema {
    // The definitions themselves are not walked: only what the arguments refer to is inlined.
    const { $defs: _defs, definitions: _definitions, ...rest } = root
    const inlined = this.#inline(rest, [], () => true)
    return isObject(inlined) ? inlined : {}
  }

  /** The references `which` selects replaced by what they point to; the others, and `$defs`, kept. */
  inlineWhere(root: Schema, which: (ref: string) => boolean): Schema {
    const inlined = this.#inline(root, [], which)
    return isObject(inlined) ? inlined : {}
  }

  #inline(node: unknown, path: string[], which: (ref: string) => boolean): unknown {
    if (!isObject(node)) return node
    const walk = (child: unknown) => this.#inline(child, path, which)
    if (typeof node.$ref !== 'string' || !which(node.$ref)) return mapSubschemas(node, walk)
    const { $ref: ref, ...siblings } = node as Schema & { $ref: string }
    const target = this.target(ref)
    const rest = mapSubschemas(siblings, walk)
    if (target === undefined) {
      this.#changes.add(`reference ${ref} could not be resolved: any value accepted there`)
      return rest
    }
    const depth = path.filter((r) => r === ref).length
    if (depth >= RECURSION_LIMIT || this.#inlined >= MAX_INLINED) {
      this.#changes.add(`recursive or repeated reference ${ref} cut short`)
      return { ...looseCopy(target, ref), ...rest }
    }
    this.#inlined++
    if (depth === 0 && path.length === 0) this.#changes.add('references ($ref) inlined')
    const resolved = this.#inline(target, [...path, ref], which)
    return isObject(resolved) ? { ...resolved, ...rest } : resolved === false ? false : rest
  }
}

/** Where a reference stops being followed: the target's type and description, nothing more. */
function looseCopy(target: unknown, ref: string): Schema {
  const loose: Schema = {}
  if (isObject(target) && typeof target.type === 'string') loose.type = target.type
  const name = ref.split('/').pop() || 'the schema'
  const said = isObject(target) && typeof target.description === 'string' ? `${target.description} ` : ''
  loose.description = `${said}(nested further: the same shape as ${name})`.trim()
  return loose
}

/**
 * Every place a subschema can be, each replaced by `fn(subschema)` (draft 2020-12 and the draft-07
 * keywords still met: `definitions`, `dependencies`, array `items`, `additionalItems`).
 */
function mapSubschemas(node: Schema, fn: (child: unknown) => unknown): Schema {
  const out: Schema = { ...node }
  for (const key of [
    'items',
    'additionalItems',
    'additionalProperties',
    'contains',
    'propertyNames',
    'not',
    'if',
    'then',
    'else',
    'unevaluatedItems',
    'unevaluatedProperties',
  ]) {
    const value = node[key]
    if (key === 'items' && Array.isArray(value)) out.items = value.map(fn)
    else if (isObject(value) || typeof value === 'boolean') out[key] = fn(value)
  }
  for (const key of ['allOf', 'anyOf', 'oneOf', 'prefixItems']) {
    const value = node[key]
    if (Array.isArray(value)) out[key] = value.map(fn)
  }
  for (const key of ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']) {
    const value = node[key]
    if (isObject(value)) out[key] = mapValues(value, fn)
  }
  if (isObject(node.dependencies)) {
    out.dependencies = mapValues(node.dependencies, (v) => (Array.isArray(v) ? v : fn(v)))
  }
  return out
}

function mapValues(record: Record<string, unknown>, fn: (value: unknown) => unknown): Schema {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, fn(v)]))
}

// ---- top-level unions and intersections ----

interface Merged {
  schema: Schema
  alternatives?: string
}

/**
 * `anyOf`/`oneOf`/`allOf` at the top (what zod unions and intersections give) merged into one object
 * schema: the properties of every part; required what every alternative requires (anyOf, oneOf) or
 * what any part requires (allOf). The alternatives are described in words instead.
 */
function mergeTopLevel(root: Schema, refs: References, changes: Changes, depth = 0): Merged {
  let schema = root
  const described: string[] = []
  for (const key of COMPOSITIONS) {
    const parts = schema[key]
    if (!Array.isArray(parts)) continue
    const { [key]: _parts, ...base } = schema
    // Each part as an object schema of its own (its $ref followed, its own unions merged).
    const objects = parts
      .map((part) => (isObject(part) ? refs.shallow(part) : {}))
      .map((part) => (depth < 4 ? mergeTopLevel(part, refs, changes, depth + 1) : { schema: part }))
      .filter(({ schema: part }) => couldBeObject(part))
    schema = key === 'allOf' ? intersection(base, objects) : union(base, objects)
    if (key !== 'allOf' && objects.length > 0) described.push(describeAlternatives(key, objects))
    if (depth === 0) {
      changes.add(
        key === 'allOf'
          ? `top-level allOf (${parts.length} parts) merged into one object schema`
          : `top-level ${key} (${parts.length} alternatives) merged into one object schema, the alternatives described in the tool's description`,
      )
    }
  }
  const merged: Merged = { schema }
  if (described.length > 0) merged.alternatives = cut(described.join(' '), MAX_ALTERNATIVES_CHARS)
  return merged
}

/** A part of a top-level union that an object could match (one typed otherwise never can). */
function couldBeObject(part: Schema): boolean {
  const { type } = part
  if (type === undefined) return true
  return type === 'object' || (Array.isArray(type) && type.includes('object'))
}

function intersection(base: Schema, parts: Merged[]): Schema {
  const out: Schema = { ...base }
  const properties: Record<string, unknown[]> = {}
  const required = new Set(stringList(base.required))
  for (const [name, value] of Object.entries(isObject(base.properties) ? base.properties : {})) {
    properties[name] = [value]
  }
  for (const { schema: part } of parts) {
    for (const [name, value] of Object.entries(isObject(part.properties) ? part.properties : {})) {
      ;(properties[name] ??= []).push(value)
    }
    for (const name of stringList(part.required)) required.add(name)
    // The parts' own words about the arguments are kept, once.
    if (typeof part.description === 'string' && out.description === undefined)
      out.description = part.description
  }
  out.properties = mapValues(properties, (variants) => allOfVariants(variants as unknown[]))
  if (required.size > 0) out.required = [...required]
  return out
}

function union(base: Schema, alternatives: Merged[]): Schema {
  const out: Schema = { ...base }
  const baseProperties = isObject(base.properties) ? base.properties : {}
  const variants: Record<string, unknown[]> = {}
  for (const { schema: alternative } of alternatives) {
    for (const [name, value] of Object.entries(
      isObject(alternative.properties) ? alternative.properties : {},
    )) {
      ;(variants[name] ??= []).push(value)
    }
  }
  const properties: Schema = { ...baseProperties }
  for (const [name, values] of Object.entries(variants)) {
    const own = baseProperties[name]
    // The base's own schema of a property wins unless it says nothing (the alternatives then do).
    properties[name] = own !== undefined && !saysNothing(own) ? own : anyOfVariants(values, own)
  }
  out.properties = properties
  // Required by every alternative (and by the base itself).
  const everyOne = alternatives
    .map(({ schema: a }) => new Set(stringList(a.required)))
    .reduce<Set<string> | undefined>(
      (common, next) => (common ? new Set([...common].filter((n) => next.has(n))) : next),
      undefined,
    )
  const required = new Set([...stringList(base.required), ...(everyOne ?? [])])
  if (required.size > 0) out.required = [...required]
  else delete out.required
  return out
}

/** A property's schemas across alternatives: one when they agree, an enum of their constants, or anyOf. */
function anyOfVariants(values: unknown[], own: unknown): unknown {
  const distinct = uniqueSchemas(values)
  const description = isObject(own) && typeof own.description === 'string' ? own.description : undefined
  let merged: unknown
  if (distinct.length === 1) merged = distinct[0]
  else {
    const constants = distinct.map(constantOf)
    if (constants.every((c) => c !== undefined)) {
      const all = constants.flatMap((c) => c)
      const types = [...new Set(all.map(jsonType))]
      merged = { ...(types.length === 1 ? { type: types[0] } : {}), enum: [...new Set(all)] }
      const said = distinct.find((d) => isObject(d) && typeof d.description === 'string') as
        Schema | undefined
      if (said) (merged as Schema).description = said.description
    } else merged = { anyOf: distinct }
  }
  return description && isObject(merged) ? { ...merged, description } : merged
}

/** A property's schemas across the parts of an intersection: each must hold. */
function allOfVariants(values: unknown[]): unknown {
  const distinct = uniqueSchemas(values).filter((v) => !saysNothing(v))
  if (distinct.length === 0) return values[0] ?? {}
  return distinct.length === 1 ? distinct[0] : { allOf: distinct }
}

function uniqueSchemas(values: unknown[]): unknown[] {
  const seen = new Map<string, unknown>()
  for (const value of values) seen.set(JSON.stringify(value), value)
  return [...seen.values()]
}

/** `{}`, `true`, or only words: any value. */
function saysNothing(schema: unknown): boolean {
  if (schema === true) return true
  if (!isObject(schema)) return false
  return Object.keys(schema).every((k) => k === 'description' || k === 'title')
}

/** The values a schema allows when it is a `const` or an `enum` of plain values. */
function constantOf(schema: unknown): unknown[] | undefined {
  if (!isObject(schema)) return undefined
  if ('const' in schema && isPlain(schema.const)) return [schema.const]
  const values: unknown = schema.enum
  if (Array.isArray(values) && values.every(isPlain)) return values as unknown[]
  return undefined
}

function isPlain(value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value)
}

function jsonType(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number'
  return typeof value
}

/** The alternatives in a few words: `(1) kind: "file", path; (2) kind: "url", url`. */
function describeAlternatives(key: 'anyOf' | 'oneOf', alternatives: Merged[]): string {
  const forms = alternatives.map(
    ({ schema, alternatives: inner }, i) => `(${i + 1}) ${describeForm(schema, inner)}`,
  )
  const how = key === 'oneOf' ? 'exactly one of these forms' : 'at least one of these forms'
  return `The arguments take ${how}: ${forms.join('; ')}.`
}

function describeForm(schema: Schema, inner: string | undefined): string {
  const label = typeof schema.title === 'string' ? `${schema.title}: ` : ''
  const properties = isObject(schema.properties) ? schema.properties : {}
  const required = stringList(schema.required)
  const shown = required.length > 0 ? required : Object.keys(properties)
  const fields = shown.map((name) => {
    const values = constantOf(properties[name])
    return values?.length === 1 ? `${name}: ${JSON.stringify(values[0])}` : name
  })
  const what =
    required.length > 0 ? fields.join(', ') : fields.length > 0 ? `any of ${fields.join(', ')}` : 'any'
  const words = typeof schema.description === 'string' ? ` (${cut(schema.description, 80)})` : ''
  return `${label}${what}${words}${inner ? ` [${inner}]` : ''}`
}

// ---- the whole schema ----

/** Draft-04/07 spellings that draft 2020-12 refuses, in its own words. */
function normalizeDraft(root: Schema, changes: Changes): Schema {
  const walk = (node: unknown): unknown => {
    if (!isObject(node)) return node
    const out = mapSubschemas(node, walk)
    if (Array.isArray(out.items)) {
      // A draft-07 tuple: `items` as a list, `additionalItems` for the rest.
      const { items, additionalItems, ...rest } = out
      changes.add('draft-07 tuple items written as prefixItems')
      return {
        ...rest,
        prefixItems: items,
        ...(additionalItems === undefined ? {} : { items: additionalItems }),
      }
    }
    for (const [bound, exclusive] of [
      ['minimum', 'exclusiveMinimum'],
      ['maximum', 'exclusiveMaximum'],
    ] as const) {
      // Draft-04: a boolean beside `minimum`/`maximum`; since draft-06 the bound itself.
      if (typeof out[exclusive] !== 'boolean') continue
      changes.add('draft-04 exclusive bounds written as numbers')
      if (out[exclusive] === true && typeof out[bound] === 'number') {
        out[exclusive] = out[bound]
        delete out[bound]
      } else delete out[exclusive]
    }
    return out
  }
  return walk(root) as Schema
}

/** OpenAI refuses an array schema without `items`: `{}` (any item) is what it meant. */
function withArrayItems(root: Schema, changes: Changes): Schema {
  const walk = (node: unknown): unknown => {
    if (!isObject(node)) return node
    const out = mapSubschemas(node, walk)
    const { type } = out
    const array = type === 'array' || (Array.isArray(type) && type.includes('array'))
    if (array && out.items === undefined) {
      out.items = {}
      changes.add('items: {} added to an array without items')
    }
    return out
  }
  return walk(root) as Schema
}

/**
 * The schema as Gemini's function declarations take it (the OpenAPI 3.0 subset): references and
 * intersections already merged, `oneOf` as `anyOf`, a type list as one type (`nullable`) or anyOf,
 * `const` as a one-value enum, and what it does not know removed or said in the description.
 */
function geminiSchema(node: unknown, changes: Changes, top = false): Schema {
  if (!isObject(node)) {
    if (node === false) changes.add('a schema that allows nothing loosened for Gemini')
    return anyValue()
  }
  let s: Schema = node
  if (Array.isArray(s.allOf)) {
    const { allOf, ...rest } = s
    s = intersection(
      rest,
      allOf.filter(isObject).map((part) => ({ schema: part })),
    )
    changes.add('allOf merged for Gemini')
  }
  const out: Schema = {}
  const notes: string[] = []
  const types = (Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type]).filter(
    (t): t is string => typeof t === 'string',
  )
  let nullable = types.includes('null') || s.nullable === true
  // A tool's arguments are an object, whatever the top says (the top-level unions are merged).
  let type: string | undefined = top ? 'object' : types.find((t) => t !== 'null')
  if (!top && types.filter((t) => t !== 'null').length > 1) {
    changes.add('a list of types written as anyOf for Gemini')
    const variants = types.filter((t) => t !== 'null').map((t) => geminiSchema({ ...s, type: t }, changes))
    return { anyOf: variants, ...(nullable ? { nullable: true } : {}), ...descriptionOf(s) }
  }
  if (Array.isArray(s.type)) changes.add('a list of types written as one type (nullable) for Gemini')

  for (const key of GEMINI_PLAIN) if (s[key] !== undefined) out[key] = s[key]
  if (typeof s.exclusiveMinimum === 'number') {
    out.minimum = s.exclusiveMinimum
    notes.push(`greater than ${s.exclusiveMinimum}`)
  }
  if (typeof s.exclusiveMaximum === 'number') {
    out.maximum = s.exclusiveMaximum
    notes.push(`less than ${s.exclusiveMaximum}`)
  }

  const alternatives: unknown[] = [...listOf(s.anyOf), ...listOf(s.oneOf)]
  if (Array.isArray(s.oneOf)) changes.add('oneOf written as anyOf for Gemini')
  if (alternatives.length > 0) {
    const nonNull = alternatives.filter((a) => !(isObject(a) && a.type === 'null'))
    if (nonNull.length < alternatives.length) nullable = true
    const converted = nonNull.map((a) => geminiSchema(a, changes))
    const only = converted.length === 1 && type === undefined ? converted[0] : undefined
    if (only) {
      // `anyOf: [X, null]` (an optional value, as pydantic and zod write it): X, nullable.
      const { type: itsType, ...rest } = only
      Object.assign(out, rest, out.description === undefined ? {} : { description: out.description })
      if (typeof itsType === 'string') type = itsType
    } else if (converted.length > 0) out.anyOf = converted
  }

  // Constants: a string one as a one-value enum; other values said in the description.
  const values = 'const' in s ? [s.const] : Array.isArray(s.enum) ? s.enum : undefined
  if ('const' in s) changes.add('const written as enum for Gemini')
  if (values) {
    if (values.every((v) => typeof v === 'string')) {
      out.enum = values
      type ??= 'string'
    } else {
      notes.push(`one of ${values.map((v) => JSON.stringify(v)).join(', ')}`)
      changes.add('an enum of values other than strings said in the description for Gemini')
      type ??= jsonType(values.find((v) => v !== null) ?? '')
    }
  }

  if (typeof s.format === 'string') {
    const allowed = type === 'string' ? GEMINI_STRING_FORMATS : GEMINI_NUMBER_FORMATS[type ?? '']
    if (allowed?.has(s.format)) out.format = s.format
    else {
      notes.push(`format: ${s.format}`)
      changes.add(`format ${s.format} said in the description for Gemini`)
    }
  }

  if (type === 'object' || (type === undefined && isObject(s.properties))) {
    const properties = isObject(s.properties) ? s.properties : {}
    if (Object.keys(properties).length > 0 || top) {
      out.properties = mapValues(properties, (child) => geminiSchema(child, changes))
    }
    // Gemini refuses a required name that is not among the properties.
    const required = stringList(s.required).filter((name) => name in properties)
    if (required.length > 0) out.required = required
    type ??= 'object'
  }
  if (type === 'array' || (type === undefined && (s.items !== undefined || Array.isArray(s.prefixItems)))) {
    const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : []
    // Gemini knows no tuples: the first item's schema stands for all of them.
    if (prefix.length > 0) changes.add('a tuple written as a list for Gemini')
    out.items = geminiSchema(s.items ?? prefix[0] ?? {}, changes)
    type = 'array'
  }

  if (type !== undefined) out.type = type
  else if (out.anyOf === undefined) Object.assign(out, anyValue())
  if (nullable) out.nullable = true
  if (notes.length > 0) {
    const said = typeof out.description === 'string' ? `${out.description} ` : ''
    out.description = `${said}(${notes.join('; ')})`
  }
  for (const key of Object.keys(s)) if (!GEMINI_KNOWN.has(key)) changes.drop(key)
  return out
}

/** Keywords the Gemini conversion reads (kept or rewritten); any other is removed. */
const GEMINI_KNOWN = new Set<string>([
  ...GEMINI_PLAIN,
  'type',
  'nullable',
  'anyOf',
  'oneOf',
  'allOf',
  'const',
  'enum',
  'format',
  'properties',
  'required',
  'items',
  'prefixItems',
  'exclusiveMinimum',
  'exclusiveMaximum',
])

/** Any JSON value, in the terms Gemini takes: each type, an array of anything as text. */
function anyValue(): Schema {
  return {
    anyOf: JSON_TYPES.map((type) => (type === 'array' ? { type, items: { type: 'string' } } : { type })),
  }
}

function descriptionOf(s: Schema): Schema {
  return typeof s.description === 'string' ? { description: s.description } : {}
}

/** The top of a tool's schema as every profile wants it: an object with properties, nothing else. */
function topLevelObject(schema: Schema, changes: Changes): Schema {
  const out: Schema = { ...schema }
  if (out.type !== 'object') {
    if (out.type !== undefined) changes.add(`top-level type ${JSON.stringify(out.type)} written as "object"`)
    out.type = 'object'
  }
  if (!isObject(out.properties)) out.properties = {}
  // OpenAI refuses these at the top as it does the unions; on an object schema they say little.
  for (const key of ['enum', 'const', 'not']) {
    if (key in out) {
      delete out[key]
      changes.add(`top-level ${key} removed`)
    }
  }
  return out
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : []
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
