/**
 * The SQLite backend of the RecordStore (the server's embedded default): @effect/sql over
 * better-sqlite3, WAL, one connection (the client serialises every statement behind a semaphore).
 *
 * Tables (created at start, `schema` below is the only place they are defined):
 *   runs           one row a run: its derived state (ack, counts, state, config, summary parts),
 *                  updated in the very transaction that ingests a batch, so a read needs no scan
 *   held           (run_pk, lo) → hi: the seqs a run holds, as disjoint, non-adjacent ranges
 *                  (one row for a run uploaded in order): what makes a re-sent record a no-op,
 *                  and where ackSeq comes from
 *   records        (run_pk, seq) → kind, msgpack payload of every record but history rows (run,
 *                  config, summary, output, stats, exit): config and summary are folded from them, and
 *                  console output is read from them
 *   metric_keys    a run's history keys, interned to small integers
 *   history_chunks (run_pk, key_id, chunk) → one metric over CHUNK_STEPS aligned steps as packed
 *                  Float64 columns plus per-BLOCK min/max/last summaries (internal/historyChunk.ts).
 *                  A batch rewrites the chunks it touches (read, merge, write), so a late or
 *                  re-ordered row lands exactly; a `samples` read of a long run reads only the
 *                  block summaries. Its steps, seqs and ts are NULL when they are the first n of
 *                  the chunk's frame.
 *   history_frames (run_pk, chunk) → the steps, seqs and ts the keys of a chunk share, stored once
 *                  for all of them (internal/historyFrame.ts): a ten-double row costs 8 bytes a
 *                  value, not 32, so a million of them write 240 MB less, twice (WAL, then the file):
 *                  ingest of a million such rows as blocks took ~2.2 CPU-s and ~3 s, now ~1.6 and ~1.3.
 *
 * The layout has a version (PRAGMA user_version, LAYOUT_VERSION): a new database gets it, and a
 * database of another version is refused at start (StoreLayoutUnsupported), never half-read.
 *
 * Why chunks and not a row per (run, key, step): a 1,000-row batch of ten doubles cost ~35 ms as
 * 10,000 metric rows plus block upserts plus 1,000 msgpack record rows (45 ms median, 18,500
 * rows/s); as ~20 chunk rows it costs 6.9 ms median, 112,000 rows/s (bench/history-read.ts, one
 * run each, on a loaded 2-core machine).
 *
 * A history block (Record.ts) goes in as it came: its seq range is checked against the held
 * ranges once (internal/seqRanges.ts), and its fresh rows go into the chunks as slices of its
 * columns, never as a row object each; steps, seqs and ts are packed once for all of its keys.
 * The blocks of a batch that follow on one another are joined first (joinBlocks, one copy of
 * their columns, 8-byte aligned), so that a chunk gets one piece a key, sharing its frame's columns.
 *
 * Between batches ingest keeps each run's row, key ids and the highest chunk of each key in memory
 * (`Cached`), so an in-order batch is: held ranges read, held/records/keys/chunks written, run row
 * updated (RETURNING the new row). Safe because this store's connection is the only writer of its
 * tables and ingests run one at a time; an ingest that does not commit drops its run's entry.
 * Not safe if a caller wraps ingest in an outer transaction of the shared SqlClient and rolls that back.
 *
 * Values come back exactly: every number (NaN, ±Infinity, -0 included) is kept as a Float64;
 * strings, booleans and null as JSON text beside it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Packr } from "msgpackr"
import * as path from "node:path"
import type { HistoryBlock, HistoryRecord, JsonPatch, OutputRecord, Record, RunId, RunRecord, UploadRecord, Value } from "../schemas/Record.js"
import { floats, joinBlocks, lastSeq, sliceBlock } from "../schemas/UploadRecords.js"
import type { HistoryRow, ProjectName, RunDetail, RunMetadata } from "../schemas/Wire.js"
import * as Chunk from "./internal/historyChunk.js"
import * as Frame from "./internal/historyFrame.js"
import { type SeqRange, SeqRanges } from "./internal/seqRanges.js"
import { type HistoryQuery, type OutputQuery, RecordStore, StoreFailed } from "./RecordStore.js"


/** The version of the layout `schema` defines (PRAGMA user_version); a database before versions has 0. */
const LAYOUT_VERSION = 1

