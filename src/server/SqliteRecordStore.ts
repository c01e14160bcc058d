/**
 * The SQLite backend of the RecordStore (the server's embedded default): @effect/sql over
 * better-sqlite3, WAL, one connection (the client serialises every statement behind a semaphore).
 *
 * Tables (created at start, `schema` below is the only place they are defined):
 *   runs          one row a run: its derived state (ack, counts, state, config, summary parts),
 *                 updated in the very transaction that ingests a batch, so a read needs no scan
 *   records       (run_pk, seq) → kind, msgpack payload: what makes a re-sent record a no-op, and
 *                 what an export reads back
 *   metric_keys   a run's history keys, interned to small integers
 *   metrics       (run_pk, key_id, step) → seq, ts, value, text: one metric of a run lies
 *                 contiguously on disk in step order (WITHOUT ROWID clusters by the primary key)
 *   metric_blocks (run_pk, key_id, block) → min, max, last step of each BLOCK steps, recomputed
 *                 for the blocks a batch touches. A `samples` read of a long run aggregates these
 *                 instead of every row: scanning a million metric rows costs ~90 ms, a million-step
 *                 run has 15,625 blocks (bench/history-read.ts).
 *
 * Values come back exactly: a number other than NaN is stored as an 8-byte REAL in a column
 * without affinity (so -0 and integral doubles are not turned into integers); NaN (which SQLite
 * would store as NULL), strings, booleans and null are stored as JSON-ish text in `text`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Packr } from "msgpackr"
import type { HistoryRecord, JsonPatch, Record, RunId, RunRecord, Value } from "../schemas/Record.js"
import type { HistoryRow, ProjectName, RunDetail, RunMetadata } from "../schemas/Wire.js"
import { type HistoryQuery, RecordStore, StoreFailed } from "./RecordStore.js"

/** Steps per metric block; `samples` reads of runs longer than BLOCK × samples steps use blocks. */
const BLOCK = 64

const schema = [
  `CREATE TABLE IF NOT EXISTS runs (
    run_pk INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    run_id TEXT NOT NULL,
    name TEXT,
    tags BLOB,
    notes TEXT,
    grp TEXT,
    job_type TEXT,
    host TEXT,
    started_at ANY,
    created_at ANY NOT NULL,
    updated_at ANY,
    crashed INTEGER NOT NULL DEFAULT 0,
    run_seq INTEGER,
    exit_seq INTEGER,
    exit_code INTEGER,
    meta_config BLOB,
    config BLOB,
    summary BLOB,
    last_values TEXT,
    ack_seq INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    history_rows INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project, run_id)
  )`,
  `CREATE TABLE IF NOT EXISTS records (
    run_pk INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (run_pk, seq)
  ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS metric_keys (
    run_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (run_pk, key_id), UNIQUE (run_pk, name)
  ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS metrics (
    run_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, step INTEGER NOT NULL,
    seq INTEGER NOT NULL, ts ANY NOT NULL, value ANY, text TEXT,
    PRIMARY KEY (run_pk, key_id, step)
  ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS metric_blocks (
    run_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, block INTEGER NOT NULL,
    min ANY, max ANY, last_step INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key_id, block)
  ) WITHOUT ROWID`
]

// One record a payload, self-contained: no msgpack record structures shared between payloads.
const packr = new Packr({ useRecords: false, moreTypes: false })
const pack = (value: unknown): Buffer => packr.pack(value)
const unpack = <A>(bytes: Uint8Array | null, fallback: A): A => (bytes === null ? fallback : (packr.unpack(bytes) as A))

/** A value as the (value, text) column pair. */
const toColumns = (value: Value): readonly [number | null, string | null] =>
  typeof value !== "number"
    ? [null, JSON.stringify(value)]
    : Number.isNaN(value)
    ? [null, "NaN"]
    : Object.is(value, -0)
    ? [0, "-0"] // SQLite keeps -0.0 as the integer 0; MIN and MAX still see a 0
    : [value, null]
