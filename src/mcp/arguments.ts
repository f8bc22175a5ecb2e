// Arguments checked before they reach a server: a tool's against its input schema as the server gave
// it (the problems go back to the LLM as the tool's result, field by field), a prompt's required ones.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { Prompt, Tool } from '@modelcontextprotocol/sdk/types.js'
import { errors } from '../errors.js'
import { errorMessage } from './failures.js'
import type { CatalogueTool } from './catalogue.js'

/** Servers' schemas use keywords and formats of their own: check what ajv knows, ignore the rest. */
const AJV_OPTIONS = { allErrors: true, strict: false, validateFormats: false, logger: false } as const

/** A tool's schema compiled, or why it does not compile (such a tool is not offered). */
type Compiled = { validator: ValidateFunction } | { problem: string }

export class ArgumentChecker {
  readonly #ajv07 = new Ajv(AJV_OPTIONS)
  readonly #ajv2020 = new Ajv2020(AJV_OPTIONS)
  /** Keyed by the schema's text: an unchanged tool after a refresh reuses its validator. */
  readonly #bySchema = new Map<string, Compiled>()
  /** Keyed by the definition: a tool called again does not serialize its schema again. */
  readonly #byTool = new WeakMap<Tool, Compiled>()

  /**
   * Why the tool's input schema cannot check arguments (ajv does not compile it: not valid JSON
   * Schema, a reference that leads nowhere, …); undefined when it can. Compiled once, when listed.
   */
  problem(definition: Tool): string | undefined {
    const compiled = this.#compiled(definition)
    return 'problem' in compiled ? compiled.problem : undefined
  }

  /**
   * The arguments, as the LLM wrote them, as an object; or what is wrong with them, in words for the
   * LLM. Always against the server's own schema, whatever the LLM was shown.
   */
  check(tool: CatalogueTool, args: string): Record<string, unknown> | string {
    const parsed = parseArguments(args)
    if (typeof parsed === 'string') return parsed
    const compiled = this.#compiled(tool.definition)
    // Not offered to the LLM (listing left it out); the server judges such arguments itself.
    if (!('validator' in compiled) || compiled.validator(parsed)) return parsed
    const problems = (compiled.validator.errors ?? []).map(describeAjvError)
    return `Invalid arguments for ${tool.name}:\n${problems.join('\n')}`
  }

  #compiled(definition: Tool): Compiled {
    const known = this.#byTool.get(definition)
    if (known !== undefined) return known
    const compiled = this.#compile(definition)
    this.#byTool.set(definition, compiled)
    return compiled
  }

  #compile(definition: Tool): Compiled {
    const { $schema, ...schema } = definition.inputSchema as Record<string, unknown>
    const draft07 = typeof $schema === 'string' && /draft-0[4-7]/.test($schema)
    const key = `${draft07 ? '07' : '2020'}:${JSON.stringify(schema)}`
    const known = this.#bySchema.get(key)
    if (known) return known
    let compiled: Compiled
    try {
      compiled = { validator: (draft07 ? this.#ajv07 : this.#ajv2020).compile(schema) }
    } catch (err) {
      compiled = { problem: errorMessage(err) }
    }
    this.#bySchema.set(key, compiled)
    return compiled
  }
}

/** Throws errors.VALIDATION_FAILED naming every required argument of the prompt that is missing. */
export function checkPromptArguments(prompt: Prompt, args: Record<string, string>): void {
  const missing = (prompt.arguments ?? []).filter((a) => a.required === true && args[a.name] === undefined)
  if (missing.length > 0)
    throw new MissingPromptArguments(
      prompt.name,
      missing.map((a) => a.name),
    )
}

/**
 * A prompt asked for without arguments it requires: a 400 VALIDATION_FAILED whose data names them
 * (`data.missing_arguments`); the caller, which knows where the arguments were in the client's
 * frame, words each as a field of it (src/chat/actions.ts).
 */
export class MissingPromptArguments extends errors.VALIDATION_FAILED {
  override readonly data: { missing_arguments: string[] }
  constructor(
    readonly prompt: string,
    names: string[],
  ) {
    super()
    this.data = { missing_arguments: names }
  }
}

/** The arguments as an object, or what is wrong with them (in words for the LLM). */
function parseArguments(args: string): Record<string, unknown> | string {
  // Some models send nothing at all for a tool without parameters.
  if (args.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(args)
  } catch (err) {
    return `The arguments are not valid JSON: ${errorMessage(err)}`
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return 'The arguments must be a JSON object.'
  }
  return value as Record<string, unknown>
}

function describeAjvError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>
  if (error.keyword === 'required')
    return `${error.instancePath}/${String(params.missingProperty)}: is required`
  if (error.keyword === 'additionalProperties') {
    return `${error.instancePath}/${String(params.additionalProperty)}: is not allowed`
  }
  return `${error.instancePath || '/'}: ${error.message ?? 'is not valid'}`
}