/** The database holds steplog data in another layout than this server's: refused at start rather than misread. */
export class StoreLayoutUnsupported extends Data.TaggedError("StoreLayoutUnsupported")<{
  readonly file: string
  readonly version: number
}> {
  override get message(): string {
    return `the database ${this.file} holds steplog data in layout version ${this.version}; this server reads version ` +
      `${LAYOUT_VERSION} only. Start it with a new data directory (--data <new dir>, not ${path.dirname(this.file)}) ` +
      "and upload the runs again from their run directories with `steplog sync <run dir>`."
  }
}

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
  `CREATE TABLE IF NOT EXISTS held (
    run_pk INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (run_pk, lo)
  ) WITHOUT ROWID`,
  // A rowid table: its rows are tens of KiB, which WITHOUT ROWID handles badly. The small columns
  // come first so that a read of the block summaries stays off the overflow pages of the columns.
  `CREATE TABLE IF NOT EXISTS history_chunks (
    run_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, chunk INTEGER NOT NULL,
    n INTEGER NOT NULL, first_step INTEGER NOT NULL, last_step INTEGER NOT NULL,
    blocks BLOB NOT NULL, block_texts TEXT,
    steps BLOB, seqs BLOB, ts BLOB, vals BLOB NOT NULL, texts TEXT,
    PRIMARY KEY (run_pk, key_id, chunk)
  )`,
  `CREATE TABLE IF NOT EXISTS history_frames (
    run_pk INTEGER NOT NULL, chunk INTEGER NOT NULL, n INTEGER NOT NULL,
    steps BLOB NOT NULL, seqs BLOB NOT NULL, ts BLOB NOT NULL,
    PRIMARY KEY (run_pk, chunk)
  )`
]

// One record a payload, self-contained: no msgpack record structures shared between payloads.
const packr = new Packr({ useRecords: false, moreTypes: false })
const pack = (value: unknown): Buffer => packr.pack(value)
const unpack = <A>(bytes: Uint8Array | null, fallback: A): A => (bytes === null ? fallback : (packr.unpack(bytes) as A))

/** A value as the (value, text) pair that `last_values` (JSON) keeps. */
const toColumns = (value: Value): readonly [number | null, string | null] =>
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
 * kept as JSON, -0 and NaN in the text (toColumns), ±Infinity written as strings (packLast).
 */
type LastValues = { [key: string]: readonly [number, number, number | null, string | null] }
const packLast = (last: LastValues): string =>
  JSON.stringify(last, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? `${v}` : v))
const unpackLast = (text: string | null): LastValues =>
  text === null ? {} : JSON.parse(text, (_, v) => (v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v))

/** history_chunks (as `h`) with the frame of each chunk (as `f`): what `entryColumns` reads from. */
const withFrames = `history_chunks h LEFT JOIN history_frames f ON f.run_pk = h.run_pk AND f.chunk = h.chunk`
/** A key chunk's entries (Chunk.decode's input): its steps, seqs and ts from the frame when it shares them. */
const entryColumns = `COALESCE(h.steps, substr(f.steps, 1, h.n * 8)) AS steps, COALESCE(h.seqs, substr(f.seqs, 1, h.n * 8)) AS seqs,
  COALESCE(h.ts, substr(f.ts, 1, h.n * 8)) AS ts, h.vals AS vals, h.texts AS texts`

/** Steps `from` to `to`, inclusive: what a history read is limited to. */
interface StepRange {
  readonly from: number
  readonly to: number
}

/** A run's row as getRun and listRuns read it: with its history keys as a JSON array (`detailSelect`). */
interface DetailRow extends RunRow {
  readonly history_keys: string
}
const detailSelect = `SELECT runs.*, (SELECT json_group_array(name) FROM metric_keys k WHERE k.run_pk = runs.run_pk) AS history_keys FROM runs`

const toDetail = (row: DetailRow): RunDetail => {
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
    historyKeys: (JSON.parse(row.history_keys) as Array<string>).sort(),
    lastSteps
  }
}

/**
 * What ingest keeps of a run between batches (held by the store, whose connection is the only
 * writer): the run's row as the last ingest left it, its key ids and, per key, the highest chunk
 * stored and (once written here) that chunk's content. Saves re-reading them on every batch.
 */
interface Cached {
  row: RunRow
  readonly keyIds: Map<string, number>
  /** key_id → the highest chunk stored for it (-1: none) and its content when known */
  readonly tops: Map<number, { c: number; chunk: Chunk.StoredChunk | undefined }>
  /** The highest chunk with a frame (-1: none) and that frame when known. */
  readonly topFrame: { c: number; frame: Frame.Frame | undefined }
}

/**
 * Cuts a block into pieces of chunks: per run of its rows in one chunk, one piece a key (`keys`:
 * their ids, in the block's order), its columns views of the block's, steps, seqs and ts packed
 * once for all of its keys. Answers the row of the highest step (the last of them). Kept out of
 * the ingest generator, whose loops V8 optimises less well.
 */
