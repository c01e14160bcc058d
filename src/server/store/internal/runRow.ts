/**
 * A run's row in the `runs` table, and how it reads as a RunDetail. The row holds the run's
 * derived state (ack, counts, state, config, summary parts), updated in the very transaction that
 * ingests a batch, so that a read needs no scan of the records.
 */
import { Packr } from "msgpackr"
import type { JsonPatch, RunId, Value } from "../../../schemas/Record.js"
import type { ProjectName, RunDetail } from "../../../schemas/Wire.js"

/** A `runs` row as both backends give it back (PostgreSQL's BIGINTs read as numbers). */
export interface RunRow {
  readonly run_pk: number
  readonly project: string
  readonly run_id: string
  readonly name: string | null
  readonly tags: Uint8Array | null
  readonly notes: string | null
  readonly grp: string | null
  readonly job_type: string | null
  readonly host: string | null
  readonly started_at: number | null
  readonly created_at: number
  readonly updated_at: number | null
  readonly crashed: number
  readonly run_seq: number | null
  readonly exit_seq: number | null
  readonly exit_code: number | null
  readonly meta_config: Uint8Array | null
  readonly config: Uint8Array | null
  readonly summary: Uint8Array | null
  readonly last_values: string | null
  readonly ack_seq: number
  readonly records: number
  readonly history_rows: number
  /** Counts the writes to the run (ingests and putRuns): how a process tells its cached ingest state is stale. */
  readonly version: number
}

// One record a payload, self-contained: no msgpack record structures shared between payloads.
const packr = new Packr({ useRecords: false, moreTypes: false })
/** A value as a self-contained msgpack payload. */
export const pack = (value: unknown): Buffer => packr.pack(value)
/** A payload back; `fallback` for a NULL column. */
export const unpack = <A>(bytes: Uint8Array | null, fallback: A): A => (bytes === null ? fallback : (packr.unpack(bytes) as A))

/** A value as the (value, text) pair that `last_values` (JSON) keeps. */
export const toColumns = (value: Value): readonly [number | null, string | null] =>
  typeof value !== "number"
    ? [null, JSON.stringify(value)]
    : Number.isNaN(value)
    ? [null, "NaN"]
    : Object.is(value, -0)
    ? [0, "-0"] // JSON writes -0 as 0 (and NaN as null): the text keeps what it drops
    : [value, null]
const fromColumns = (value: number | null, text: string | null): Value =>
  text === null ? value : text === "NaN" ? NaN : text === "-0" ? -0 : (JSON.parse(text) as Value)

/**
 * key → [step, seq, value, text] of the latest row that logged it, the value as its column pair:
 * kept as JSON, -0 and NaN in the text (toColumns), ±Infinity written as strings (packLast).
 */
export type LastValues = { [key: string]: readonly [number, number, number | null, string | null] }
export const packLast = (last: LastValues): string =>
  JSON.stringify(last, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? `${v}` : v))
export const unpackLast = (text: string | null): LastValues => {
  if (text === null) return {}
  const last = JSON.parse(text) as { [key: string]: [number, number, number | string | null, string | null] }
  // A value column (the third) holds a string only for ±Infinity (packLast). Fixed up here rather
  // than by a JSON.parse reviver, a call per value, which made up most of a runs listing's cost.
  if (text.includes("Infinity\"")) for (const key in last) if (typeof last[key]![2] === "string") last[key]![2] = Number(last[key]![2])
  return last as LastValues
}

/** Moves `key`'s last value to (step, seq, value) when that row is later than the one it holds. */
export const advanceLast = (last: LastValues, key: string, step: number, seq: number, value: Value): void => {
  // Own only: `constructor`, `toString` and the like are keys too.
  const held = Object.hasOwn(last, key) ? last[key] : undefined
  if (held === undefined || held[0] < step || (held[0] === step && held[1] < seq)) last[key] = [step, seq, ...toColumns(value)]
}

/**
 * The run as shown. Its history keys are those of `last_values`: every ingest that adds a key to
 * metric_keys gives it a last value in the same transaction, so a read needs no second statement.
 */
export const toDetail = (row: RunRow): RunDetail => {
  const finished = row.exit_seq !== null && (row.run_seq === null || row.exit_seq > row.run_seq)
  const summary: { [key: string]: unknown } = {}
  const lastSteps: { [key: string]: number } = {}
  for (const [key, [step, , value, text]] of Object.entries(unpackLast(row.last_values))) {
    summary[key] = fromColumns(value, text)
    lastSteps[key] = step
  }
  Object.assign(summary, unpack<JsonPatch>(row.summary, {}))
  return {
    runId: row.run_id as RunId,
    project: row.project as ProjectName,
    name: row.name ?? row.run_id,
    state: finished ? "finished" : row.crashed === 1 ? "crashed" : "running",
    exitCode: finished ? row.exit_code : null,
    config: unpack<JsonPatch>(row.config, {}),
    summary: summary as JsonPatch,
    tags: unpack<ReadonlyArray<string>>(row.tags, []),
    notes: row.notes,
    group: row.grp,
    jobType: row.job_type,
    host: row.host,
    startedAt: row.started_at,
    updatedAt: row.updated_at,
    records: row.records,
    historyRows: row.history_rows,
    historyKeys: Object.keys(lastSteps).sort(),
    lastSteps
  }
}