const fromColumns = (value: number | null, text: string | null): Value =>
  text === null ? value : text === "NaN" ? NaN : text === "-0" ? -0 : (JSON.parse(text) as Value)

/**
 * Multi-row statements: one prepared statement inserts up to CHUNK rows, and a remainder goes in
 * power-of-two chunks, so at most eight distinct statement texts per table reach the prepare cache.
 */
const CHUNK = 128
const chunkSizes = (n: number): Array<number> => {
  const sizes: Array<number> = []
  let left = n
  while (left >= CHUNK) (sizes.push(CHUNK), (left -= CHUNK))
  for (let size = CHUNK / 2; size >= 1; size /= 2) if (left >= size) (sizes.push(size), (left -= size))
  return sizes
}

interface RunRow {
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
}

/**
 * key → [step, seq, value, text] of the latest row that logged it, the value as its column pair:
 * kept as JSON, which (unlike msgpackr) gives back -0, and NaN and ±Infinity go as text.
 */
type LastValues = { [key: string]: readonly [number, number, number | null, string | null] }
const packLast = (last: LastValues): string =>
  JSON.stringify(last, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? `${v}` : v))
const unpackLast = (text: string | null): LastValues =>
  text === null ? {} : JSON.parse(text, (_, v) => (v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v))

const toDetail = (row: RunRow): RunDetail => {
  const finished = row.exit_seq !== null && (row.run_seq === null || row.exit_seq > row.run_seq)
  const summary: { [key: string]: unknown } = {}
  for (const [key, [, , value, text]] of Object.entries(unpackLast(row.last_values))) summary[key] = fromColumns(value, text)
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
    historyRows: row.history_rows
  }
}

