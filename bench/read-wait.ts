/**
 * How long an unrelated read waits while the store ingests one huge batch: KeyStore.verify (what
 * `GET /api/v1/whoami` does) started every 5 ms during the ingest of one batch of 550,000 one-key
 * history rows (the size of the held-out probe: 7.7 MB of msgpack). Store time only: no HTTP, no
 * body decoding. The wait of a verify is from when its timer fired to its answer. Leaves out the
 * HTTP layer's own work on the body, which happens before the store sees the batch.
 *
 * A verify is due every EVERY_MS from the start of the ingest; its wait runs from when it was due
 * (not when its timer got to run: an ingest that holds the event loop delays the timer itself) to
 * its answer.
 */
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as path from "node:path"
import type { HistoryRecord, RunId } from "../src/schemas/Record.js"
import type { ProjectName } from "../src/schemas/Wire.js"
import { KeyStore } from "../src/server/store/KeyStore.js"
import { RecordStore } from "../src/server/store/RecordStore.js"
import * as SqliteStore from "../src/server/store/sqlite/SqliteStore.js"
import { quantile, report, tempDir } from "./fixtures.js"

const ROWS = Number(process.env["READ_WAIT_ROWS"] ?? 550_000)
const EVERY_MS = 5

const runtime = ManagedRuntime.make(SqliteStore.layer({ filename: path.join(tempDir("read-wait"), "steplog.db") }))
const store = await runtime.runPromise(RecordStore)
const keys = await runtime.runPromise(KeyStore)
const { key } = await runtime.runPromise(keys.create({ name: "bench", projects: "*" }))

const batch: Array<HistoryRecord> = Array.from({ length: ROWS }, (_, i) => ({ kind: "history", seq: i, ts: 1_764_000_000_000 + i, step: i, values: { x: i % 100 } }))

const waits: Array<number> = []
let ingesting = true
const start = performance.now()
let due = start
const tick = () => {
  // Every verify that fell due while the timer could not run starts now, each with its own due time.
  for (; due <= performance.now(); due += EVERY_MS) {
    const since = due
    void runtime.runPromise(keys.verify(key)).then(() => waits.push(performance.now() - since))
  }
  if (ingesting) setTimeout(tick, Math.max(0, due - performance.now()))
}
setTimeout(tick, 0)
await runtime.runPromise(store.ingest("bench" as ProjectName, "huge" as RunId, batch))
const ingestMs = performance.now() - start
ingesting = false
await new Promise((resolve) => setTimeout(resolve, 100))
waits.sort((a, b) => a - b)
report(`Read wait: KeyStore.verify during the ingest of one ${ROWS.toLocaleString("en")}-row batch (SQLite file)`, [
  {
    "ingest ms": Math.round(ingestMs),
    verifies: waits.length,
    "median wait ms": quantile(waits, 0.5).toFixed(1),
    "p95 wait ms": quantile(waits, 0.95).toFixed(1),
    "max wait ms": waits.at(-1)!.toFixed(1)
  }
])
await runtime.dispose()
