/**
 * The records a run is made of. One tagged union (on `kind`) is the only definition of a record's
 * shape: the journal, the wire and the server all decode with these schemas. An upload batch may
 * hold one more kind, `historyBlock`: many history rows as columns, standing for the rows it holds
 * (`UploadRecord`, at the end).
 */
import * as Schema from "effect/Schema"
import { RUN_ID_PATTERN } from "./Plain.js"

/** A run's id: letters, digits, `-` and `_`, at most 64 characters; chosen by the user or generated. */
export const RunId = Schema.String.pipe(
  Schema.pattern(RUN_ID_PATTERN, {
    message: () => "a run id of 1 to 64 letters, digits, '-' or '_'"
  }),
  Schema.brand("RunId")
)
export type RunId = typeof RunId.Type

/** A logged value: a number (NaN and ±Infinity included), a string, a boolean or null. */
export const Value = Schema.Union(Schema.Number, Schema.String, Schema.Boolean, Schema.Null)
export type Value = typeof Value.Type

/** A flat row of logged values; nested objects were flattened to `a/b` keys before this point. */
export const Values = Schema.Record({ key: Schema.String, value: Value })
export type Values = typeof Values.Type

/** Any JSON value: what config and summary entries may hold. */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
export const Json: Schema.Schema<Json> = Schema.Union(
  Schema.Null,
  Schema.Boolean,
  Schema.Number,
  Schema.String,
  Schema.Array(Schema.suspend(() => Json)),
  Schema.Record({ key: Schema.String, value: Schema.suspend(() => Json) })
)

/** A patch of string keys to JSON values (config and summary updates). */
export const JsonPatch = Schema.Record({ key: Schema.String, value: Json })
export type JsonPatch = typeof JsonPatch.Type

/** Per-run counter, assigned at `log()` time: 0, 1, 2, … one per record of any kind. */
const seq = Schema.NonNegativeInt
/** Wall-clock time in milliseconds since the epoch, read through Effect's `Clock`. */
const ts = Schema.Number

/** The first record of a run: who, where and what. */
export const RunRecord = Schema.Struct({
  kind: Schema.Literal("run"),
  seq,
  ts,
  runId: RunId,
  project: Schema.String,
  name: Schema.String,
  config: JsonPatch,
  tags: Schema.Array(Schema.String),
  notes: Schema.NullOr(Schema.String),
  group: Schema.NullOr(Schema.String),
  jobType: Schema.NullOr(Schema.String),
  host: Schema.String,
  pid: Schema.Int,
  argv: Schema.Array(Schema.String),
  gitCommit: Schema.NullOr(Schema.String),
  sdkVersion: Schema.String,
  /** Set when this record opens a resumed run rather than a new one. */
  resumed: Schema.Boolean
})
export type RunRecord = typeof RunRecord.Type

/** One row of metrics at a step. */
export const HistoryRecord = Schema.Struct({
  kind: Schema.Literal("history"),
  seq,
  ts,
  step: Schema.NonNegativeInt,
  values: Values
})
export type HistoryRecord = typeof HistoryRecord.Type

/** A patch of the run config. */
export const ConfigRecord = Schema.Struct({ kind: Schema.Literal("config"), seq, ts, patch: JsonPatch })
export type ConfigRecord = typeof ConfigRecord.Type

/** A patch of the run summary. */
export const SummaryRecord = Schema.Struct({ kind: Schema.Literal("summary"), seq, ts, patch: JsonPatch })
export type SummaryRecord = typeof SummaryRecord.Type

/** Console text the run printed. */
export const OutputRecord = Schema.Struct({
  kind: Schema.Literal("output"),
  seq,
  ts,
  stream: Schema.Literal("stdout", "stderr"),
  text: Schema.String
})
export type OutputRecord = typeof OutputRecord.Type

/** A sample of system metrics (CPU, memory, …), keyed by metric name. */
export const StatsRecord = Schema.Struct({
  kind: Schema.Literal("stats"),
  seq,
  ts,
  values: Schema.Record({ key: Schema.String, value: Schema.Number })
})
export type StatsRecord = typeof StatsRecord.Type

