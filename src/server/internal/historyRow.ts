/**
 * A cheap structural check for the record nearly every uploaded batch is made of: a history row.
 * Decoding each record of a batch with the Record schema cost the server more than unpacking the
 * batch (~5 µs a row of ten doubles, a third of its time per row); this check does the same for a
 * plain history row at a fraction of that. Anything else, or anything unusual about a row (another
 * key, a prototype, a value of another type), gets null, and the caller decodes it with the schema,
 * which then accepts it or names what is wrong: the check only ever decides "valid", never "invalid".
 */
import { MAX_KEYS_PER_RUN } from "../../schemas/Limits.js"
import type { HistoryRecord } from "../../schemas/Record.js"

const isPlainObject = (u: unknown): u is { readonly [key: string]: unknown } => {
  if (typeof u !== "object" || u === null) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const isIndex = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0

/**
 * `u` as a HistoryRecord when it is exactly one the Record schema accepts as it is (the five keys
 * of a history record and nothing else, whole non-negative seq and step, a flat object of numbers,
 * strings, booleans and nulls as values); null when it cannot tell.
 */
export const asHistoryRecord = (u: unknown): HistoryRecord | null => {
  if (!isPlainObject(u) || u["kind"] !== "history") return null
  let keys = 0
  for (const key in u) {
    if (key !== "kind" && key !== "seq" && key !== "ts" && key !== "step" && key !== "values") return null
    keys++
  }
  if (keys !== 5 || !isIndex(u["seq"]) || typeof u["ts"] !== "number" || !isIndex(u["step"])) return null
  const values = u["values"]
  if (!isPlainObject(values)) return null
  for (const key in values) {
    const value = values[key]
    if (value !== null && typeof value !== "number" && typeof value !== "string" && typeof value !== "boolean") return null
  }
  return u as unknown as HistoryRecord
}

/**
 * Whether `u` looks like a history row with more values than a run may have keys, counted only up
 * to one past the cap: a row of 100,000 keys is refused at its 10,001st, before anything else
 * walks them all (~30 ms of the server's one thread at 100,000).
 */
export const overKeyCap = (u: unknown): boolean => {
  if (!isPlainObject(u) || u["kind"] !== "history" || !isPlainObject(u["values"])) return false
  let count = 0
  for (const _ in u["values"]) if (++count > MAX_KEYS_PER_RUN) return true
  return false
}
