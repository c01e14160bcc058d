/**
 * The JSON the dashboard reads from `/api/v1`, as types. src/schemas/Wire.ts is the definition (the
 * server encodes with it); the browser cannot load Effect's Schema, so these mirror its encoded
 * side, and only the fields the pages read.
 */

/** A number JSON cannot carry, as the API writes it in history (Wire.ts's JsonValues). */
export interface NonFiniteNumber {
  readonly number: "NaN" | "Infinity" | "-Infinity" | "-0"
}

/** A number in history as JSON carries it. */
export type JsonNumber = number | NonFiniteNumber

/** A logged value as JSON carries it. */
export type Value = JsonNumber | string | boolean | null

/** Any JSON value: a config or summary entry. */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

export type RunState = "running" | "finished" | "crashed"

/** `GET /api/v1/projects/:project/runs/:runId`, and each entry of the runs listing. */
export interface RunDetail {
  readonly runId: string
  readonly project: string
  readonly name: string
  readonly state: RunState
  readonly exitCode: number | null
  readonly config: { readonly [key: string]: Json }
  readonly summary: { readonly [key: string]: Json }
  readonly tags: ReadonlyArray<string>
  readonly notes: string | null
  readonly group: string | null
  readonly jobType: string | null
  readonly host: string | null
  /** ms since the epoch. */
  readonly startedAt: number | null
  /** Time of the last record the server holds, in ms. */
  readonly updatedAt: number | null
  readonly records: number
  readonly historyRows: number
  /** The run's history keys, sorted. */
  readonly historyKeys: ReadonlyArray<string>
  /** Each history key's highest step. */
  readonly lastSteps: { readonly [key: string]: number }
}

export interface ProjectList {
  readonly projects: ReadonlyArray<{ readonly name: string; readonly runs: number; readonly updatedAt: number | null }>
}

export interface RunList {
  readonly runs: ReadonlyArray<RunDetail>
  /** The cursor of the next page: the project has more runs than this answer. */
  readonly next?: string | undefined
}

/** One step, or with `samples` one bucket of steps: its last row's values, and min / max per numeric key. */
export interface HistoryRow {
  readonly step: number
  readonly ts: number
  readonly values: { readonly [key: string]: Value }
  readonly min?: { readonly [key: string]: JsonNumber } | undefined
  readonly max?: { readonly [key: string]: JsonNumber } | undefined
}

/** Rows in step order; without `samples` a page of them, and `next`, the `minStep` of the next page (null: no more). */
export interface History {
  readonly rows: ReadonlyArray<HistoryRow>
  readonly next: number | null
}

/** One console output record. */
export interface OutputLine {
  readonly seq: number
  readonly ts: number
  readonly stream: "stdout" | "stderr"
  readonly text: string
}

/** `GET …/output`: console lines with seq > after, and the `after` to ask with next. */
export interface OutputLines {
  readonly lines: ReadonlyArray<OutputLine>
  readonly next: number
}

/** Every 4xx and 5xx answer. */
export interface ApiError {
  readonly error: string
  readonly detail: Json
}

/** `DELETE /api/v1/projects/:project/runs/:runId`: what was deleted. */
export interface DeletedRun {
  readonly project: string
  readonly runId: string
  readonly records: number
  readonly historyRows: number
}
