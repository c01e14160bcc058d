/**
 * Upload throughput: an offline run of one million ten-double rows (written by the real runtime)
 * uploaded with `steplog sync`'s upload path (RunUpload: Tailer → Uploader, msgpack POSTs, not
 * gzipped on loopback) to a `steplog server` on SQLite in another process, on loopback: rows per
 * second from the first request until the server has acknowledged the last row. The baseline, measured in the same run,
 * is reading and decoding the same journal alone, as the upload reads it: the floor of the client's side.
 * Leaves out: the training process and the upload service (what passes between them is offsets only).
 * Target (issue 3, end to end): at least 200,000 rows/s.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as fs from "node:fs"
import * as path from "node:path"
import { init } from "steplog"
import * as Auth from "../src/actors/Auth.js"
import { readFrames } from "../src/journal/JournalReader.js"
import * as RunUpload from "../src/runtime/RunUpload.js"
import { totalRows } from "../src/schemas/UploadRecords.js"
import { nanos, report, row, startServerProcess, tempDir } from "./fixtures.js"

const ROWS = Number(process.env["SYNC_ROWS"] ?? 1_000_000)
const dir = tempDir("sync")
const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, "config") }

// The run, written offline as a training script would.
const run = await init({ dir: path.join(dir, "runs"), mode: "offline", name: "sync-bench" })
for (let i = 0; i < ROWS; i++) run.log(row(i))
await run.finish()
const journal = path.join(run.dir, "journal.slog")

// Baseline: read and decode the journal as the upload does (blocks of rows kept whole), nothing else.
const decodeStart = process.hrtime.bigint()
let decoded = 0
for (const entry of readFrames(fs.readFileSync(journal))) if (entry._tag === "Frame") decoded += totalRows(entry.records)
const decodeNs = nanos(decodeStart, process.hrtime.bigint())

// The server, in a process of its own, on a free port.
const server = await startServerProcess(dir, env)
const { baseUrl, apiKey } = server

const start = process.hrtime.bigint()
const progress = await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const flushed = yield* SubscriptionRef.make({ offset: fs.statSync(journal).size, final: true })
      const upload = yield* RunUpload.open({ dir: run.dir, baseUrl, flushed })
      return yield* upload.awaitUploaded
    })
  ).pipe(
    Effect.provide(Layer.merge(NodeHttpClient.layerUndici, Auth.layer({ apiKey, baseUrl, env })))
  )
)
const uploadNs = nanos(start, process.hrtime.bigint())
server.stop()

report(`upload: ${ROWS.toLocaleString("en")} rows of an offline run to steplog server (SQLite) on loopback (target ≥ 200,000 rows/s)`, [
  { path: "RunUpload → steplog server", records: progress.acknowledged, seconds: +(uploadNs / 1e9).toFixed(2), "rows/s": Math.round(ROWS / (uploadNs / 1e9)) },
  { path: "baseline: read + decode the journal", records: decoded, seconds: +(decodeNs / 1e9).toFixed(2), "rows/s": Math.round(ROWS / (decodeNs / 1e9)) }
])