/** The store over whatever SQLite database the SqlClient holds; creates its tables first. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const failed = (operation: string) => (cause: SqlError | StoreFailed) =>
    cause._tag === "StoreFailed" ? cause : new StoreFailed({ operation, cause })
  const run = (text: string, params: ReadonlyArray<unknown> = []) => sql.unsafe<any>(text, params)

  yield* Effect.forEach(schema, (statement) => run(statement), { discard: true }).pipe(
    Effect.mapError(failed("schema"))
  )

  const findRun = (project: string, runId: string) =>
    run(`SELECT * FROM runs WHERE project = ? AND run_id = ?`, [project, runId]).pipe(
      Effect.map((rows) => Option.fromNullable(rows[0] as RunRow | undefined))
    )

  const ensureRun = (project: string, runId: string) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      yield* run(`INSERT INTO runs (project, run_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, [
        project,
        runId,
        now
      ])
      return Option.getOrThrow(yield* findRun(project, runId))
    })

  const insertRows = (table: string, width: number, rows: ReadonlyArray<ReadonlyArray<unknown>>, suffix = "") =>
    Effect.gen(function* () {
      let at = 0
      for (const size of chunkSizes(rows.length)) {
        const params: Array<unknown> = []
        for (let i = at; i < at + size; i++) params.push(...rows[i]!)
        at += size
        const one = `(${Array(width).fill("?").join(",")})`
        yield* run(`INSERT INTO ${table} VALUES ${Array(size).fill(one).join(",")} ${suffix}`, params)
      }
    })

  /** Config: putRun's config, then the run records' and config patches' in seq order. */
  const recomputeConfig = (runPk: number, metaConfig: Uint8Array | null) =>
    Effect.gen(function* () {
      const rows = yield* run(
        `SELECT kind, payload FROM records WHERE run_pk = ? AND kind IN ('run', 'config') ORDER BY seq`,
        [runPk]
      )
      const config: { [key: string]: unknown } = { ...unpack<JsonPatch>(metaConfig, {}) }
      for (const row of rows) {
        const record = unpack<Record>(row.payload, null as never)
        Object.assign(config, record.kind === "run" ? record.config : record.kind === "config" ? record.patch : {})
      }
      return pack(config)
    })

  const ingest = (project: ProjectName, runId: RunId, batch: ReadonlyArray<Record>) =>
    Effect.gen(function* () {
      const runRow = yield* ensureRun(project, runId)
      const runPk = runRow.run_pk
      if (batch.length === 0) return { ackSeq: runRow.ack_seq }

      // Exactly once: drop what is held already and repeats within the batch (first one wins).
      let lo = Infinity
      let hi = -Infinity
      for (const record of batch) (lo = Math.min(lo, record.seq), (hi = Math.max(hi, record.seq)))
      const held = new Set<number>(
        (yield* run(`SELECT seq FROM records WHERE run_pk = ? AND seq BETWEEN ? AND ?`, [runPk, lo, hi])).map(
          (row) => row.seq as number
        )
      )
      const fresh: Array<Record> = []
      for (const record of batch) if (!held.has(record.seq)) (held.add(record.seq), fresh.push(record))
      if (fresh.length === 0) return { ackSeq: runRow.ack_seq }

      yield* insertRows(
        "records",
        4,
        fresh.map((record) => [runPk, record.seq, record.kind, pack(record)])
      )

      let updatedAt = runRow.updated_at ?? -Infinity
      let runRecord: RunRecord | undefined
      let exitSeq = runRow.exit_seq
      let exitCode = runRow.exit_code
      let configChanged = false
      let summaryChanged = false
      const history: Array<HistoryRecord> = []
      for (const record of fresh) {
        updatedAt = Math.max(updatedAt, record.ts)
        switch (record.kind) {
          case "history":
            history.push(record)
            break
          case "run":
            if (record.runId !== runId || record.project !== project) {
              return yield* new StoreFailed({
                operation: "ingest",
                cause: `run record ${record.seq} names ${record.project}/${record.runId}, not ${project}/${runId}`
              })
            }
            configChanged = true
            if ((runRow.run_seq ?? -1) < record.seq && (runRecord === undefined || runRecord.seq < record.seq)) {
              runRecord = record
            }
            break
          case "config":
            configChanged = true
            break
          case "summary":
            summaryChanged = true
            break
          case "exit":
            if (exitSeq === null || exitSeq < record.seq) (exitSeq = record.seq, (exitCode = record.exitCode))
            break
        }
      }

      const lastValues = unpackLast(runRow.last_values)
      if (history.length > 0) yield* ingestHistory(runPk, history, lastValues)

      const config = configChanged ? yield* recomputeConfig(runPk, runRow.meta_config) : runRow.config
      let summary = runRow.summary
      if (summaryChanged) {
        const patch: { [key: string]: unknown } = {}
        const rows = yield* run(`SELECT payload FROM records WHERE run_pk = ? AND kind = 'summary' ORDER BY seq`, [runPk])
        for (const row of rows) Object.assign(patch, unpack<{ patch: JsonPatch }>(row.payload, { patch: {} }).patch)
        summary = pack(patch)
      }

      // ackSeq: the end of the run of consecutive seqs that starts at the current ack.
      const island = yield* run(
        `SELECT MIN(r.seq) AS last FROM records r WHERE r.run_pk = ? AND r.seq >= ?
           AND NOT EXISTS (SELECT 1 FROM records n WHERE n.run_pk = r.run_pk AND n.seq = r.seq + 1)`,
        [runPk, runRow.ack_seq]
      )
      const hasAck = yield* run(`SELECT 1 FROM records WHERE run_pk = ? AND seq = ?`, [runPk, runRow.ack_seq])
      const ackSeq = hasAck.length > 0 ? (island[0].last as number) + 1 : runRow.ack_seq

      const r = runRecord
      yield* run(
        `UPDATE runs SET ack_seq = ?, records = records + ?, history_rows = history_rows + ?, updated_at = ?,
           exit_seq = ?, exit_code = ?, config = ?, summary = ?, last_values = ?,
           run_seq = COALESCE(?, run_seq), name = COALESCE(?, name), tags = COALESCE(?, tags),
           notes = CASE WHEN ? THEN ? ELSE notes END, grp = CASE WHEN ? THEN ? ELSE grp END,
           job_type = CASE WHEN ? THEN ? ELSE job_type END, host = COALESCE(?, host),
           started_at = CASE WHEN ? AND (started_at IS NULL OR NOT ?) THEN ? ELSE started_at END
         WHERE run_pk = ?`,
        [
          ackSeq,
          fresh.length,
          history.length,
          updatedAt,
          exitSeq,
          exitCode,
          config,
          summary,
          history.length > 0 ? packLast(lastValues) : runRow.last_values,
          r?.seq ?? null,
          r?.name ?? null,
          r === undefined ? null : pack(r.tags),
          r !== undefined ? 1 : 0,
          r?.notes ?? null,
          r !== undefined ? 1 : 0,
          r?.group ?? null,
          r !== undefined ? 1 : 0,
          r?.jobType ?? null,
          r?.host ?? null,
          r !== undefined ? 1 : 0,
          r?.resumed === true ? 1 : 0,
          r?.ts ?? null,
          runPk
        ]
      )
      return { ackSeq }
    })

  /** Stores history rows as metrics, recomputes the blocks they touch, and advances the last values. */
  const ingestHistory = (runPk: number, history: ReadonlyArray<HistoryRecord>, lastValues: LastValues) =>
    Effect.gen(function* () {
      const keyIds = new Map<string, number>()
      for (const row of yield* run(`SELECT key_id, name FROM metric_keys WHERE run_pk = ?`, [runPk])) {
        keyIds.set(row.name as string, row.key_id as number)
      }
      const newKeys: Array<ReadonlyArray<unknown>> = []
      const metricRows: Array<ReadonlyArray<unknown>> = []
      const blocks = new Set<number>()
      const touched = new Set<number>()
      for (const record of history) {
        blocks.add(Math.floor(record.step / BLOCK))
        for (const key in record.values) {
          const value = record.values[key]!
          let keyId = keyIds.get(key)
          if (keyId === undefined) {
            keyId = keyIds.size
            keyIds.set(key, keyId)
            newKeys.push([runPk, keyId, key])
          }
          touched.add(keyId)
          const [number, text] = toColumns(value)
          metricRows.push([runPk, keyId, record.step, record.seq, record.ts, number, text])
          const last = lastValues[key]
          if (last === undefined || last[0] < record.step || (last[0] === record.step && last[1] < record.seq)) {
            lastValues[key] = [record.step, record.seq, number, text]
          }
        }
      }
      if (newKeys.length > 0) yield* insertRows("metric_keys", 3, newKeys)
      // The same step logged twice: the row with the higher seq wins, whatever order they arrive in.
      yield* insertRows(
        "metrics",
        7,
        metricRows,
        `ON CONFLICT (run_pk, key_id, step) DO UPDATE SET seq = excluded.seq, ts = excluded.ts,
           value = excluded.value, text = excluded.text WHERE excluded.seq > metrics.seq`
      )
      // Recompute whole blocks (not merge into them): exact whatever was replaced or re-sent.
      const sorted = [...blocks].sort((a, b) => a - b)
      const ids = [...touched].join(",")
      for (let i = 0; i < sorted.length; ) {
        let j = i
        while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++
        yield* run(
          `INSERT OR REPLACE INTO metric_blocks
             SELECT run_pk, key_id, step / ${BLOCK}, MIN(value), MAX(value), MAX(step) FROM metrics
             WHERE run_pk = ? AND key_id IN (${ids}) AND step >= ? AND step < ?
             GROUP BY key_id, step / ${BLOCK}`,
          [runPk, sorted[i]! * BLOCK, (sorted[j]! + 1) * BLOCK]
        )
        i = j + 1
      }
    })

  const putRun = (project: ProjectName, runId: RunId, metadata: RunMetadata) =>
    Effect.gen(function* () {
      const row = yield* ensureRun(project, runId)
      const metaConfig = pack(metadata.config)
      const config = yield* recomputeConfig(row.run_pk, metaConfig)
      yield* run(
        `UPDATE runs SET name = ?, meta_config = ?, config = ?, tags = ?, notes = ?, grp = ?, job_type = ?,
           host = ?, started_at = ?, crashed = ? WHERE run_pk = ?`,
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
      return toDetail(Option.getOrThrow(yield* findRun(project, runId)))
    })

  const history = (project: ProjectName, runId: RunId, query: HistoryQuery) =>
    Effect.gen(function* () {
      const found = yield* findRun(project, runId)
      if (Option.isNone(found)) return Option.none()
      const runPk = found.value.run_pk
      const names = new Map<number, string>()
      for (const row of yield* run(`SELECT key_id, name FROM metric_keys WHERE run_pk = ?`, [runPk])) {
        if (query.keys === undefined || query.keys.includes(row.name)) names.set(row.key_id, row.name)
      }
      if (names.size === 0) return Option.some({ rows: [] })
      const ids = [...names.keys()].join(",")
      if (query.samples === undefined) {
        const rows: Array<HistoryRow> = []
        let current: { step: number; ts: number; values: { [key: string]: Value } } | undefined
        const metrics = yield* run(
          `SELECT key_id, step, ts, value, text FROM metrics WHERE run_pk = ? AND key_id IN (${ids})
             ORDER BY step, key_id`,
          [runPk]
        )
        for (const m of metrics) {
          if (current === undefined || current.step !== m.step) {
            current = { step: m.step, ts: m.ts, values: {} }
            rows.push(current)
          }
          current.values[names.get(m.key_id)!] = fromColumns(m.value, m.text)
        }
        return Option.some({ rows })
      }
      return Option.some({ rows: yield* sampled(runPk, ids, names, Math.max(1, Math.floor(query.samples))) })
    })

  /**
   * At most `samples` buckets of equal width over the steps: per bucket the last step's values of
   * each key, and min and max of each numeric key. When a bucket spans at least BLOCK steps its
   * width is a whole number of blocks, aligned to blocks, so it is read from metric_blocks.
   */
  const sampled = (runPk: number, ids: string, names: ReadonlyMap<number, string>, samples: number) =>
    Effect.gen(function* () {
      const [range] = yield* run(
        `SELECT MIN(lo) AS lo, MAX(hi) AS hi FROM (SELECT
           (SELECT MIN(step) FROM metrics m WHERE m.run_pk = k.run_pk AND m.key_id = k.key_id) AS lo,
           (SELECT MAX(step) FROM metrics m WHERE m.run_pk = k.run_pk AND m.key_id = k.key_id) AS hi
           FROM metric_keys k WHERE k.run_pk = ? AND k.key_id IN (${ids}))`,
        [runPk]
      )
      if (range.lo === null) return []
      const lo = range.lo as number
      const hi = range.hi as number
      let origin = lo
      let width = Math.ceil((hi - lo + 1) / samples)
      let aggregate: string
      if (width >= BLOCK) {
        origin = Math.floor(lo / BLOCK) * BLOCK
        width = Math.ceil(Math.ceil((hi - origin + 1) / samples) / BLOCK) * BLOCK
        aggregate = `SELECT run_pk, key_id, (block * ${BLOCK} - CAST(? AS INTEGER)) / CAST(? AS INTEGER) AS bucket,
            MIN(min) AS lo, MAX(max) AS hi, MAX(last_step) AS last
            FROM metric_blocks WHERE run_pk = ? AND key_id IN (${ids}) GROUP BY key_id, bucket`
      } else {
        aggregate = `SELECT run_pk, key_id, (step - CAST(? AS INTEGER)) / CAST(? AS INTEGER) AS bucket,
            MIN(value) AS lo, MAX(value) AS hi, MAX(step) AS last
            FROM metrics WHERE run_pk = ? AND key_id IN (${ids}) GROUP BY key_id, bucket`
      }
      // Parameters are bound as doubles: the CASTs keep the bucket arithmetic integral.
      const cells = yield* run(
        `WITH agg AS (${aggregate})
         SELECT agg.key_id, agg.bucket, agg.lo, agg.hi, agg.last, m.ts, m.value, m.text
           FROM agg JOIN metrics m ON m.run_pk = agg.run_pk AND m.key_id = agg.key_id AND m.step = agg.last
           ORDER BY agg.bucket`,
        [origin, width, runPk]
      )
      const rows: Array<HistoryRow> = []
      let current:
        | { bucket: number; step: number; ts: number; values: { [key: string]: Value }; min: { [key: string]: number }; max: { [key: string]: number } }
        | undefined
      for (const cell of cells) {
        if (current === undefined || current.bucket !== cell.bucket) {
          current = { bucket: cell.bucket, step: cell.last, ts: cell.ts, values: {}, min: {}, max: {} }
          rows.push(current)
        }
        if (cell.last > current.step) (current.step = cell.last, (current.ts = cell.ts))
        const name = names.get(cell.key_id)!
        current.values[name] = fromColumns(cell.value, cell.text)
        if (cell.lo !== null && typeof cell.lo === "number") (current.min[name] = cell.lo, (current.max[name] = cell.hi))
      }
      return rows.map(({ step, ts, values, min, max }) => ({ step, ts, values, min, max }))
    })

  return RecordStore.of({
    ingest: (project, runId, records) =>
      sql.withTransaction(ingest(project, runId, records)).pipe(Effect.mapError(failed("ingest"))),
    putRun: (project, runId, metadata) =>
      sql.withTransaction(putRun(project, runId, metadata)).pipe(Effect.mapError(failed("putRun"))),
    getRun: (project, runId) =>
      findRun(project, runId).pipe(Effect.map(Option.map(toDetail)), Effect.mapError(failed("getRun"))),
    listRuns: (project) =>
      run(`SELECT * FROM runs WHERE project = ? ORDER BY COALESCE(started_at, created_at) DESC, run_pk DESC`, [
        project
      ]).pipe(
        Effect.map((rows) => ({ runs: rows.map((row) => toDetail(row as RunRow)) })),
        Effect.mapError(failed("listRuns"))
      ),
    listProjects: run(
      `SELECT project AS name, COUNT(*) AS runs, MAX(updated_at) AS updatedAt FROM runs GROUP BY project ORDER BY project`
    ).pipe(
      Effect.map((rows) => ({ projects: rows as any })),
      Effect.mapError(failed("listProjects"))
    ),
    history: (project, runId, query) =>
      sql.withTransaction(history(project, runId, query)).pipe(Effect.mapError(failed("history")))
  })
})

/** The store over the SqlClient of the surrounding layer (so that other tables can share its file). */
export const layerSqlite: Layer.Layer<RecordStore, StoreFailed, SqlClient.SqlClient> = Layer.effect(RecordStore, make)

/** The store in a SQLite file (WAL), created with its tables if missing. */
export const layer = (options: { readonly filename: string }): Layer.Layer<RecordStore, StoreFailed> =>
  layerSqlite.pipe(
    Layer.provide(
      SqliteClient.layer({ filename: options.filename }).pipe(
        Layer.mapError((cause) => new StoreFailed({ operation: "open", cause }))
      )
    )
  )

/** The store in an in-memory SQLite database, gone with the layer: for tests. */
export const layerMemory: Layer.Layer<RecordStore, StoreFailed> = layer({ filename: ":memory:" })
