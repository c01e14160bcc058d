/**
 * Which runs of a project a listing answers, and in what order: the filter and sort texts of
 * `GET …/runs?filter=…&sort=…` (and `steplog runs --filter --sort`, `steplog/api`'s `runs`), parsed
 * here into clauses the server evaluates (server/store/internal/runQuery.ts). MLflow's search
 * strings are the model: a person types them, a script builds them.
 *
 *   filter   clause [and clause]…
 *   clause   field op value
 *   field    state | name | group | jobType | host | tags | runId | startedAt | updatedAt
 *            | text (name, id, notes, group, job type, host and tags at once; with ~ only)
 *            | config.<key>[.<key>]… | summary.<key>… | config["any key"] | summary["val/acc"]
 *   op       = != < <= > >=, ~ (contains, any case: names and other text), has (tags only)
 *   value    a number, "a quoted string", a bare word (finished, mlp), true, false
 *   sort     field, `-field` for descending (default: -startedAt, newest first)
 *
 *   state = finished and config.lr < 0.01 and summary["val/acc"] > 0.9 and tags has mlp
 *
 * A run without the field's value does not match a clause (`!=` included), and sorts after every
 * run that has one, in either direction. Without a value means: no such key, an object or array
 * there, null (a config `null`, a run with no group), or a number that is not finite (NaN, a
 * diverged loss's Infinity). A string where a number is compared matches nothing either. A cursor
 * belongs to its sort: one used with another sort is refused.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/** A field a clause or a sort names: one of the run's own, or a path into its config or summary. */
export type RunField =
  | { readonly kind: "state" | "name" | "group" | "jobType" | "host" | "tags" | "runId" | "startedAt" | "updatedAt" | "text" }
  | { readonly kind: "config" | "summary"; readonly path: ReadonlyArray<string> }

export type Comparison = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "has"
export type Scalar = number | string | boolean

/** One `field op value` of a filter. */
export interface Clause {
  readonly field: RunField
  readonly op: Comparison
  readonly value: Scalar
}

/** A filter: every clause must hold. */
export type RunFilter = ReadonlyArray<Clause>

/** A sort: by a field, ascending unless `descending`. */
export interface RunSort {
  readonly field: RunField
  readonly descending: boolean
}

/**
 * A run's place in a sort: whether it has the value (runs without one come last), the value, and
 * its id (unique in a project, so the order is total). A cursor is the last listed run's key.
 */
export type SortKey = readonly [has: boolean, value: Scalar | null, runId: string]

/** A sort as a cursor names it. */
const sortName = (sort: RunSort): string => `${sort.descending ? "-" : ""}${JSON.stringify(sort.field)}`

/** The cursor of the page after the run with `key` in `sort`'s order. */
export const encodeCursor = (key: SortKey, sort: RunSort): string => Buffer.from(JSON.stringify([...key, sortName(sort)])).toString("base64url")

/** A cursor's key and the name of its sort, or why it is not one a listing gave. */
const decodeCursor = (cursor: string): Either.Either<{ readonly key: SortKey; readonly sort: string }, string> => {
  const refused = Either.left("the cursor is not one a runs listing gave (pass its `next` as it is)")
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
    const valid = Array.isArray(key) && key.length === 4 && typeof key[0] === "boolean" && typeof key[2] === "string" && typeof key[3] === "string" &&
      (key[1] === null || typeof key[1] === "string" || typeof key[1] === "boolean" || (typeof key[1] === "number" && Number.isFinite(key[1])))
    return valid ? Either.right({ key: [key[0], key[1], key[2]] as SortKey, sort: key[3] as string }) : refused
  } catch {
    return refused
  }
}

/** A listing's query, parsed: the runs `filter` keeps, in `sort`'s order, at most `limit` of them, after `after` (a cursor's key). */
export interface RunQuery {
  readonly filter: RunFilter
  readonly sort: RunSort
  readonly limit: number
  readonly after?: SortKey
}

/** Newest first. */
export const DEFAULT_SORT: RunSort = { field: { kind: "startedAt" }, descending: true }

