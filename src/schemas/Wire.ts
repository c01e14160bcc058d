/**
 * The upload protocol's shapes (DESIGN.md, "Upload protocol"): what the SDK sends and what the
 * server answers. The server decodes every request with these very schemas; Api.ts declares which
 * endpoint takes and answers which, and ApiErrors.ts the refusals.
 *
 * Every /api/v1 request carries `Authorization: Bearer <key>` or a dashboard session cookie,
 * which the dashboard's sign-in makes (server/Dashboard.ts):
 *
 *   POST /auth/session                                    SessionRequest (JSON or form) → cookie
 *   POST /auth/signout                                    → cookie cleared
 */
import * as Schema from "effect/Schema"
import * as Struct from "effect/Struct"
import { JsonPatch, OutputRecord, RunId, RunRecord, type Value } from "./Record.js"

/**
 * The longest project name: the most the server's router takes as one path segment (find-my-way's
 * `maxParamLength`, which server/ApiServer.ts sets from this), so that every name the schema
 * accepts is routed. A longer one misses the routes; the server then decodes the path with this
 * schema all the same, and answers 400 as for any other bad name.
 */
export const PROJECT_NAME_MAX_LENGTH = 100

/** A project name, and a URL path segment as it is: not only dots, which a URL reads as a path. */
export const ProjectName = Schema.String.pipe(
  Schema.pattern(new RegExp(`^[A-Za-z0-9_.-]{1,${PROJECT_NAME_MAX_LENGTH}}$`), {
    message: () => `a project name of 1 to ${PROJECT_NAME_MAX_LENGTH} letters, digits, '.', '-' or '_'`
  }),
  Schema.filter((name) => !/^\.+$/.test(name), { message: () => "a project name that is not only dots" }),
  Schema.brand("ProjectName")
)
export type ProjectName = typeof ProjectName.Type

/** How far the server holds a run: every record with seq < ackSeq, so the uploader resumes there. */
export const Ack = Schema.Struct({ ackSeq: Schema.NonNegativeInt })
export type Ack = typeof Ack.Type

/** What `DELETE …/runs/:runId` removed: the run's records, its history rows among them. */
export const DeletedRun = Schema.Struct({
  project: ProjectName,
  runId: RunId,
  records: Schema.NonNegativeInt,
  historyRows: Schema.NonNegativeInt
})
export type DeletedRun = typeof DeletedRun.Type

/** A run's state as the server sees it. */
export const RunState = Schema.Literal("running", "finished", "crashed")
export type RunState = typeof RunState.Type

/** The metadata of `PUT …/runs/:runId`: what the run record says about the run, without the data. */
export const RunMetadata = Schema.Struct({
  ...Struct.pick(RunRecord.fields, "name", "config", "tags", "notes", "group", "jobType", "host"),
  startedAt: Schema.Number,
  /** Set by the service process for a run whose training process died without an exit record. */
  crashed: Schema.optional(Schema.Boolean)
})
export type RunMetadata = typeof RunMetadata.Type

/** A run as listed and shown. */
export const RunDetail = Schema.Struct({
  runId: RunId,
  project: ProjectName,
  name: Schema.String,
  state: RunState,
  exitCode: Schema.NullOr(Schema.Int),
  config: JsonPatch,
  summary: JsonPatch,
  tags: Schema.Array(Schema.String),
  notes: Schema.NullOr(Schema.String),
  group: Schema.NullOr(Schema.String),
  jobType: Schema.NullOr(Schema.String),
  host: Schema.NullOr(Schema.String),
  startedAt: Schema.NullOr(Schema.Number),
  /** Time of the last record the server holds, in ms. */
  updatedAt: Schema.NullOr(Schema.Number),
  /** Records held (every seq below ackSeq) and history rows among them. */
  records: Schema.NonNegativeInt,
  historyRows: Schema.NonNegativeInt,
  /** The names of the run's history keys, sorted. */
  historyKeys: Schema.Array(Schema.String),
  /**
   * Each history key's highest step. A key can gain a value at a step before the run's newest
   * row (a validation row logged at a step already written), so a reader following a live run
   * learns here which keys to read again below where it follows.
   */
  lastSteps: Schema.Record({ key: Schema.String, value: Schema.NonNegativeInt })
})
export type RunDetail = typeof RunDetail.Type

