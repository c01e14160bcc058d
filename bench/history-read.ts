/**
 * Reading one metric of a million-step run straight from the SQLite store (server time: the
 * `history` call, without HTTP or encoding): `samples=1000` as a chart asks for it, against the
 * baseline of reading the metric's every row (page after page, following `next`: an answer holds
 * at most HISTORY_PAGE_ROWS rows), and one such page. Also the ingest cost of the 1,000-record batches
 * that build the run (ten-double rows, so 10,000 metric rows a batch), and of the same rows as
 * the uploader sends them, a history block of 10,000 rows a batch, into a second run. The run is
 * built once, in a WAL file in a temp dir; reads are repeated and the median and p95 printed.
 * A sampled read is timed twice: first, by a store just opened (nothing kept: a chart's first
 * look), and again, by a store that made the same read before (a chart drawn again, whose rows
 * the store keeps: sampling.ts). Target: one metric with samples=1000 in under 50 ms, first read.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as path from "node:path"
import type { RunId } from "../src/schemas/Record.js"
import type { History, ProjectName } from "../src/schemas/Wire.js"
import { type HistoryQuery, RecordStore } from "../src/server/store/RecordStore.js"
import * as SqliteStore from "../src/server/store/sqlite/SqliteStore.js"
import { historyBlock, historyRecords, nanos, quantile, report, tempDir } from "./fixtures.js"

const STEPS = Number(process.env["HISTORY_READ_STEPS"] ?? 1_000_000)
const BATCH = 1_000
const READS = 20
const project = "bench" as ProjectName
const runId = "million-steps" as RunId

const filename = path.join(tempDir("history-read"), "store.sqlite")
const runtime = ManagedRuntime.make(SqliteStore.layer({ filename }))
const store = await runtime.runPromise(RecordStore)

const ingestMs: Array<number> = []
for (let from = 0; from < STEPS; from += BATCH) {
  const batch = historyRecords(from, BATCH)
  const start = process.hrtime.bigint()
  await runtime.runPromise(store.ingest(project, runId, batch))
  ingestMs.push(nanos(start, process.hrtime.bigint()) / 1e6)
}
ingestMs.sort((a, b) => a - b)

// The same rows again, into a run of their own, as the uploader sends them: one history block of
// BLOCK_BATCH rows a batch (about its 1 MiB), columns of float64s.
const BLOCK_BATCH = 10_000
const blockMs: Array<number> = []
for (let from = 0; from < STEPS; from += BLOCK_BATCH) {
  const block = historyBlock(from, Math.min(BLOCK_BATCH, STEPS - from))
  const start = process.hrtime.bigint()
  await runtime.runPromise(store.ingest(project, "million-steps-blocks" as RunId, [block]))
  blockMs.push(nanos(start, process.hrtime.bigint()) / 1e6)
}
blockMs.sort((a, b) => a - b)

/** Rows of the read: one answer, or with `every` every page of it. */
const rowsOf = (store: RecordStore["Type"], query: HistoryQuery, every: boolean) =>
  Effect.gen(function* () {
    let rows = 0
    let minStep: number | null = query.minStep ?? 0
    do {
      const page: History = yield* Effect.map(store.history(project, runId, { ...query, minStep }), Option.getOrThrow)
      rows += page.rows.length
      minStep = every ? page.next : null
    } while (minStep !== null)
    return rows
  })
/** `query` read READS times, each by the bench's store, or (`first`) by a store opened for it alone. */
const read = async (query: HistoryQuery, options: { readonly every?: boolean; readonly first?: boolean } = {}) => {
  const times: Array<number> = []
  let rows = 0
  for (let i = 0; i < READS; i++) {
    const opened = options.first === true ? ManagedRuntime.make(SqliteStore.layer({ filename })) : runtime
    const by = await opened.runPromise(RecordStore)
    const start = process.hrtime.bigint()
    rows = await opened.runPromise(rowsOf(by, query, options.every === true))
    times.push(nanos(start, process.hrtime.bigint()) / 1e6)
    if (opened !== runtime) await opened.dispose()
  }
  times.sort((a, b) => a - b)
  return { rows, median: quantile(times, 0.5), p95: quantile(times, 0.95) }
}

const ms = (x: number) => x.toFixed(2)
const results = [
  ["one metric, samples=1000, first read", await read({ keys: ["loss"], samples: 1_000 }, { first: true })],
  ["one metric, samples=1000, read again", await read({ keys: ["loss"], samples: 1_000 })],
  ["ten metrics, samples=1000, first read", await read({ samples: 1_000 }, { first: true })],
  ["ten metrics, samples=1000, read again", await read({ samples: 1_000 })],
  ["one metric, one page of every row", await read({ keys: ["loss"] })],
  ["one metric, every row, page after page (baseline)", await read({ keys: ["loss"] }, { every: true })]
] as const
report(
  "History read: one metric of a 1,000,000-step run from SQLite (server time)",
  results.map(([query, r]) => ({ query, rows: r.rows, "median ms": ms(r.median), "p95 ms": ms(r.p95) }))
)
const ingestRow = (batch: string, times: ReadonlyArray<number>) => ({
  batch,
  batches: times.length,
  "median ms": ms(quantile(times, 0.5)),
  "p95 ms": ms(quantile(times, 0.95)),
  "rows/s": Math.round((STEPS / times.reduce((a, b) => a + b, 0)) * 1000)
})
report("Ingest into SQLite: batches of ten-double rows", [
  ingestRow("1,000 history records (10,000 metric rows)", ingestMs),
  ingestRow(`one history block of ${BLOCK_BATCH.toLocaleString("en")} rows`, blockMs)
])
await runtime.dispose()