/** Runs one listing answers unless its `limit` says, and at most. */
export const DEFAULT_RUNS_LIMIT = 1_000
export const MAX_RUNS_LIMIT = 10_000

const OWN_FIELDS = new Set(["state", "name", "group", "jobType", "host", "tags", "runId", "startedAt", "updatedAt", "text"])
const OPS: ReadonlyArray<Comparison> = ["<=", ">=", "!=", "=", "<", ">", "~", "has"]
const STATES = new Set(["running", "finished", "crashed"])

/** A cursor over the text being parsed; every failure names the position and what was expected there. */
class Reader {
  at = 0
  constructor(readonly text: string) {}
  skipSpace() {
    while (this.at < this.text.length && /\s/.test(this.text[this.at]!)) this.at++
  }
  done() {
    this.skipSpace()
    return this.at >= this.text.length
  }
  fail(expected: string): never {
    throw new QuerySyntax(`${expected} at character ${this.at + 1} of "${this.text}"`)
  }
  /** A quoted string, JSON's escapes allowed. */
  quoted(): string {
    const start = this.at
    this.at++
    while (this.at < this.text.length && this.text[this.at] !== '"') this.at += this.text[this.at] === "\\" ? 2 : 1
    if (this.at >= this.text.length) {
      this.at = start
      this.fail("a closing quote for the string starting")
    }
    this.at++
    try {
      return JSON.parse(this.text.slice(start, this.at)) as string
    } catch {
      this.at = start
      return this.fail("a valid quoted string")
    }
  }
  /** A bare word: letters, digits and _ - / + . : */
  word(what: string, withDots = true): string {
    const match = (withDots ? /^[A-Za-z0-9_\-/+.:]+/ : /^[A-Za-z0-9_\-/+:]+/).exec(this.text.slice(this.at))
    if (match === null) return this.fail(what)
    this.at += match[0].length
    return match[0]
  }
}

class QuerySyntax extends Error {}

const field = (reader: Reader): RunField => {
  reader.skipSpace()
  const head = reader.word("a field (state, name, tags, config.<key>, summary.<key>, …)", false)
  if (head !== "config" && head !== "summary") {
    if (!OWN_FIELDS.has(head)) reader.fail(`a field, not "${head}" (state, name, group, jobType, host, tags, runId, startedAt, updatedAt, text, config.<key>, summary.<key>)`)
    return { kind: head as "state" }
  }
  const path: Array<string> = []
  for (;;) {
    if (reader.text[reader.at] === ".") {
      reader.at++
      path.push(reader.word(`a key after "${head}."`, false))
    } else if (reader.text[reader.at] === "[") {
      reader.at++
      if (reader.text[reader.at] !== '"') reader.fail(`a quoted key after "${head}["`)
      path.push(reader.quoted())
      if (reader.text[reader.at] !== "]") reader.fail(`"]" after the key`)
      reader.at++
    } else break
  }
  if (path.length === 0) reader.fail(`a key after "${head}" (${head}.lr, ${head}["val/acc"])`)
  return { kind: head, path }
}

const comparison = (reader: Reader): Comparison => {
  reader.skipSpace()
  for (const op of OPS) {
    if (reader.text.startsWith(op, reader.at) && (op !== "has" || /\s/.test(reader.text[reader.at + 3] ?? ""))) {
      reader.at += op.length
      return op
    }
  }
  return reader.fail("an operator (= != < <= > >= ~ has)")
}

const scalar = (reader: Reader): Scalar => {
  reader.skipSpace()
  if (reader.text[reader.at] === '"') return reader.quoted()
  const word = reader.word("a value (a number, \"a string\", a word, true, false, null)")
  if (word === "true") return true
  if (word === "false") return false
  if (word === "null") return reader.fail("a value, not null: a run without one matches no clause (see the module comment)")
  const number = Number(word)
  return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(word) && Number.isFinite(number) ? number : word
}

