// Checks on values of unknown shape: parsed files, JSON from the wire, tool arguments.

/** A plain object whose keys can be read: not null, not an array. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
