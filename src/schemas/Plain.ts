/**
 * The shapes of Record.ts that `init()`, `config.update()` and `summary.set()` check, in plain code:
 * loading effect/Schema takes longer than loading all of effect/Effect (bench/first-init.ts), and
 * the first `log()` needs no schema. Record.ts stays the definition; each check here accepts what
 * its schema accepts and returns what it decodes to (test/schemas/Plain.test.ts checks both).
 */
import * as Either from "effect/Either"
import type { Json, JsonPatch } from "./Record.js"

/** What a run id looks like: letters, digits, `-` and `_`, 1 to 64 of them (Record.ts's RunId). */
export const RUN_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

/** Where a value is not JSON: the keys and indices leading to it from the patch, and the value found there. */
export class NotJson {
  constructor(readonly path: ReadonlyArray<string | number>, readonly value: unknown) {}

  /** The same, one level further from the root. */
  under(key: string | number): NotJson {
    return new NotJson([key, ...this.path], this.value)
  }

  /** `["optimizer"]["betas"][1] is undefined`, or `the patch is 5` at the root. */
  get message(): string {
    const where = this.path.length === 0 ? "the patch" : this.path.map((key) => `[${JSON.stringify(key)}]`).join("")
    return `${where} is ${shown(this.value)}`
  }
}

const shown = (value: unknown): string => {
  if (typeof value === "function") return `a function (${value.name || "anonymous"})`
  if (typeof value === "bigint") return `${value}n`
  if (typeof value === "string") return JSON.stringify(value)
  if (Array.isArray(value)) return "an array"
  return typeof value === "object" && value !== null ? "an object" : String(value)
}

/**
 * A copy of a JSON value, as Record.ts's `Json` decodes it: arrays and objects copied (an object's
 * own enumerable string keys, whatever its class), anything else that is not null, a boolean, a
 * number or a string refused.
 */
const copyJson = (value: unknown): Json | NotJson => {
  if (value === null || typeof value === "boolean" || typeof value === "number" || typeof value === "string") return value
  if (Array.isArray(value)) {
    const out: Array<Json> = []
    for (let i = 0; i < value.length; i++) {
      const item = copyJson(value[i])
      if (item instanceof NotJson) return item.under(i)
      out.push(item)
    }
    return out
  }
  return typeof value === "object" ? copyObject(value) : new NotJson([], value)
}

const copyObject = (value: object): { [key: string]: Json } | NotJson => {
  const out: { [key: string]: Json } = {}
  for (const key of Object.keys(value)) {
    const item = copyJson((value as { readonly [key: string]: unknown })[key])
    if (item instanceof NotJson) return item.under(key)
    out[key] = item
  }
  return out
}

/** Record.ts's `JsonPatch`, decoded: a copy of an object of JSON values, or where it is not one. */
export const decodeJsonPatch = (value: unknown): Either.Either<JsonPatch, NotJson> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return Either.left(new NotJson([], value))
  const copy = copyObject(value)
  return copy instanceof NotJson ? Either.left(copy) : Either.right(copy)
}