/** Why a clause cannot hold whatever the run, or undefined when it can. */
const nonsense = (clause: Clause): string | undefined => {
  const { kind } = clause.field
  if ((kind === "tags") !== (clause.op === "has")) return kind === "tags" ? `tags takes "has" (tags has mlp)` : `"has" is for tags only`
  if (kind === "text" && clause.op !== "~") return `text takes "~" (text ~ resnet)`
  if (clause.op === "~" && typeof clause.value !== "string") return `"~" takes a string`
  if (kind === "state" && !(clause.op === "=" || clause.op === "!=") ) return `state takes = or != (state = finished)`
  if (kind === "state" && !STATES.has(String(clause.value))) return `a state is running, finished or crashed, not ${JSON.stringify(clause.value)}`
  if (["<", "<=", ">", ">="].includes(clause.op) && typeof clause.value === "boolean") return `${clause.op} takes a number or a string`
  return undefined
}

/** Parses a filter text; an empty one is no filter. */
export const parseFilter = (text: string): Either.Either<RunFilter, string> => {
  const reader = new Reader(text)
  const clauses: Array<Clause> = []
  try {
    while (!reader.done()) {
      if (clauses.length > 0) {
        const and = /^and\b/i.exec(reader.text.slice(reader.at))
        if (and === null) reader.fail(`"and" between clauses`)
        reader.at += 3
      }
      const start = reader.at
      const clause = { field: field(reader), op: comparison(reader), value: scalar(reader) }
      const why = nonsense(clause)
      if (why !== undefined) {
        reader.at = start
        reader.fail(`a clause that can hold (${why})`)
      }
      clauses.push(clause)
    }
    return Either.right(clauses)
  } catch (error) {
    if (error instanceof QuerySyntax) return Either.left(error.message)
    throw error
  }
}

/** Parses a sort text: a field, `-` in front for descending. */
export const parseSort = (text: string): Either.Either<RunSort, string> => {
  const trimmed = text.trim()
  const descending = trimmed.startsWith("-")
  const reader = new Reader(descending ? trimmed.slice(1) : trimmed)
  try {
    const sortField = field(reader)
    if (!reader.done()) reader.fail("the end of the sort (one field)")
    if (sortField.kind === "tags" || sortField.kind === "text") reader.fail(`a field to sort by, not ${sortField.kind}`)
    return Either.right({ field: sortField, descending })
  } catch (error) {
    if (error instanceof QuerySyntax) return Either.left(error.message)
    throw error
  }
}

/** A filter text that parses: checked as the query is decoded, so a bad one is a 400 naming what is wrong. */
export const FilterText = Schema.String.pipe(
  Schema.filter((text) => Either.match(parseFilter(text), { onLeft: (why) => `a filter that parses: ${why}`, onRight: () => true }))
)

/** A sort text that parses. */
export const SortText = Schema.String.pipe(
  Schema.filter((text) => Either.match(parseSort(text), { onLeft: (why) => `a sort that parses: ${why}`, onRight: () => true }))
)

/** A cursor a listing gave (its sort is checked against the query's with the rest: parseRunQuery). */
export const CursorText = Schema.String.pipe(
  Schema.filter((text) => Either.match(decodeCursor(text), { onLeft: (why) => why, onRight: () => true }))
)

/** A listing's query as texts (the URL's, the CLI's, `steplog/api`'s), parsed; or why one of them does not parse. */
export const parseRunQuery = (texts: {
  readonly filter?: string | undefined
  readonly sort?: string | undefined
  readonly limit?: number | undefined
  readonly cursor?: string | undefined
}): Either.Either<RunQuery, string> =>
  Either.gen(function* () {
    const filter = texts.filter === undefined ? [] : yield* parseFilter(texts.filter)
    const sort = texts.sort === undefined ? DEFAULT_SORT : yield* parseSort(texts.sort)
    const limit = texts.limit ?? DEFAULT_RUNS_LIMIT
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_RUNS_LIMIT) return yield* Either.left(`a limit is a whole number from 1 to ${MAX_RUNS_LIMIT}, not ${limit}`)
    if (texts.cursor === undefined) return { filter, sort, limit }
    const cursor = yield* decodeCursor(texts.cursor)
    if (cursor.sort !== sortName(sort)) return yield* Either.left("the cursor belongs to another sort: pass the sort it was given with")
    return { filter, sort, limit, after: cursor.key }
  })
