/**
 * Reading one metric of a million-step run straight from the SQLite store (server time: the
 * `history` call, without HTTP or encoding): `samples=1000` as a chart asks for it, against the
 * baseline of reading the metric's every row. Also the ingest cost of the 1,000-record batches
 * that build the run (ten-double rows, so 10,000 metric rows a batch). The run is built once, in a
 * WAL file in a temp dir; reads are repeated and the median and p95 printed.
 * Target: one metric with samples=1000 in under 50 ms.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as path from "node:path"
import type { HistoryRecord, RunId } from "../src/schemas/Record.js"
import type { ProjectName } from "../src/schemas/Wire.js"
import { type HistoryQuery, RecordStore } from "../src/server/RecordStore.js"
import * as SqliteRecordStore from "../src/server/SqliteRecordStore.js"
import { nanos, quantile, report, row, tempDir } from "./fixtures.js"

const STEPS = Number(process.env["HISTORY_READ_STEPS"] ?? 1_000_000)
const BATCH = 1_000
const READS = 20
const project = "bench" as ProjectName
const runId = "million-steps" as RunId

const runtime = ManagedRuntime.make(SqliteRecordStore.layer({ filename: path.join(tempDir("history-read"), "store.sqlite") }))
const store = await runtime.runPromise(RecordStore)

const ingestMs: Array<number> = []
for (let from = 0; from < STEPS; from += BATCH) {
  const batch: Array<HistoryRecord> = []
  for (let step = from; step < from + BATCH; step++) {
    const { step: _, ...values } = row(step)
    batch.push({ kind: "history", seq: step, ts: 1_764_000_000_000 + step, step, values })
  }
  const start = process.hrtime.bigint()
  await runtime.runPromise(store.ingest(project, runId, batch))
  ingestMs.push(nanos(start, process.hrtime.bigint()) / 1e6)
}
ingestMs.sort((a, b) => a - b)

const read = async (query: HistoryQuery) => {
  const times: Array<number> = []
  let rows = 0
  for (let i = 0; i < READS; i++) {
    const start = process.hrtime.bigint()
    const history = await runtime.runPromise(store.history(project, runId, query).pipe(Effect.map((h) => h._tag === "Some" ? h.value.rows.length : 0)))
    times.push(nanos(start, process.hrtime.bigint()) / 1e6)
    rows = history
  }
  times.sort((a, b) => a - b)
  return { rows, median: quantile(times, 0.5), p95: quantile(times, 0.95) }
}

const ms = (x: number) => x.toFixed(2)
const results = [
  ["one metric, samples=1000", await read({ keys: ["loss"], samples: 1_000 })],
  ["ten metrics, samples=1000", await read({ samples: 1_000 })],
  ["one metric, every row (baseline)", await read({ keys: ["loss"] })]
] as const
report(
  "History read: one metric of a 1,000,000-step run from SQLite (server time)",
  results.map(([query, r]) => ({ query, rows: r.rows, "median ms": ms(r.median), "p95 ms": ms(r.p95) }))
)
report("Ingest into SQLite: 1,000-record batches of ten-double rows (10,000 metric rows each)", [
  { batches: ingestMs.length, "median ms": ms(quantile(ingestMs, 0.5)), "p95 ms": ms(quantile(ingestMs, 0.95)), "rows/s": Math.round((STEPS / ingestMs.reduce((a, b) => a + b, 0)) * 1000) }
])
await runtime.dispose()
