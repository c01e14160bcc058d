/**
 * Online runs end to end, on loopback, against a `steplog server` on SQLite in a process of its own
 * (as `steplog server` runs): one million ten-double rows logged as fast as possible by an online
 * run, from the first `log()` until `finish()` resolves, which it does once the server has
 * acknowledged the last record (rows per second; target ≥ 200,000); `finish()` time after the last
 * call; and `init()` in online mode, median of 20 runs opened against the running server (target
 * < 100 ms; the first also starts the upload service, and is shown apart). The baseline, measured in
 * the same process: the same million rows logged offline, until `finish()` (on disk): what the
 * upload path adds is the difference. Importing steplog is paid once per process and shown apart.
 */
const importStart = process.hrtime.bigint()
const { init } = await import("steplog")
const importNs = Number(process.hrtime.bigint() - importStart)

import * as path from "node:path"
import { nanos, quantile, report, row, startServerProcess, tempDir } from "./fixtures.js"

const ROWS = Number(process.env["ONLINE_ROWS"] ?? 1_000_000)
const INITS = 20
const dir = tempDir("online")
const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, "config") }

// The server, in a process of its own, on a free port.
const server = await startServerProcess(dir, env)
const { baseUrl, apiKey } = server
const runs = path.join(dir, "runs")

/** Logs ROWS rows as fast as possible: [first log, last call, finish resolved] and the result. */
const million = async (mode: "online" | "offline") => {
  const run = await init({ dir: runs, mode, baseUrl, apiKey, name: `million-${mode}`, finishTimeoutMs: 600_000 })
  const start = process.hrtime.bigint()
  for (let i = 0; i < ROWS; i++) run.log(row(i))
  const lastCall = process.hrtime.bigint()
  const result = await run.finish()
  const done = process.hrtime.bigint()
  return { start, lastCall, done, result }
}

// Baseline first: the same rows offline, on disk only.
const offline = await million("offline")

// init() in online mode against the running server; each run is finished before the next opens.
const initNs: Array<number> = []
for (let i = 0; i < INITS + 1; i++) {
  const start = process.hrtime.bigint()
  const run = await init({ dir: runs, mode: "online", baseUrl, apiKey, name: `init-${i}` })
  initNs.push(nanos(start, process.hrtime.bigint()))
  run.log({ step: 0, loss: 1 })
  await run.finish()
}
const [firstInit, ...warm] = initNs
const sorted = Float64Array.from(warm).sort()

const online = await million("online")
if (!online.result.uploaded || online.result.records < ROWS) throw new Error(`the online run was not fully uploaded: ${JSON.stringify(online.result)}`)
server.stop()

const ms = (ns: number) => +(ns / 1e6).toFixed(1)
const rowsPerS = (ns: number) => Math.round(ROWS / (ns / 1e9))
report(`online run: ${ROWS.toLocaleString("en")} rows logged as fast as possible until acknowledged by steplog server (SQLite) on loopback (target ≥ 200,000 rows/s)`, [
  {
    run: "online: first log() → finish() (server acknowledged all)",
    "rows/s": rowsPerS(nanos(online.start, online.done)),
    "log() calls/s": rowsPerS(nanos(online.start, online.lastCall)),
    "finish() after last call ms": ms(nanos(online.lastCall, online.done))
  },
  {
    run: "baseline: offline, first log() → finish() (on disk)",
    "rows/s": rowsPerS(nanos(offline.start, offline.done)),
    "log() calls/s": rowsPerS(nanos(offline.start, offline.lastCall)),
    "finish() after last call ms": ms(nanos(offline.lastCall, offline.done))
  }
])
report(`init() in online mode against a running steplog server (target: median < 100 ms)`, [
  {
    "median ms": ms(quantile(sorted, 0.5)),
    "p90 ms": ms(quantile(sorted, 0.9)),
    "first ms (starts the upload service)": ms(firstInit!),
    runs: sorted.length,
    "import steplog ms (once per process)": ms(importNs)
  }
])