const cutBlock = (
  block: HistoryBlock,
  keys: ReadonlyArray<number>,
  pieces: (keyId: number, c: number) => Array<Chunk.Incoming>
): { readonly seq: number; readonly step: number; readonly values: ReadonlyArray<number> } => {
  const steps = floats(block.steps)
  const ts = floats(block.ts)
  const columns = block.columns.map(floats)
  const rows = block.rows
  const seqs = new Float64Array(rows)
  for (let i = 0; i < rows; i++) seqs[i] = block.seq + i
  for (let start = 0; start < rows;) {
    const c = Chunk.chunkOf(steps[start]!)
    let end = start + 1
    while (end < rows && Chunk.chunkOf(steps[end]!) === c) end++
    const shared = { steps: steps.subarray(start, end), seqs: seqs.subarray(start, end), ts: ts.subarray(start, end) }
    const packed = { steps: Chunk.pack(shared.steps), seqs: Chunk.pack(shared.seqs), ts: Chunk.pack(shared.ts) }
    for (let k = 0; k < keys.length; k++) pieces(keys[k]!, c).push({ ...shared, vals: columns[k]!.subarray(start, end), texts: null, packed })
    start = end
  }
  let latest = 0
  for (let i = 1; i < rows; i++) if (steps[i]! >= steps[latest]!) latest = i
  return { seq: block.seq + latest, step: steps[latest]!, values: columns.map((column) => column[latest]!) }
}

/** Runs whose ingest state is kept; the least recently ingested is dropped beyond it. */
const CACHED_RUNS = 64

