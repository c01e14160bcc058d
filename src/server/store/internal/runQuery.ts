/**
 * A runs listing's filter, sort and page (src/schemas/RunQuery.ts says what they mean), evaluated
 * on the runs as shown, in the server process: the same for both backends, whose config and
 * summary are msgpack that neither database reads.
 *
 * Paging is by keyset: the cursor holds the last run's sort value and id, and the next page starts
 * after it, so runs created or deleted between pages neither repeat nor shift the pages.
 */
import { type Clause, encodeCursor, type RunField, type RunQuery, type RunSort, type Scalar, type SortKey } from "../../../schemas/RunQuery.js"
import type { RunDetail } from "../../../schemas/Wire.js"

/** A field's value in a run: a scalar, the tags, or undefined when the run has none to compare. */
const valueOf = (run: RunDetail, field: RunField): Scalar | ReadonlyArray<string> | undefined => {
  switch (field.kind) {
    case "config":
    case "summary": {
      let at: unknown = field.kind === "config" ? run.config : run.summary
      for (const key of field.path) {
        if (at === null || typeof at !== "object" || Array.isArray(at) || !Object.hasOwn(at, key)) return undefined
        at = (at as { readonly [key: string]: unknown })[key]
      }
      if (typeof at === "number") return Number.isFinite(at) ? at : undefined
      return typeof at === "string" || typeof at === "boolean" ? at : undefined
    }
    case "tags":
      return run.tags
    case "text":
      return undefined
    default:
      return run[field.kind] ?? undefined
  }
}

const ordered = (a: number | string, b: number | string): number => (a < b ? -1 : a > b ? 1 : 0)

/** A run's text fields, the ones `text ~ …` looks in (as the dashboard's own search does). */
const textsOf = (run: RunDetail): ReadonlyArray<string> =>
  [run.name, run.runId, run.notes, run.group, run.jobType, run.host, ...run.tags].filter((text): text is string => text !== null)

/** Whether `run` meets `clause`. */
const holds = (run: RunDetail, clause: Clause): boolean => {
  if (clause.field.kind === "text") {
    const wanted = String(clause.value).toLowerCase()
    return textsOf(run).some((text) => text.toLowerCase().includes(wanted))
  }
  const value = valueOf(run, clause.field)
  if (value === undefined) return false
  if (Array.isArray(value)) return value.includes(String(clause.value))
  const wanted = clause.value
  switch (clause.op) {
    case "=":
      return value === wanted
    case "!=":
      return typeof value === typeof wanted && value !== wanted
    case "~":
      return typeof value === "string" && value.toLowerCase().includes(String(wanted).toLowerCase())
    default: {
      if (typeof value !== typeof wanted || (typeof value !== "number" && typeof value !== "string")) return false
      const order = ordered(value, wanted as number | string)
      return clause.op === "<" ? order < 0 : clause.op === "<=" ? order <= 0 : clause.op === ">" ? order > 0 : order >= 0
    }
  }
}

const keyOf = (run: RunDetail, sort: RunSort): SortKey => {
  const value = valueOf(run, sort.field)
  return value === undefined || Array.isArray(value) ? [false, null, run.runId] : [true, value as Scalar, run.runId]
}

const TYPE_RANK = { number: 0, string: 1, boolean: 2, object: 3 } as const
/** Numbers, then strings, then booleans; null (a run without the value) only meets null. */
const compareScalars = (a: Scalar | null, b: Scalar | null): number => {
  const rank = TYPE_RANK[typeof a as keyof typeof TYPE_RANK] - TYPE_RANK[typeof b as keyof typeof TYPE_RANK]
  if (rank !== 0) return rank
  return a === null || b === null ? 0 : ordered(a as number | string, b as number | string)
}

/** The total order of a sort: by value (descending if asked), runs without one last, then by id. */
const compareKeys = (sort: RunSort) => (a: SortKey, b: SortKey): number => {
  if (a[0] !== b[0]) return a[0] ? -1 : 1
  const byValue = compareScalars(a[1], b[1])
  if (byValue !== 0) return sort.descending ? -byValue : byValue
  return ordered(a[2], b[2])
}

/**
 * The page of `runs` that `query` asks for, in its order, and the cursor of the page after it
 * (undefined when this is the last).
 */
export const pageOf = (runs: ReadonlyArray<RunDetail>, query: RunQuery) => {
  const after = query.after
  const compare = compareKeys(query.sort)
  const matching = runs
    .filter((run) => query.filter.every((clause) => holds(run, clause)))
    .map((run) => ({ run, key: keyOf(run, query.sort) }))
    .filter(({ key }) => after === undefined || compare(key, after) > 0)
    .sort((a, b) => compare(a.key, b.key))
  const page = matching.slice(0, query.limit)
  const next = matching.length > page.length ? encodeCursor(page.at(-1)!.key, query.sort) : undefined
  return { page: page.map(({ run }) => run), next }
}