/** The last record of a run that ended: how and after how long. A run without one crashed. */
export const ExitRecord = Schema.Struct({
  kind: Schema.Literal("exit"),
  seq,
  ts,
  exitCode: Schema.Int,
  /** The signal that ended the process (`"SIGINT"`, …), or null. */
  signal: Schema.NullOr(Schema.String),
  durationMs: Schema.NonNegative
})
export type ExitRecord = typeof ExitRecord.Type

/** Any record of a run, tagged by `kind`. */
export const Record = Schema.Union(
  RunRecord,
  HistoryRecord,
  ConfigRecord,
  SummaryRecord,
  OutputRecord,
  StatsRecord,
  ExitRecord
)
export type Record = typeof Record.Type

/** The fields of a HistoryBlock, each checked on its own. */
const HistoryBlockFields = Schema.Struct({
  kind: Schema.Literal("historyBlock"),
  /** The first row's seq; the rows' seqs are consecutive. */
  seq,
  rows: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  keys: Schema.Array(Schema.String),
  steps: Schema.Uint8ArrayFromSelf,
  ts: Schema.Uint8ArrayFromSelf,
  columns: Schema.Array(Schema.Uint8ArrayFromSelf)
})

/** What is wrong with a block whose fields each have the right type, or undefined. */
const blockProblem = (block: typeof HistoryBlockFields.Type): string | undefined => {
  const { rows, keys, columns } = block
  if (!Number.isSafeInteger(block.seq + rows)) return `seq ${block.seq} + ${rows} rows is past the largest safe integer`
  if (keys.length !== columns.length) return `${keys.length} keys but ${columns.length} columns`
  if (new Set(keys).size !== keys.length) return `a key appears twice in ${JSON.stringify(keys)}`
  const bytes = rows * 8
  const wrong = (name: string, column: Uint8Array) =>
    column.byteLength === bytes ? undefined : `${name} holds ${column.byteLength} bytes, not ${rows} rows × 8`
  let problem = wrong("steps", block.steps) ?? wrong("ts", block.ts)
  for (let k = 0; problem === undefined && k < keys.length; k++) problem = wrong(`column ${k} (${JSON.stringify(keys[k])})`, columns[k]!)
  if (problem !== undefined) return problem
  const steps = new DataView(block.steps.buffer, block.steps.byteOffset, bytes)
  for (let i = 0; i < rows; i++) {
    const step = steps.getFloat64(i * 8, true)
    if (!(Number.isSafeInteger(step) && step >= 0)) return `step ${step} of row ${i} is not a whole number ≥ 0`
  }
  return undefined
}

/**
 * Consecutive history rows whose values are all numbers under the same keys, as columns: one
 * record of an upload batch standing for `rows` history records. Row i has seq `seq + i`, step
 * `steps[i]`, ts `ts[i]` and, for each `keys[k]`, the value `columns[k][i]`; every column is
 * `rows` little-endian float64s (a msgpack bin). The uploader sends the journal's column blocks
 * (journal/internal/historyBlock.ts) as they are, the server checks a block once, not row by row,
 * and stores its columns without making a row of them: what took the upload of a million rows
 * from ~50,000 to ~150,000 rows/s with the pipelined Uploader (bench/sync.ts). Rows with other
 * values travel as `history` records.
 */
export const HistoryBlock = HistoryBlockFields.pipe(Schema.filter(blockProblem, { identifier: "HistoryBlock" }))
export type HistoryBlock = typeof HistoryBlock.Type

/**
 * A record of an upload batch (`POST …/records`, a msgpack array of them): any record, or a block
 * of history rows standing for those rows (seqs, counts and ackSeq count its rows one by one).
 */
export const UploadRecord = Schema.Union(...Record.members, HistoryBlock)
export type UploadRecord = typeof UploadRecord.Type

/** Every kind of upload record, listed once (the type checker holds the list to the union). */
const kinds: { readonly [Kind in UploadRecord["kind"]]: true } = {
  run: true, history: true, config: true, summary: true, output: true, stats: true, exit: true, historyBlock: true
}
export type RecordKind = UploadRecord["kind"]
export const RECORD_KINDS = Object.keys(kinds) as ReadonlyArray<RecordKind>