/** The store over whatever SQLite database the SqlClient holds; creates its tables first. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const failed = (operation: string) => (cause: SqlError | StoreFailed) =>
    cause._tag === "StoreFailed" ? cause : new StoreFailed({ operation, cause })
  const run = (text: string, params: ReadonlyArray<unknown> = []) => sql.unsafe<any>(text, params)

  // Durability trade-off: in WAL mode, synchronous=NORMAL skips the fsync at every commit (the WAL
  // is synced at checkpoints). A batch acknowledged to the uploader survives a crash of the server
  // process; an OS crash or power loss may lose the last transactions, which the uploader
  // cannot re-send once its cursor is past them (they would be missing from the server). Bought
  // because it cut ingest of a 1,000-row batch from ~11-12 ms to ~8.5 ms median, the fsync of every
  // commit (bench/history-read.ts ingest loop, 2-core machine under load; measured both ways).
  yield* run(`PRAGMA synchronous = NORMAL`).pipe(Effect.mapError(failed("schema")))
  // Checkpoints every 10,000 WAL pages (~40 MiB), not SQLite's 1,000: a chunk rewritten by batch
  // after batch (the last one of each key) reaches the database file once per checkpoint, not ten
  // times. A million ten-double rows ingested as 10,000-row blocks into a file (as the second loop
  // of bench/history-read.ts does): ~1.8 → ~1.6 CPU-s (both measured).
  yield* run(`PRAGMA wal_autocheckpoint = 10000`).pipe(Effect.mapError(failed("schema")))
  yield* Effect.gen(function* () {
    const [{ user_version: version }] = yield* run(`PRAGMA user_version`)
    const [{ runs }] = yield* run(`SELECT COUNT(*) AS runs FROM sqlite_master WHERE type = 'table' AND name = 'runs'`)
    if (runs > 0 && version !== LAYOUT_VERSION) {
      const [main] = yield* run(`PRAGMA database_list`)
      return yield* new StoreLayoutUnsupported({ file: main.file, version })
    }
    yield* Effect.forEach(schema, (statement) => run(statement), { discard: true })
    yield* run(`PRAGMA user_version = ${LAYOUT_VERSION}`)
  }).pipe(sql.withTransaction, Effect.catchTag("SqlError", failed("schema")))

  const findDetail = (project: string, runId: string) =>
    run(`${detailSelect} WHERE project = ? AND run_id = ?`, [project, runId]).pipe(
      Effect.map((rows) => Option.fromNullable(rows[0] as DetailRow | undefined))
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

  const insertRows = (
    table: string,
    width: number,
    rows: ReadonlyArray<ReadonlyArray<unknown>>,
    suffix = "",
    verb = "INSERT"
  ) =>
    Effect.gen(function* () {
      let at = 0
      for (const size of chunkSizes(rows.length)) {
        const params: Array<unknown> = []
        for (let i = at; i < at + size; i++) params.push(...rows[i]!)
        at += size
        const one = `(${Array(width).fill("?").join(",")})`
        yield* run(`${verb} INTO ${table} VALUES ${Array(size).fill(one).join(",")} ${suffix}`, params)
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

  // Ingests run one at a time (under `lock`), and a cache entry is dropped whenever its ingest
  // does not commit, so the cache never holds what a rolled-back transaction wrote.
  const cache = new Map<string, Cached>()
  const lock = yield* Effect.makeSemaphore(1)
  const cacheKey = (project: string, runId: string) => `${project}\u0000${runId}`

  const loadCached = (project: string, runId: string) =>
    Effect.gen(function* () {
      const key = cacheKey(project, runId)
      const hit = cache.get(key)
      if (hit !== undefined) {
        cache.delete(key) // re-inserted after the ingest: most recently used last
        return hit
      }
      const row = yield* ensureRun(project, runId)
      const keyIds = new Map<string, number>()
      const tops = new Map<number, { c: number; chunk: Chunk.StoredChunk | undefined }>()
      for (const k of yield* run(
        `SELECT key_id, name, (SELECT MAX(chunk) FROM history_chunks h WHERE h.run_pk = k.run_pk AND h.key_id = k.key_id)
           AS top FROM metric_keys k WHERE run_pk = ?`,
        [row.run_pk]
      )) {
        keyIds.set(k.name as string, k.key_id as number)
        tops.set(k.key_id as number, { c: (k.top as number | null) ?? -1, chunk: undefined })
      }
      const [frames] = yield* run(`SELECT MAX(chunk) AS top FROM history_frames WHERE run_pk = ?`, [row.run_pk])
      return { row, keyIds, tops, topFrame: { c: (frames.top as number | null) ?? -1, frame: undefined } } satisfies Cached
    })

  const ingest = (project: ProjectName, runId: RunId, batch: ReadonlyArray<UploadRecord>, entry: Cached) =>
    Effect.gen(function* () {
      const runRow = entry.row
      const runPk = runRow.run_pk
      if (batch.length === 0) return { ackSeq: runRow.ack_seq }

      // Exactly once: drop what is held already and repeats within the batch (first one wins); of
      // a block, only the rows not held are kept, as row ranges of it.
      let lo = Infinity
      let hi = -Infinity
      for (const record of batch) (lo = Math.min(lo, record.seq), (hi = Math.max(hi, lastSeq(record))))
      // The held ranges that overlap or touch the batch's span (one, for a run uploaded in order).
      const read: Array<SeqRange> = (yield* run(
        `SELECT lo, hi FROM held WHERE run_pk = ? AND lo <= ? AND hi >= ? ORDER BY lo`,
        [runPk, hi + 1, lo - 1]
      )).map((row) => [row.lo as number, row.hi as number])
      const held = new SeqRanges([...read])
      const fresh: Array<Record> = []
      const fromBlocks: Array<HistoryBlock> = []
      let freshCount = 0
      for (const record of batch) {
        if (record.kind !== "historyBlock") {
          if (held.take(record.seq, record.seq).length > 0) (fresh.push(record), freshCount++)
          continue
        }
        for (const [l, h] of held.take(record.seq, lastSeq(record))) {
          fromBlocks.push(sliceBlock(record, l - record.seq, h - record.seq + 1))
          freshCount += h - l + 1
        }
      }
      if (freshCount === 0) return { ackSeq: runRow.ack_seq }
      // The fresh rows of blocks, as few blocks as they make in a row: see joinBlocks.
      const blocks = joinBlocks(fromBlocks)

      if (read.length > 0) {
        yield* run(`DELETE FROM held WHERE run_pk = ? AND lo IN (${read.map(() => "?").join(",")})`, [
          runPk,
          ...read.map(([l]) => l)
        ])
      }
      const merged = held.ranges
      yield* insertRows("held", 3, merged.map(([l, h]) => [runPk, l, h]))
      // ackSeq: the end of the held range holding the current ack (which, not held before, is
      // held now only if this batch brought it, so its range is among the merged ones).
      const acked = merged.find(([l, h]) => l <= runRow.ack_seq && runRow.ack_seq <= h)
      const ackSeq = acked === undefined ? runRow.ack_seq : acked[1] + 1

      const kept = fresh.filter((record) => record.kind !== "history")
      if (kept.length > 0) yield* insertRows("records", 4, kept.map((record) => [runPk, record.seq, record.kind, pack(record)]))

      let updatedAt = runRow.updated_at ?? -Infinity
      let blockRows = 0
      for (const block of blocks) {
        const ts = floats(block.ts)
        for (let i = 0; i < block.rows; i++) updatedAt = Math.max(updatedAt, ts[i]!)
        blockRows += block.rows
      }
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

      const historyRows = history.length + blockRows
      const lastValues = unpackLast(runRow.last_values)
      if (historyRows > 0) yield* ingestHistory(runPk, history, blocks, lastValues, entry)

      const config = configChanged ? yield* recomputeConfig(runPk, runRow.meta_config) : runRow.config
      let summary = runRow.summary
      if (summaryChanged) {
        const patch: { [key: string]: unknown } = {}
        const rows = yield* run(`SELECT payload FROM records WHERE run_pk = ? AND kind = 'summary' ORDER BY seq`, [runPk])
        for (const row of rows) Object.assign(patch, unpack<{ patch: JsonPatch }>(row.payload, { patch: {} }).patch)
        summary = pack(patch)
      }

      const r = runRecord
      const [updated] = yield* run(
        `UPDATE runs SET ack_seq = ?, records = records + ?, history_rows = history_rows + ?, updated_at = ?,
           exit_seq = ?, exit_code = ?, config = ?, summary = ?, last_values = ?,
           run_seq = COALESCE(?, run_seq), name = COALESCE(?, name), tags = COALESCE(?, tags),
           notes = CASE WHEN ? THEN ? ELSE notes END, grp = CASE WHEN ? THEN ? ELSE grp END,
           job_type = CASE WHEN ? THEN ? ELSE job_type END, host = COALESCE(?, host),
           started_at = CASE WHEN ? AND (started_at IS NULL OR NOT ?) THEN ? ELSE started_at END
         WHERE run_pk = ? RETURNING *`,
        [
          ackSeq,
          freshCount,
          historyRows,
          updatedAt,
          exitSeq,
          exitCode,
          config,
          summary,
          historyRows > 0 ? packLast(lastValues) : runRow.last_values,
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
      entry.row = updated as RunRow
      return { ackSeq }
    })

  /**
   * Stores history rows, and blocks of fresh rows, in the chunks of their keys (each chunk
   * touched is read, merged and written back whole, block summaries recomputed) and advances the
   * last values. A block's rows go in as slices of its columns, never as a row each.
   */
  const ingestHistory = (
    runPk: number,
    history: ReadonlyArray<HistoryRecord>,
    blocks: ReadonlyArray<HistoryBlock>,
    lastValues: LastValues,
    entry: Cached
  ) =>
    Effect.gen(function* () {
      const { keyIds, tops } = entry
      const newKeys: Array<ReadonlyArray<unknown>> = []
      const keyIdOf = (key: string): number => {
        let keyId = keyIds.get(key)
        if (keyId === undefined) {
          keyId = keyIds.size
          keyIds.set(key, keyId)
          newKeys.push([runPk, keyId, key])
          tops.set(keyId, { c: -1, chunk: undefined })
        }
        return keyId
      }
      // key_id → chunk → this batch's entries for it, in pieces
      const incoming = new Map<number, Map<number, Array<Chunk.Incoming>>>()
      const pieces = (keyId: number, c: number): Array<Chunk.Incoming> => {
        let byChunk = incoming.get(keyId)
        if (byChunk === undefined) incoming.set(keyId, (byChunk = new Map()))
        let list = byChunk.get(c)
        if (list === undefined) byChunk.set(c, (list = []))
        return list
      }
      const advanceLast = (key: string, step: number, seq: number, value: Value) => {
        const last = lastValues[key]
        if (last === undefined || last[0] < step || (last[0] === step && last[1] < seq)) {
          lastValues[key] = [step, seq, ...toColumns(value)]
        }
      }
      // Rows: one piece per key and chunk, filled row by row.
      const rowPieces = new Map<string, Chunk.Chunk>()
      for (const record of history) {
        const c = Chunk.chunkOf(record.step)
        for (const key in record.values) {
          const value = record.values[key]!
          const keyId = keyIdOf(key)
          let chunk = rowPieces.get(`${keyId}/${c}`)
          if (chunk === undefined) {
            rowPieces.set(`${keyId}/${c}`, (chunk = Chunk.empty()))
            pieces(keyId, c).push(chunk)
          }
          Chunk.push(chunk, record.step, record.seq, record.ts, value)
          advanceLast(key, record.step, record.seq, value)
        }
      }
      for (const block of blocks) {
        const latest = cutBlock(block, block.keys.map(keyIdOf), pieces)
        for (let k = 0; k < block.keys.length; k++) advanceLast(block.keys[k]!, latest.step, latest.seq, latest.values[k]!)
      }
      if (newKeys.length > 0) yield* insertRows("metric_keys", 3, newKeys)
      // Only the chunks neither known absent (past the key's highest) nor held in the cache are read.
      const held = new Map<string, Chunk.StoredChunk>()
      const readKeys = new Set<number>()
      const readChunks = new Set<number>()
      for (const [keyId, byChunk] of incoming) {
        const top = tops.get(keyId)!
        for (const c of byChunk.keys()) {
          if (c > top.c) continue
          if (c === top.c && top.chunk !== undefined) held.set(`${keyId}/${c}`, top.chunk)
          else (readKeys.add(keyId), readChunks.add(c))
        }
      }
      if (readKeys.size > 0) {
        const stored = yield* run(
          `SELECT h.key_id, h.chunk, h.n, h.last_step, h.blocks, h.block_texts, ${entryColumns} FROM ${withFrames}
             WHERE h.run_pk = ? AND h.key_id IN (${[...readKeys].join(",")}) AND h.chunk IN (${[...readChunks].join(",")})`,
          [runPk]
        )
        for (const row of stored) held.set(`${row.key_id}/${row.chunk}`, row)
      }
      // chunk → its keys' merged entries
      const merged = new Map<number, Array<{ keyId: number; e: Chunk.EncodedChunk }>>()
      for (const [keyId, byChunk] of incoming) {
        for (const [c, list] of byChunk) {
          const e = Chunk.mergeInto(held.get(`${keyId}/${c}`), Chunk.concat(list), c)
          const top = tops.get(keyId)!
          if (c >= top.c) {
            // Copied (a few KiB): the cache outlives the request, whose body the columns may view.
            top.c = c
            top.chunk = {
              n: e.n, last_step: e.lastStep, blocks: e.blocks, block_texts: e.blockTexts,
              steps: Buffer.from(e.steps), seqs: Buffer.from(e.seqs), ts: Buffer.from(e.ts), vals: Buffer.from(e.vals), texts: e.texts
            }
          }
          let keys = merged.get(c)
          if (keys === undefined) merged.set(c, (keys = []))
          keys.push({ keyId, e })
        }
      }
      const frames = yield* framesOf(runPk, [...merged.keys()], entry.topFrame)
      const frameRows: Array<ReadonlyArray<unknown>> = []
      const rows: Array<ReadonlyArray<unknown>> = []
      for (const [c, keys] of merged) {
        const frame = Frame.extend(frames.get(c), keys.map(({ e }) => e))
        if (frame !== undefined && frame !== frames.get(c)) {
          frameRows.push([runPk, c, frame.n, frame.steps, frame.seqs, frame.ts])
          if (c >= entry.topFrame.c) {
            entry.topFrame.c = c
            entry.topFrame.frame = { n: frame.n, steps: Buffer.from(frame.steps), seqs: Buffer.from(frame.seqs), ts: Buffer.from(frame.ts) }
          }
        }
        for (const { keyId, e } of keys) {
          const own = !Frame.isAligned(frame, e)
          rows.push([
            runPk, keyId, c, e.n, e.firstStep, e.lastStep, e.blocks, e.blockTexts,
            own ? e.steps : null, own ? e.seqs : null, own ? e.ts : null, e.vals, e.texts
          ])
        }
      }
      yield* insertRows("history_frames", 6, frameRows, "", "INSERT OR REPLACE")
      yield* insertRows("history_chunks", 13, rows, "", "INSERT OR REPLACE")
    })

  /** The frames of chunks `cs` of a run: the cached top one, none past it, the others read. */
  const framesOf = (runPk: number, cs: ReadonlyArray<number>, top: Cached["topFrame"]) =>
    Effect.gen(function* () {
      const frames = new Map<number, Frame.Frame>()
      const read: Array<number> = []
      for (const c of cs) {
        if (c > top.c) continue
        if (c === top.c && top.frame !== undefined) frames.set(c, top.frame)
        else read.push(c)
      }
      if (read.length > 0) {
        for (const row of yield* run(
          `SELECT chunk, n, steps, seqs, ts FROM history_frames WHERE run_pk = ? AND chunk IN (${read.join(",")})`,
          [runPk]
        )) frames.set(row.chunk, row)
      }
      return frames
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
      return toDetail(Option.getOrThrow(yield* findDetail(project, runId)))
    })

  const history = (project: ProjectName, runId: RunId, query: HistoryQuery) =>
    Effect.gen(function* () {
      const found = yield* findRun(project, runId)
      if (Option.isNone(found)) return Option.none()
      const runPk = found.value.run_pk
      const names = new Map<number, string>()
      for (const row of yield* run(`SELECT key_id, name FROM metric_keys WHERE run_pk = ? ORDER BY key_id`, [runPk])) {
        if (query.keys === undefined || query.keys.includes(row.name)) names.set(row.key_id, row.name)
      }
      if (names.size === 0) return Option.some({ rows: [] })
      const ids = [...names.keys()].join(",")
      const steps: StepRange = { from: query.minStep ?? 0, to: query.maxStep ?? Number.MAX_SAFE_INTEGER }
      if (query.samples === undefined) return Option.some({ rows: yield* everyRow(runPk, ids, names, steps) })
      return Option.some({ rows: yield* sampled(runPk, ids, names, steps, Math.max(1, Math.floor(query.samples))) })
    })

  /**
   * The chunk rows holding steps of the range: the chunk numbers bound the index scan, and the
   * chunk's first and last step (small columns, before the blobs) skip a chunk with none inside.
   */
  const inRange = (steps: StepRange) => ({
    where: `AND h.chunk BETWEEN ? AND ? AND h.last_step >= ? AND h.first_step <= ?`,
    params: [Chunk.chunkOf(steps.from), Chunk.chunkOf(steps.to), steps.from, steps.to]
  })

  /** Output records are kept whole in `records`: read in seq order from just after `after`. */
  const output = (project: ProjectName, runId: RunId, query: OutputQuery) =>
    Effect.gen(function* () {
      const found = yield* findRun(project, runId)
      if (Option.isNone(found)) return Option.none()
      const rows = yield* run(
        `SELECT payload FROM records WHERE run_pk = ? AND seq > ? AND kind = 'output' ORDER BY seq LIMIT ?`,
        [found.value.run_pk, query.after, query.limit]
      )
      const lines = rows.map((row) => {
        const { seq, ts, stream, text } = unpack<OutputRecord>(row.payload, null as never)
        return { seq, ts, stream, text }
      })
      return Option.some({ lines, next: lines.at(-1)?.seq ?? query.after })
    })

  /** Every row of the range with any of the keys, in step order; a row's ts is that of its first key logged. */
  const everyRow = (runPk: number, ids: string, names: ReadonlyMap<number, string>, steps: StepRange) =>
    Effect.gen(function* () {
      // In index order (a sort by chunk in SQL would copy every blob): grouped by chunk here.
      const byChunk = new Map<number, Array<{ name: string; chunk: Chunk.Chunk }>>()
      const range = inRange(steps)
      const stored = yield* run(
        `SELECT h.key_id, h.chunk, ${entryColumns} FROM ${withFrames}
           WHERE h.run_pk = ? AND h.key_id IN (${ids}) ${range.where} ORDER BY h.key_id, h.chunk`,
        [runPk, ...range.params]
      )
      for (const row of stored) {
        let group = byChunk.get(row.chunk)
        if (group === undefined) byChunk.set(row.chunk, (group = []))
        group.push({ name: names.get(row.key_id)!, chunk: Chunk.decode(row) })
      }
      const rows: Array<HistoryRow> = []
      for (const c of [...byChunk.keys()].sort((a, b) => a - b)) {
        const at = new Map<number, { step: number; ts: number; values: { [key: string]: Value } }>()
        for (const { chunk, name } of byChunk.get(c)!) {
          for (let i = 0; i < chunk.steps.length; i++) {
            if (chunk.steps[i]! < steps.from || chunk.steps[i]! > steps.to) continue
            let row = at.get(chunk.steps[i]!)
            if (row === undefined) at.set(chunk.steps[i]!, (row = { step: chunk.steps[i]!, ts: chunk.ts[i]!, values: {} }))
            row.values[name] = Chunk.fromPair(chunk.vals[i]!, chunk.texts[i]!)
          }
        }
        const group = [...at.values()]
        if (byChunk.get(c)!.length > 1) group.sort((a, b) => a.step - b.step)
        for (const row of group) rows.push(row)
      }
      return rows
    })

  /**
   * At most `samples` buckets of equal width over the steps of the range: per bucket the last
   * step's values of each key, and min and max of each numeric key (NaN left out). When a bucket
   * spans at least BLOCK steps its width is a whole number of blocks, aligned to blocks, so it is
   * read from the chunks' block summaries alone, but for a chunk the range cuts through (at most
   * the first and the last of each key), whose entries inside the range are read.
   */
  const sampled = (runPk: number, ids: string, names: ReadonlyMap<number, string>, steps: StepRange, samples: number) =>
    Effect.gen(function* () {
      const within = inRange(steps)
      const [range] = yield* run(
        `SELECT MIN(first_step) AS lo, MAX(last_step) AS hi FROM history_chunks h WHERE run_pk = ? AND key_id IN (${ids}) ${within.where}`,
        [runPk, ...within.params]
      )
      if (range.lo === null) return []
      const lo = Math.max(range.lo as number, steps.from)
      const hi = Math.min(range.hi as number, steps.to)
      let origin = lo
      let width = Math.ceil((hi - lo + 1) / samples)
      const blocks = width >= Chunk.BLOCK
      if (blocks) {
        origin = Math.floor(lo / Chunk.BLOCK) * Chunk.BLOCK
        width = Math.ceil(Math.ceil((hi - origin + 1) / samples) / Chunk.BLOCK) * Chunk.BLOCK
      }
      interface Cell { min: number; max: number; step: number; ts: number; value: Value }
      const buckets = new Map<number, Map<number, Cell>>()
      /** Folds an entry or block whose first step is `at` into its bucket. */
      const add = (at: number, keyId: number, min: number, max: number, step: number, ts: number, value: Value) => {
        const bucket = Math.floor((at - origin) / width)
        let cells = buckets.get(bucket)
        if (cells === undefined) buckets.set(bucket, (cells = new Map()))
        const cell = cells.get(keyId)
        if (cell === undefined) return void cells.set(keyId, { min, max, step, ts, value })
        cell.min = Chunk.minOf(cell.min, min)
        cell.max = Chunk.maxOf(cell.max, max)
        if (step > cell.step) (cell.step = step), (cell.ts = ts), (cell.value = value)
      }
      /** Folds the entries of a stored chunk that lie in the range. */
      const addEntries = (row: Parameters<typeof Chunk.decode>[0] & { readonly key_id: number }) => {
        const chunk = Chunk.decode(row)
        for (let i = 0; i < chunk.steps.length; i++) {
          const step = chunk.steps[i]!
          if (step < steps.from || step > steps.to) continue
          const v = chunk.vals[i]!
          const number = chunk.texts[i] === null ? v : NaN
          add(step, row.key_id, number, number, step, chunk.ts[i]!, Chunk.fromPair(v, chunk.texts[i]!))
        }
      }
      const entries = `SELECT h.key_id, h.chunk, ${entryColumns} FROM ${withFrames} WHERE h.run_pk = ? AND h.key_id IN (${ids})`
      if (blocks) {
        const stored = yield* run(
          `SELECT key_id, chunk, first_step, last_step, blocks, block_texts FROM history_chunks h
             WHERE run_pk = ? AND key_id IN (${ids}) ${within.where}`,
          [runPk, ...within.params]
        )
        const cut = new Set<string>()
        for (const row of stored) {
          if (row.first_step < steps.from || row.last_step > steps.to) {
            cut.add(`${row.key_id}/${row.chunk}`)
            continue
          }
          // A block's first step decides its bucket: buckets are aligned to blocks.
          Chunk.forEachBlock(row.chunk, row.blocks, row.block_texts, (b) =>
            add(b.block * Chunk.BLOCK, row.key_id, b.min, b.max, b.lastStep, b.lastTs, b.lastValue))
        }
        if (cut.size > 0) {
          // Only the chunks holding `from` and `to` can be cut; the keys' other chunks there are skipped.
          const edges = yield* run(
            `${entries} AND h.chunk IN (?, ?)`,
            [runPk, Chunk.chunkOf(steps.from), Chunk.chunkOf(steps.to)]
          )
          for (const row of edges) if (cut.has(`${row.key_id}/${row.chunk}`)) addEntries(row)
        }
      } else {
        const stored = yield* run(
          `${entries} ${within.where}`,
          [runPk, ...within.params]
        )
        for (const row of stored) addEntries(row)
      }
      const rows: Array<HistoryRow> = []
      for (const bucket of [...buckets.keys()].sort((a, b) => a - b)) {
        const row = { step: -1, ts: 0, values: {} as { [key: string]: Value }, min: {} as { [key: string]: number }, max: {} as { [key: string]: number } }
        for (const [keyId, cell] of buckets.get(bucket)!) {
          const name = names.get(keyId)!
          if (cell.step > row.step) (row.step = cell.step), (row.ts = cell.ts)
          row.values[name] = cell.value
          if (!Number.isNaN(cell.min)) (row.min[name] = cell.min), (row.max[name] = cell.max)
        }
        rows.push(row)
      }
      return rows
    })

  return RecordStore.of({
    ingest: (project, runId, records) =>
      Effect.suspend(() => {
        let entry: Cached | undefined
        return sql.withTransaction(
          Effect.flatMap(loadCached(project, runId), (loaded) => ((entry = loaded), ingest(project, runId, records, loaded)))
        ).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (exit._tag !== "Success" || entry === undefined) return
              cache.set(cacheKey(project, runId), entry)
              if (cache.size > CACHED_RUNS) cache.delete(cache.keys().next().value!)
            })
          ),
          lock.withPermits(1),
          Effect.mapError(failed("ingest"))
        )
      }),
    putRun: (project, runId, metadata) =>
      sql.withTransaction(putRun(project, runId, metadata)).pipe(
        // putRun rewrites the run's row: the next ingest reads it afresh.
        Effect.ensuring(Effect.sync(() => cache.delete(cacheKey(project, runId)))),
        lock.withPermits(1),
        Effect.mapError(failed("putRun"))
      ),
    getRun: (project, runId) =>
      findDetail(project, runId).pipe(Effect.map(Option.map(toDetail)), Effect.mapError(failed("getRun"))),
    listRuns: (project) =>
      run(`${detailSelect} WHERE project = ? ORDER BY COALESCE(started_at, created_at) DESC, run_pk DESC`, [
        project
      ]).pipe(
        Effect.map((rows) => ({ runs: rows.map((row) => toDetail(row as DetailRow)) })),
        Effect.mapError(failed("listRuns"))
      ),
    listProjects: run(
      `SELECT project AS name, COUNT(*) AS runs, MAX(updated_at) AS updatedAt FROM runs GROUP BY project ORDER BY project`
    ).pipe(
      Effect.map((rows) => ({ projects: rows as any })),
      Effect.mapError(failed("listProjects"))
    ),
    history: (project, runId, query) =>
      sql.withTransaction(history(project, runId, query)).pipe(Effect.mapError(failed("history"))),
    output: (project, runId, query) =>
      sql.withTransaction(output(project, runId, query)).pipe(Effect.mapError(failed("output")))
  })
})

/** The store over the SqlClient of the surrounding layer (so that other tables can share its file). */
export const layerSqlite: Layer.Layer<RecordStore, StoreFailed | StoreLayoutUnsupported, SqlClient.SqlClient> = Layer.effect(RecordStore, make)

/** The store in a SQLite file (WAL), created with its tables if missing. */
export const layer = (options: { readonly filename: string }): Layer.Layer<RecordStore, StoreFailed | StoreLayoutUnsupported> =>
  layerSqlite.pipe(
    Layer.provide(
      SqliteClient.layer({ filename: options.filename }).pipe(
        Layer.mapError((cause) => new StoreFailed({ operation: "open", cause }))
      )
    )
  )

/** The store in an in-memory SQLite database, gone with the layer: for tests. */
export const layerMemory: Layer.Layer<RecordStore, StoreFailed | StoreLayoutUnsupported> = layer({ filename: ":memory:" })
