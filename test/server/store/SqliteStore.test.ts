import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as path from "node:path"
import * as Fiber from "effect/Fiber"
import type { HistoryRecord, Record, RunId, Value } from "../../../src/schemas/Record.js"
import type { ProjectName } from "../../../src/schemas/Wire.js"
import { VERIFIED_FOR_MS } from "../../../src/server/store/internal/keys.js"
import { KeyStore } from "../../../src/server/store/KeyStore.js"
import { RecordStore } from "../../../src/server/store/RecordStore.js"
import * as SqliteStore from "../../../src/server/store/sqlite/SqliteStore.js"
import { blockOf } from "../../support/historyBlock.js"
import { useTempDir } from "../../support/tempDir.js"
import { keyStoreContract } from "../KeyStore.contract.js"
import { recordStoreContract } from "../RecordStore.contract.js"
import { sessionsContract } from "../SessionStore.contract.js"

const temp = useTempDir("sqlite-store")
/** A store in a fresh file of the temp dir (named when the layer is built, after the dir exists). */
const inFile = (filename = () => temp.file("store.sqlite")) =>
  Layer.unwrapEffect(Effect.sync(() => SqliteStore.layer({ filename: filename() })))
/** The store over an in-memory SqlClient that the test reaches too (triggers, table reads). */
const withClient = SqliteStore.layerFromClient.pipe(Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" })))

for (const [name, store] of [["SQLite in memory", SqliteStore.layerMemory], ["SQLite file (WAL)", inFile()]] as const) {
  recordStoreContract(name, store)
  keyStoreContract(name, store)
  sessionsContract(name, store)
}

const project = "p" as ProjectName
const run = "r" as RunId
const rows = (from: number, to: number): Array<Record> =>
  Array.from({ length: to - from }, (_, i) => ({ kind: "history", seq: from + i, ts: from + i, step: from + i, values: { x: i } }))

describe("SqliteStore", () => {
  it.effect("rolls back the whole batch when SQLite fails in the middle of it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* RecordStore
      yield* store.ingest(project, run, rows(0, 5))
      // Writing the chunk that reaches step 7 fails after the batch's seqs were marked held.
      yield* sql`CREATE TRIGGER fail_step_7 BEFORE INSERT ON history_chunks WHEN NEW.last_step >= 7 BEGIN SELECT RAISE(ABORT, 'injected'); END`
      const exit = yield* Effect.exit(store.ingest(project, run, rows(5, 10)))
      expect(Exit.isFailure(exit)).toBe(true)
      const detail = Option.getOrThrow(yield* store.getRun(project, run))
      expect([detail.records, detail.historyRows, detail.updatedAt]).toEqual([5, 5, 4])
      expect(yield* sql`SELECT lo, hi FROM held`).toEqual([{ lo: 0, hi: 4 }])
      const held = Option.getOrThrow(yield* store.history(project, run, {}))
      expect(held.rows.map((row) => row.step)).toEqual([0, 1, 2, 3, 4])
      yield* sql`DROP TRIGGER fail_step_7`
      expect(yield* store.ingest(project, run, rows(5, 10))).toEqual({ ackSeq: 10 })
    }).pipe(Effect.provide(withClient)))

  it.effect("forgets what a rolled-back batch left in the ingest cache (new keys, chunks, the run row)", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* RecordStore
      yield* store.ingest(project, run, rows(0, 5))
      const withY = (from: number, to: number): Array<Record> =>
        Array.from({ length: to - from }, (_, i) => ({ kind: "history", seq: from + i, ts: from + i, step: from + i, values: { y: -i } }))
      yield* sql`CREATE TRIGGER fail_y BEFORE INSERT ON history_chunks WHEN NEW.key_id = 1 BEGIN SELECT RAISE(ABORT, 'injected'); END`
      expect(Exit.isFailure(yield* Effect.exit(store.ingest(project, run, withY(5, 8))))).toBe(true)
      yield* sql`DROP TRIGGER fail_y`
      expect(yield* store.ingest(project, run, withY(5, 8))).toEqual({ ackSeq: 8 })
      const history = Option.getOrThrow(yield* store.history(project, run, { keys: ["y"] }))
      expect(history.rows.map((row) => [row.step, row.values["y"]])).toEqual([[5, -0], [6, -1], [7, -2]])
      const detail = Option.getOrThrow(yield* store.getRun(project, run))
      expect([detail.records, detail.historyRows, detail.summary["y"]]).toEqual([8, 8, -2])
    }).pipe(Effect.provide(withClient)))

  it.scoped("refuses a key another process revoked within VERIFIED_FOR_MS of its last look, and one it revoked itself at once", () =>
    Effect.gen(function* () {
      const filename = temp.file("keys.sqlite")
      const here = Context.get(yield* Layer.build(inFile(() => filename)), KeyStore)
      const there = Context.get(yield* Layer.build(inFile(() => filename)), KeyStore)
      const a = yield* here.create({ name: "a", projects: "*" })
      expect(Option.isSome(yield* here.verify(a.key))).toBe(true)
      yield* there.revoke("a")
      // Verified a moment ago: it passes here until VERIFIED_FOR_MS is up, then the store is asked again.
      expect(Option.isSome(yield* here.verify(a.key))).toBe(true)
      yield* TestClock.adjust(VERIFIED_FOR_MS)
      expect(yield* here.verify(a.key)).toEqual(Option.none())
      const b = yield* here.create({ name: "b", projects: "*" })
      expect(Option.isSome(yield* here.verify(b.key))).toBe(true)
      yield* here.revoke("b")
      expect(yield* here.verify(b.key)).toEqual(Option.none())
    }))

  it.effect("keeps a run's records across a restart of the store on the same file", () =>
    Effect.gen(function* () {
      const filename = temp.file("restart.sqlite")
      const open = inFile(() => filename)
      yield* Effect.flatMap(RecordStore, (store) => store.ingest(project, run, rows(0, 3))).pipe(Effect.provide(open))
      const { ack, detail } = yield* Effect.gen(function* () {
        const store = yield* RecordStore
        return { ack: yield* store.ingest(project, run, rows(2, 6)), detail: yield* store.getRun(project, run) }
      }).pipe(Effect.provide(open))
      expect(ack).toEqual({ ackSeq: 6 })
      expect(Option.getOrThrow(detail).historyRows).toBe(6)
    }))

  it.effect("lets the row with the higher seq win when one step is logged twice", () =>
    Effect.gen(function* () {
      const store = yield* RecordStore
      const at = (seq: number, x: number): Record => ({ kind: "history", seq, ts: seq, step: 3, values: { x } })
      yield* store.ingest(project, run, [at(1, 10)])
      yield* store.ingest(project, run, [at(0, 99)])
      const history = Option.getOrThrow(yield* store.history(project, run, { samples: 10 }))
      expect(history.rows).toEqual([{ step: 3, ts: 1, values: { x: 10 }, min: { x: 10 }, max: { x: 10 } }])
    }).pipe(Effect.provide(SqliteStore.layerMemory)))

  it.effect("keeps the seqs it holds as a few ranges and acknowledges across filled gaps", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* RecordStore
      const odd = rows(0, 20).filter((record) => record.seq % 2 === 1)
      expect(yield* store.ingest(project, run, odd)).toEqual({ ackSeq: 0 })
      expect(yield* sql`SELECT COUNT(*) AS n FROM held`).toEqual([{ n: 10 }])
      const even = rows(0, 20).filter((record) => record.seq % 2 === 0)
      expect(yield* store.ingest(project, run, [...even, ...odd])).toEqual({ ackSeq: 20 })
      expect(yield* sql`SELECT lo, hi FROM held`).toEqual([{ lo: 0, hi: 19 }])
      expect(Option.getOrThrow(yield* store.getRun(project, run)).historyRows).toBe(20)
    }).pipe(Effect.provide(withClient)))

  it.effect("merges a late row into a chunk already written, across chunk boundaries, and re-summarises its block", () =>
    Effect.gen(function* () {
      const store = yield* RecordStore
      const at = (seq: number, step: number, x: Value): HistoryRecord => ({ kind: "history", seq, ts: 10_000 + seq, step, values: { x } })
      // Steps 0..2999 (chunks 0, 1 and 2) with step 1500 missing, then step 1500 late and a
      // re-log of step 1023 (the last step of chunk 0) with a higher seq.
      const first = Array.from({ length: 3_000 }, (_, i) => at(i, i, i)).filter((r) => r.step !== 1_500)
      yield* store.ingest(project, run, first)
      yield* store.ingest(project, run, [at(5_000, 1_023, -7), at(1_500, 1_500, 1e9)])
      const all = Option.getOrThrow(yield* store.history(project, run, {})).rows
      expect(all.map((row) => row.step)).toEqual(Array.from({ length: 3_000 }, (_, i) => i))
      expect([all[1_023]!.values["x"], all[1_023]!.ts, all[1_500]!.values["x"]]).toEqual([-7, 15_000, 1e9])
      // 30 buckets of 128 steps (from the block summaries): the late values are in their buckets.
      const buckets = Option.getOrThrow(yield* store.history(project, run, { samples: 30 })).rows
      const holding = (step: number) => buckets.find((row) => row.step >= step)!
      expect(holding(1_023)).toMatchObject({ step: 1_023, ts: 15_000, values: { x: -7 }, min: { x: -7 }, max: { x: 1_022 } })
      expect(holding(1_500).max).toEqual({ x: 1e9 })
      expect(buckets.at(-1)!.step).toBe(2_999)
    }).pipe(Effect.provide(SqliteStore.layerMemory)))

  it.effect("gives back every value exactly from the block summaries of a long run", () =>
    Effect.gen(function* () {
      const store = yield* RecordStore
      const special: { [key: string]: Value } = { nan: NaN, inf: Infinity, nzero: -0, text: "NaN", yes: true, nothing: null, tiny: 5e-324 }
      const records: Array<Record> = Array.from({ length: 200 }, (_, step) => ({
        kind: "history",
        seq: step,
        ts: step,
        step,
        values: step === 199 ? special : Object.fromEntries(Object.keys(special).map((key) => [key, step]))
      }))
      yield* store.ingest(project, run, records)
      // One bucket of 200 steps ≥ one block: read from the summaries, not the entries.
      const [bucket] = Option.getOrThrow(yield* store.history(project, run, { samples: 1 })).rows
      expect(bucket!.step).toBe(199)
      for (const key of Object.keys(special)) expect(Object.is(bucket!.values[key], special[key]), key).toBe(true)
      // Min and max leave out NaN and non-numbers; -0 and 0 are one value there.
      const { nzero, ...min } = bucket!.min ?? {}
      expect(nzero === 0).toBe(true)
      expect(min).toEqual({ nan: 0, inf: 0, text: 0, yes: 0, nothing: 0, tiny: 0 })
      expect(bucket!.max).toEqual({ nan: 198, inf: Infinity, nzero: 198, text: 198, yes: 198, nothing: 198, tiny: 198 })
    }).pipe(Effect.provide(SqliteStore.layerMemory)))

  it.effect("combines a block's summary when a batch in order continues the block an earlier one began", () =>
    Effect.gen(function* () {
      const store = yield* RecordStore
      const at = (step: number, x: Value): Record => ({ kind: "history", seq: step, ts: step, step, values: { x } })
      // 256 steps, so that samples=4 reads one block a bucket. Block 0 is steps 0..63: the first batch ends mid-block on a string, the second goes on.
      yield* store.ingest(project, run, [...Array.from({ length: 31 }, (_, i) => at(i, 100 + i)), at(31, "mid")])
      yield* store.ingest(project, run, Array.from({ length: 224 }, (_, i) => at(32 + i, i === 0 ? -5 : 50)))
      const [bucket] = Option.getOrThrow(yield* store.history(project, run, { samples: 1 })).rows
      expect(bucket).toEqual({ step: 255, ts: 255, values: { x: 50 }, min: { x: -5 }, max: { x: 130 } })
      const [first] = Option.getOrThrow(yield* store.history(project, run, { samples: 2 })).rows
      expect(first).toEqual({ step: 127, ts: 127, values: { x: 50 }, min: { x: -5 }, max: { x: 130 } })
      const [block0] = Option.getOrThrow(yield* store.history(project, run, { samples: 4 })).rows
      expect(block0).toEqual({ step: 63, ts: 63, values: { x: 50 }, min: { x: -5 }, max: { x: 130 } })
      expect(Option.getOrThrow(yield* store.history(project, run, {})).rows[31]!.values).toEqual({ x: "mid" })
    }).pipe(Effect.provide(SqliteStore.layerMemory)))

  it.effect("stores the steps, seqs and ts a chunk's keys share once; a key logged at only some steps keeps its own", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* RecordStore
      const at = (step: number): HistoryRecord => ({
        kind: "history",
        seq: step,
        ts: 5_000 + step,
        step,
        values: step % 10 === 0 ? { a: step, b: -step, c: `c${step}` } : { a: step, b: -step }
      })
      yield* store.ingest(project, run, Array.from({ length: 100 }, (_, step) => at(step)))
      expect(yield* sql`SELECT chunk, n FROM history_frames`).toEqual([{ chunk: 0, n: 100 }])
      expect(yield* sql`SELECT k.name, h.n, h.steps IS NULL AS shared FROM history_chunks h JOIN metric_keys k USING (run_pk, key_id) ORDER BY k.name`).toEqual([
        { name: "a", n: 100, shared: 1 },
        { name: "b", n: 100, shared: 1 },
        { name: "c", n: 10, shared: 0 }
      ])
      const rows = Option.getOrThrow(yield* store.history(project, run, {})).rows
      expect(rows).toEqual(Array.from({ length: 100 }, (_, step) => ({ step, ts: 5_000 + step, values: at(step).values })))
      const c = Option.getOrThrow(yield* store.history(project, run, { keys: ["c"], minStep: 15 })).rows
      expect(c.map((row) => [row.step, row.ts, row.values["c"]])).toEqual([20, 30, 40, 50, 60, 70, 80, 90].map((step) => [step, 5_000 + step, `c${step}`]))
    }).pipe(Effect.provide(withClient)))

  it.effect("gives a key its own columns when a later batch leaves it out, and joins the blocks of a batch across chunks", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* RecordStore
      const rowsOf = (from: number, to: number, keys: ReadonlyArray<string>): Array<HistoryRecord> =>
        Array.from({ length: to - from }, (_, i) => ({
          kind: "history",
          seq: from + i,
          ts: from + i,
          step: 2 * (from + i),
          values: Object.fromEntries(keys.map((key, k) => [key, (from + i) * 10 + k]))
        }))
      // Three blocks in one batch, steps 0..1198 (chunks 0 and 1): b stops after seq 199.
      yield* store.ingest(project, run, [blockOf(rowsOf(0, 150, ["a", "b"])), blockOf(rowsOf(150, 200, ["a", "b"])), blockOf(rowsOf(200, 600, ["a"]))])
      // b comes back: its entries no longer begin the chunk's frame.
      yield* store.ingest(project, run, [blockOf(rowsOf(600, 700, ["a", "b"]))])
      expect(yield* sql`SELECT chunk, n FROM history_frames ORDER BY chunk`).toEqual([{ chunk: 0, n: 512 }, { chunk: 1, n: 188 }])
      expect(yield* sql`SELECT k.name, h.chunk, h.n, h.steps IS NULL AS shared FROM history_chunks h JOIN metric_keys k USING (run_pk, key_id) ORDER BY k.name, h.chunk`).toEqual([
        { name: "a", chunk: 0, n: 512, shared: 1 },
        { name: "a", chunk: 1, n: 188, shared: 1 },
        { name: "b", chunk: 0, n: 200, shared: 1 },
        { name: "b", chunk: 1, n: 100, shared: 0 }
      ])
      const b = Option.getOrThrow(yield* store.history(project, run, { keys: ["b"] })).rows
      const expected = [...rowsOf(0, 200, ["a", "b"]), ...rowsOf(600, 700, ["a", "b"])]
      expect(b).toEqual(expected.map((row) => ({ step: row.step, ts: row.ts, values: { b: row.values["b"] } })))
      const a = Option.getOrThrow(yield* store.history(project, run, { keys: ["a"], samples: 700 })).rows
      expect(a.map((row) => row.values["a"])).toEqual(rowsOf(0, 700, ["a"]).map((row) => row.values["a"]))
    }).pipe(Effect.provide(withClient)))

  it.effect("migrates a new database once, and refuses one from before migrations or from a newer steplog, untouched", () =>
    Effect.gen(function* () {
      const migrations = (filename: string) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT migration_id, name FROM steplog_migrations`).pipe(
          Effect.provide(SqliteStore.layerFromClient.pipe(Layer.provideMerge(SqliteClient.layer({ filename }))))
        )
      const fresh = temp.file("fresh.sqlite")
      const all = [{ migration_id: 1, name: "layout" }, { migration_id: 2, name: "deleted_runs" }, { migration_id: 3, name: "chunk_versions" }]
      expect(yield* migrations(fresh)).toEqual(all)
      expect(yield* migrations(fresh)).toEqual(all)
      // steplog 0.1's layout: its tables and PRAGMA user_version, no migrations table.
      const old = temp.file("old.sqlite")
      const raw = (filename: string, statement: string) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(Effect.provide(SqliteClient.layer({ filename })))
      yield* raw(old, `CREATE TABLE runs (run_pk INTEGER PRIMARY KEY, project TEXT NOT NULL, run_id TEXT NOT NULL)`)
      yield* raw(old, `PRAGMA user_version = 1`)
      const refused = yield* Effect.flip(Effect.provide(RecordStore, inFile(() => old)))
      expect(refused._tag).toBe("StoreLayoutUnsupported")
      expect(refused.message).toContain(path.dirname(old))
      expect(refused.message).toContain("steplog sync")
      expect(yield* raw(old, `SELECT name FROM sqlite_master WHERE type = 'table'`)).toEqual([{ name: "runs" }])
      // A database a newer steplog migrated further.
      yield* raw(fresh, `INSERT INTO steplog_migrations (migration_id, name) VALUES (4, 'from_the_future')`)
      const newer = yield* Effect.flip(Effect.provide(RecordStore, inFile(() => fresh)))
      expect(newer.message).toMatch(/newer steplog \(migration 4; this server knows migrations up to 3\)/)
    }))

  it.effect("syncs every commit (synchronous=FULL) on the writer", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      expect(yield* sql`PRAGMA synchronous`).toEqual([{ synchronous: 2 }])
    }).pipe(Effect.provide(withClient)))

  it.live("answers reads (a key's verify, another run's history) while it ingests a huge batch", () =>
    Effect.gen(function* () {
      const store = yield* RecordStore
      const keys = yield* KeyStore
      const { key } = yield* keys.create({ projects: "*" })
      yield* store.ingest(project, "small" as RunId, rows(0, 10))
      const huge = Array.from({ length: 300_000 }, (_, i): Record => ({ kind: "history", seq: i, ts: i, step: i, values: { x: i } }))
      const ingesting = yield* Effect.fork(store.ingest(project, "huge" as RunId, huge))
      // Let it begin its transaction, then read while it goes on.
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      expect(Option.isSome(yield* keys.verify(key))).toBe(true)
      expect(Option.getOrThrow(yield* store.history(project, "small" as RunId, {})).rows).toHaveLength(10)
      // The reader sees the last commit: nothing of the huge run yet.
      expect(yield* store.getRun(project, "huge" as RunId)).toEqual(Option.none())
      expect(ingesting.unsafePoll()).toBeNull()
      expect(yield* Fiber.join(ingesting)).toEqual({ ackSeq: 300_000 })
      expect(Option.getOrThrow(yield* store.getRun(project, "huge" as RunId)).historyRows).toBe(300_000)
    }).pipe(Effect.provide(inFile())))
})