/** `GET /api/v1/projects/:project/runs`: a page of runs, and the cursor of the next page when there is one. */
export const RunList = Schema.Struct({ runs: Schema.Array(RunDetail), next: Schema.optional(Schema.String) })
export type RunList = typeof RunList.Type

/** `GET /api/v1/projects`. */
export const ProjectList = Schema.Struct({
  projects: Schema.Array(Schema.Struct({ name: ProjectName, runs: Schema.NonNegativeInt, updatedAt: Schema.NullOr(Schema.Number) }))
})
export type ProjectList = typeof ProjectList.Type

/** The numbers JSON cannot carry, as their JSON stand-in names them. */
export const NON_FINITE = ["NaN", "Infinity", "-Infinity", "-0"] as const
export type NonFinite = (typeof NON_FINITE)[number]

const nonFiniteOf = (n: number): NonFinite | null =>
  Number.isNaN(n) ? "NaN" : n === Infinity ? "Infinity" : n === -Infinity ? "-Infinity" : Object.is(n, -0) ? "-0" : null

/** A number JSON cannot carry, as its JSON stand-in: `{ "number": "NaN" }` and so on. */
type NonFiniteStandIn = { readonly number: NonFinite }

const isStandIn = (u: unknown): u is NonFiniteStandIn =>
  typeof u === "object" && u !== null && NON_FINITE.includes((u as { number?: unknown }).number as NonFinite) && Object.keys(u).length === 1

/** A logged number as a JSON answer writes it: finite as itself, NaN, ±Infinity and -0 as their stand-in. */
const numberToJson = (n: number): number | NonFiniteStandIn => {
  const name = nonFiniteOf(n)
  return name === null ? n : { number: name }
}
const numberFromJson = (wire: number | NonFiniteStandIn): number =>
  typeof wire === "number" ? wire : wire.number === "-0" ? -0 : Number(wire.number)

type JsonNumberWire = number | NonFiniteStandIn
type JsonValueWire = JsonNumberWire | string | boolean | null
const isJsonNumberWire = (u: unknown): u is JsonNumberWire => typeof u === "number" || isStandIn(u)
const isJsonValueWire = (u: unknown): u is JsonValueWire =>
  u === null || typeof u === "string" || typeof u === "boolean" || isJsonNumberWire(u)
const isNumber = (u: unknown): u is number => typeof u === "number"
const isValue = (u: unknown): u is Value => u === null || typeof u === "string" || typeof u === "boolean" || typeof u === "number"

const mapOf = <A>(u: unknown, is: (value: unknown) => value is A): u is { readonly [key: string]: A } => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  for (const key in u) if (!is((u as { [key: string]: unknown })[key])) return false
  return true
}
/** Whether JSON carries every value of `map` as it is: no NaN, ±Infinity or -0 among them. */
const jsonCarries = <W>(map: { readonly [key: string]: unknown }): map is { readonly [key: string]: W } => {
  for (const key in map) {
    const value = map[key]
    if (typeof value === "number" && nonFiniteOf(value) !== null) return false
  }
  return true
}
const mapValues = <A, B>(map: { readonly [key: string]: A }, f: (value: A) => B): { readonly [key: string]: B } => {
  const out: { [key: string]: B } = {}
  for (const key in map) out[key] = f(map[key]!)
  return out
}

/**
 * A map of logged values (`Value`, Record.ts) in a JSON answer, each exactly: numbers as
 * themselves, NaN, ±Infinity and -0, which JSON cannot carry (JSON.stringify turns the first
 * three into null, which would read as a missing value, and -0 into 0), as `{ "number": "NaN" }`
 * and so on. History values are never objects otherwise, so the stand-in is never ambiguous; the
 * dashboard draws it as a gap with a marker. Checked and converted a map at a time: a schema step
 * per value made encoding a 1,000-bucket history of ten keys take ~15 ms, 4× its JSON.stringify.
 */
