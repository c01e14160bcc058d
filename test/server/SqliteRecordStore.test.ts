import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { Record, RunId } from "../../src/schemas/Record.js"
import type { ProjectName } from "../../src/schemas/Wire.js"
import { RecordStore } from "../../src/server/RecordStore.js"
import * as SqliteRecordStore from "../../src/server/SqliteRecordStore.js"
import { useTempDir } from "../support/tempDir.js"
import { recordStoreContract } from "./RecordStore.contract.js"

const temp = useTempDir("sqlite-store")
/** A store in a fresh file of the temp dir (named when the layer is built, after the dir exists). */
const inFile = (filename = () => temp.file("store.sqlite")) =>
  Layer.unwrapEffect(Effect.sync(() => SqliteRecordStore.layer({ filename: filename() })))

recordStoreContract("SQLite in memory", SqliteRecordStore.layerMemory)
recordStoreContract("SQLite file (WAL)", inFile())

const project = "p" as ProjectName
const run = "r" as RunId
const rows = (from: number, to: number): Array<Record> =>
  Array.from({ length: to - from }, (_, i) => ({ kind: "history", seq: from + i, ts: from + i, step: from + i, values: { x: i } }))

describe("SqliteRecordStore", () => {
  it.effect("rolls back the whole batch when SQLite fails in the middle of it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* RecordStore
      yield* store.ingest(project, run, rows(0, 5))
      // The metric row of step 7 fails after the batch's records rows were written.
      yield* sql`CREATE TRIGGER fail_step_7 BEFORE INSERT ON metrics WHEN NEW.step = 7 BEGIN SELECT RAISE(ABORT, 'injected'); END`
      const exit = yield* Effect.exit(store.ingest(project, run, rows(5, 10)))
      expect(Exit.isFailure(exit)).toBe(true)
      const detail = Option.getOrThrow(yield* store.getRun(project, run))
      expect([detail.records, detail.historyRows, detail.updatedAt]).toEqual([5, 5, 4])
      expect(yield* sql`SELECT COUNT(*) AS n FROM records`).toEqual([{ n: 5 }])
      expect(yield* sql`SELECT COUNT(*) AS n FROM metrics`).toEqual([{ n: 5 }])
      yield* sql`DROP TRIGGER fail_step_7`
      expect(yield* store.ingest(project, run, rows(5, 10))).toEqual({ ackSeq: 10 })
    }).pipe(
      Effect.provide(
        SqliteRecordStore.layerSqlite.pipe(Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" })))
      )
    ))

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
    }).pipe(Effect.provide(SqliteRecordStore.layerMemory)))
})
