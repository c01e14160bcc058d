/**
 * Runs: creating a run's row, reading it (one run or a project's), putRun's metadata, and the
 * config and summary folded from a run's records. Shared by both backends (sql.ts).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { JsonPatch, Record, RunId } from "../../../schemas/Record.js"
import type { DeletedRun, ProjectList, ProjectName, RunList, RunMetadata } from "../../../schemas/Wire.js"
import { pack, type RunRow, toDetail, unpack } from "./runRow.js"
import type { RunQuery } from "../../../schemas/RunQuery.js"
import { RunGone } from "../RecordStore.js"
import { pageOf } from "./runQuery.js"
import type { Run, StoreSql } from "./sql.js"

/** The row of a run, if it exists. */
export const findRun = (run: Run, project: string, runId: string, lock = "") =>
  run(`SELECT * FROM runs WHERE project = ? AND run_id = ?${lock}`, [project, runId]).pipe(
    Effect.map((rows) => Option.fromNullable(rows[0] as RunRow | undefined))
  )

/** Whether the run was deleted (its id is refused for good). */
const isDeleted = (sql: StoreSql, project: string, runId: string) =>
  Effect.map(sql.write(`SELECT 1 FROM deleted_runs WHERE project = ? AND run_id = ?`, [project, runId]), (rows) => rows.length > 0)

/**
 * The row of a run, created first when new (unless it was deleted); locked to the end of the
 * transaction (StoreSql.lockRow). The deletion is looked for after the row is made and locked: on
 * PostgreSQL a delete committed by another process while this insert waited on its row is seen
 * then, and fails this transaction (the row made goes with it).
 */
export const ensureRun = (sql: StoreSql, project: string, runId: string) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    yield* sql.write(`INSERT INTO runs (project, run_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, [project, runId, now])
    const row = Option.getOrThrow(yield* findRun(sql.write, project, runId, sql.lockRow))
    if (yield* isDeleted(sql, project, runId)) return yield* new RunGone({ project, runId })
    return row
  })

/** A run as shown, if it exists. */
export const getDetail = (run: Run, project: string, runId: string) =>
  Effect.map(findRun(run, project, runId), Option.map((row) => toDetail(row)))

/** A page of a project's runs, as `query` asks (runQuery.ts). */
export const listRuns = (run: Run, project: string, query: RunQuery) =>
  Effect.gen(function* () {
    const rows = (yield* run(`SELECT * FROM runs WHERE project = ?`, [project])) as ReadonlyArray<RunRow>
    const { page, next } = pageOf(rows.map((row) => toDetail(row)), query)
    return (next === undefined ? { runs: page } : { runs: page, next }) satisfies RunList
  })

/** Every project with its run count and latest update. */
export const listProjects = (run: Run) =>
  run(`SELECT project AS name, CAST(COUNT(*) AS INTEGER) AS runs, MAX(updated_at) AS "updatedAt" FROM runs GROUP BY project ORDER BY project`).pipe(
    Effect.map((rows) => ({ projects: rows as ProjectList["projects"] }))
  )

/** Config: putRun's config, then the run records' and config patches' in seq order. */
export const recomputeConfig = (run: Run, runPk: number, metaConfig: Uint8Array | null) =>
  Effect.gen(function* () {
    const rows = yield* run(`SELECT kind, payload FROM records WHERE run_pk = ? AND kind IN ('run', 'config') ORDER BY seq`, [runPk])
    const config: { [key: string]: unknown } = { ...unpack<JsonPatch>(metaConfig, {}) }
    for (const row of rows) {
      const record = unpack<Record>(row.payload, null as never)
      Object.assign(config, record.kind === "run" ? record.config : record.kind === "config" ? record.patch : {})
    }
    return pack(config)
  })

/** Summary: the run's summary patches in seq order. */
export const recomputeSummary = (run: Run, runPk: number) =>
  Effect.gen(function* () {
    const patch: { [key: string]: unknown } = {}
    for (const row of yield* run(`SELECT payload FROM records WHERE run_pk = ? AND kind = 'summary' ORDER BY seq`, [runPk])) {
      Object.assign(patch, unpack<{ patch: JsonPatch }>(row.payload, { patch: {} }).patch)
    }
    return pack(patch)
  })

/** putRun, inside a write transaction: the run's metadata replaced, its config folded again. */
export const putRun = (sql: StoreSql, project: ProjectName, runId: RunId, metadata: RunMetadata) =>
  Effect.gen(function* () {
    const row = yield* ensureRun(sql, project, runId)
    const metaConfig = pack(metadata.config)
    const config = yield* recomputeConfig(sql.write, row.run_pk, metaConfig)
    yield* sql.write(
      `UPDATE runs SET name = ?, meta_config = ?, config = ?, tags = ?, notes = ?, grp = ?, job_type = ?,
         host = ?, started_at = ?, crashed = ?, version = version + 1 WHERE run_pk = ?`,
      [
        metadata.name,
        metaConfig,
        config,
        pack(metadata.tags),
        metadata.notes,
        metadata.group,
        metadata.jobType,
        metadata.host,
        metadata.startedAt,
        metadata.crashed === true ? 1 : 0,
        row.run_pk
      ]
    )
    return Option.getOrThrow(yield* getDetail(sql.write, project, runId))
  })

/** Every table holding a run's data by its run_pk (the `runs` row aside). */
export const RUN_TABLES = ["records", "held", "metric_keys", "history_chunks", "history_frames"] as const

/** deleteRun, inside a write transaction: the run's rows gone, its id kept in deleted_runs. */
export const deleteRun = (sql: StoreSql, project: ProjectName, runId: RunId) =>
  Effect.gen(function* () {
    const found = yield* findRun(sql.write, project, runId, sql.lockRow)
    if (Option.isNone(found)) return (yield* isDeleted(sql, project, runId)) ? yield* new RunGone({ project, runId }) : Option.none<DeletedRun>()
    const row = found.value
    for (const table of RUN_TABLES) yield* sql.write(`DELETE FROM ${table} WHERE run_pk = ?`, [row.run_pk])
    yield* sql.write(`DELETE FROM runs WHERE run_pk = ?`, [row.run_pk])
    yield* sql.write(`INSERT INTO deleted_runs (project, run_id, deleted_at) VALUES (?, ?, ?)`, [project, runId, yield* Clock.currentTimeMillis])
    return Option.some<DeletedRun>({ project, runId, records: row.records, historyRows: row.history_rows })
  })