const jsonMap = <A extends Value, W extends JsonValueWire>(
  isWire: (u: unknown) => u is W,
  is: (u: unknown) => u is A,
  fromJson: (wire: W) => A,
  toJson: (value: A) => W,
  title: string
) =>
  Schema.transform(
    Schema.declare((u): u is { readonly [key: string]: W } => mapOf(u, isWire), { title: `${title} (JSON)` }),
    Schema.declare((u): u is { readonly [key: string]: A } => mapOf(u, is), { title }),
    {
      strict: true,
      decode: (wire) => mapValues(wire, fromJson),
      // Most maps hold no number JSON cannot carry: those go out as they are, not copied.
      encode: (map) => (jsonCarries<W>(map) ? map : mapValues(map, toJson))
    }
  )

/** Logged values by key, in a JSON answer. */
export const JsonValues = jsonMap<Value, JsonValueWire>(
  isJsonValueWire,
  isValue,
  (wire) => (isJsonNumberWire(wire) ? numberFromJson(wire) : wire),
  (value) => (typeof value === "number" ? numberToJson(value) : value),
  "values by key"
)

/** Numbers by key (a bucket's min or max), in a JSON answer. */
export const JsonNumbers = jsonMap<number, JsonNumberWire>(isJsonNumberWire, isNumber, numberFromJson, numberToJson, "numbers by key")

/**
 * One row of `GET …/history`. Without `samples` a row is one step. With `samples=N` the steps are
 * cut into at most N buckets and a row is one bucket: `step`, `ts` and `values` of its last row,
 * and `min` / `max` of each numeric key over the bucket, as a chart's band needs.
 */
export const HistoryRow = Schema.Struct({
  step: Schema.NonNegativeInt,
  ts: Schema.Number,
  values: JsonValues,
  min: Schema.optional(JsonNumbers),
  max: Schema.optional(JsonNumbers)
})
export type HistoryRow = typeof HistoryRow.Type

/**
 * `GET …/history`: rows in step order, and `next`: without `samples`, at most HISTORY_PAGE_ROWS
 * rows (Limits.ts) are answered, and `next` is the `minStep` that reads on after them; null when
 * the range has no more rows (always null with `samples`, which covers the whole range).
 */
export const History = Schema.Struct({ rows: Schema.Array(HistoryRow), next: Schema.NullOr(Schema.NonNegativeInt) })
export type History = typeof History.Type

/**
 * Whether JSON carries `history` as it is: no value, min or max needs a stand-in (NaN, ±Infinity,
 * -0). Its encoding is then the history itself, and a server may answer it without the schema's
 * walk of every row, which cost a 1,000-bucket answer of ten keys as much as its JSON.stringify.
 */
export const historyCarries = (history: History): boolean => history.rows.every(rowCarries)

/** Whether JSON carries `row` as it is (historyCarries, of one row). */
export const rowCarries = (row: HistoryRow): boolean =>
  jsonCarries(row.values) && (row.min === undefined || jsonCarries(row.min)) && (row.max === undefined || jsonCarries(row.max))

/**
 * `GET …/output`: a run's console lines in seq order, and `next`, the `?after=` that continues
 * after them (the last line's seq; the `after` asked for, -1 from the start, when there is none).
 */
export const OutputLines = Schema.Struct({
  lines: Schema.Array(Schema.Struct(Struct.pick(OutputRecord.fields, "seq", "ts", "stream", "text"))),
  next: Schema.Int.pipe(Schema.greaterThanOrEqualTo(-1))
})
export type OutputLines = typeof OutputLines.Type

/** `POST /auth/session`: the API key to sign the dashboard in with. */
export const SessionRequest = Schema.Struct({ key: Schema.String })
export type SessionRequest = typeof SessionRequest.Type

/** What a server says of itself: its steplog version, its upload protocol (Version.ts), the record kinds it stores and its routes. */
export const ServerFacts = Schema.Struct({
  version: Schema.String,
  protocol: Schema.Int,
  kinds: Schema.Array(Schema.String),
  /** `METHOD /path` of each endpoint, as declared (Api.ts). */
  routes: Schema.Array(Schema.String)
})
export type ServerFacts = typeof ServerFacts.Type

/**
 * `GET /api/v1/whoami`: the key's name and the projects it may write (`*`: all), and the server's
 * facts (absent from a server of protocol 1).
 */
export const WhoAmI = Schema.Struct({
  name: Schema.String,
  projects: Schema.Union(Schema.Literal("*"), Schema.Array(ProjectName)),
  server: Schema.optional(ServerFacts)
})
export type WhoAmI = typeof WhoAmI.Type
