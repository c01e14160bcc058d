/**
 * Turns a `log()` argument into a flat row of storable values. This runs inside every `log()`
 * call, so the common case (a flat object of numbers) is one `for…in` loop with a `typeof` switch
 * and no other allocation than the row itself (bench/call-cost.ts).
 */
import { MAX_VALUE_BYTES, overValueBytes } from "../../schemas/Limits.js"
import type { Value } from "../../schemas/Record.js"

/** Strings at least this long may be over MAX_VALUE_BYTES of UTF-8 (3 bytes a UTF-16 unit at most). */
const LONG_STRING = MAX_VALUE_BYTES / 3

/** Told once per key about a value that was left out of the row. */
export type SkippedValue = (key: string, what: string) => void

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** What a value is, for a warning: `function`, `symbol`, `Date`, `array`, … */
const describe = (value: unknown): string =>
  typeof value !== "object" || value === null
    ? typeof value
    : Array.isArray(value)
      ? "array"
      : (Object.getPrototypeOf(value)?.constructor?.name ?? "object") + " instance"

/** Throws the `TypeError` `log()` gives for an argument that is not a plain object of values. */
export const checkArgument = (data: unknown): void => {
  if (typeof data !== "object" || data === null || !isPlainObject(data)) {
    throw new TypeError(
      `steplog: log() takes a plain object of values, like { loss: 0.5 }; it was given ${
        data === null ? "null" : describe(data)
      }`
    )
  }
}

/**
 * The keys of the last row normalised, in order. `normalise` keeps the same array while rows keep
 * the same keys, so a caller tells "same keys as before" by comparing references, for free.
 */
export interface RowShape {
  keys: ReadonlyArray<string>
}

/** Copies `data` into a new flat row: nested plain objects become `a/b` keys, unstorable values are skipped. */
export const normalise = (data: object, skipped: SkippedValue, shape: RowShape): { [key: string]: Value } => {
  // Fast path, a flat row of storable values: V8 clones a plain object's shape in one step, so
  // the spread and a read-only check beat building the row key by key.
  const row: { [key: string]: unknown } = { ...data }
  const keys = shape.keys
  let same = true
  let k = 0
  for (const key in row) {
    const value = row[key]
    const type = typeof value
    // A string long enough to be over the limit goes the slow way, which measures it.
    if ((type !== "number" && type !== "string" && type !== "boolean" && value !== null) || (type === "string" && (value as string).length > LONG_STRING)) {
      const flat: { [key: string]: Value } = {}
      copyInto(flat, data, "", skipped, null)
      shape.keys = Object.keys(flat)
      return flat
    }
    if (keys[k++] !== key) same = false
  }
  if (!same || k !== keys.length) shape.keys = Object.keys(row)
  return row as { [key: string]: Value }
}

const copyInto = (
  row: { [key: string]: Value },
  data: object,
  prefix: string,
  skipped: SkippedValue,
  ancestors: Array<object> | null
): void => {
  for (const name in data) {
    const key = prefix === "" ? name : prefix + name
    const value = (data as { [key: string]: unknown })[name]
    switch (typeof value) {
      case "string":
        if (overValueBytes(value)) skipped(key, `string of more than ${MAX_VALUE_BYTES} bytes`)
        else row[key] = value
        break
      case "number":
      case "boolean":
        row[key] = value
        break
      case "object":
        if (value === null) row[key] = null
        else if (!isPlainObject(value)) skipped(key, describe(value))
        // At the top level the only ancestor is `data` itself (a row that holds itself).
        else if (ancestors === null ? value === data : ancestors.includes(value)) skipped(key, "cyclic reference")
        else {
          const path = ancestors === null ? [data] : ancestors
          path.push(value)
          copyInto(row, value, key + "/", skipped, path)
          path.pop()
        }
        break
      default:
        skipped(key, describe(value))
    }
  }
}
