/**
 * How live an online run is: one row logged every 100 ms (as a training loop with a few steps a
 * second logs), against a `steplog server` (SQLite, a process of its own) on loopback, while a
 * reader asks the history API for the newest step every 5 ms; for each row, the time from its
 * `log()` to the first read that returns it (ms: p50, p90, p99, max), with the default 100 ms
 * flush interval and with 1,000 ms. The baseline, measured in the same run: the same rows offline,
 * from `log()` to the journal on disk growing past them (what the flush interval alone costs; the
 * upload adds the rest). Left out: the first WARMUP rows (while the upload service starts), the
 * dashboard's own poll (one a second), and gzip (loopback).
 */
import * as Either from "effect/Either"
import * as path from "node:path"
import { init } from "steplog"
import { readJournal } from "../src/journal/JournalReader.js"
import { quantile, report, startServerProcess, tempDir } from "./fixtures.js"

const ROWS = Number(process.env["LATENCY_ROWS"] ?? 100)
/** Rows logged first and left out: the upload service starting and opening the run is init()'s cost, not this one. */
const WARMUP = 10
const EVERY_MS = 100
const READ_EVERY_MS = 5

const dir = tempDir("latency")
const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, "config") }
const server = await startServerProcess(dir, env)
const { baseUrl, apiKey } = server
const runs = path.join(dir, "runs")

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Logs ROWS rows, one every EVERY_MS, while `newest(runId, runDir, from)` is asked every
 * READ_EVERY_MS for the steps from `from` on that can be read: the latency of each row in ms, sorted.
 */
const measure = async (
  mode: "online" | "offline",
  flushIntervalMs: number,
  newest: (runId: string, runDir: string, from: number) => Promise<ReadonlyArray<number>> | ReadonlyArray<number>
) => {
  const run = await init({ dir: runs, mode, baseUrl, apiKey, flushIntervalMs, name: `latency-${mode}-${flushIntervalMs}`, console: "off" })
  const loggedAt: Array<number> = []
  const seenAt: Array<number> = []
  const reader = (async () => {
    while (seenAt.length < WARMUP + ROWS) {
      for (const step of await newest(run.id, run.dir, seenAt.length)) seenAt[step] ??= performance.now()
      await sleep(READ_EVERY_MS)
    }
  })()
  const start = performance.now()
  for (let step = 0; step < WARMUP + ROWS; step++) {
    await sleep(start + step * EVERY_MS - performance.now())
    loggedAt.push(performance.now())
    run.log({ loss: 1 / (step + 1) })
  }
  await reader
  await run.finish()
  return Float64Array.from(loggedAt.slice(WARMUP), (at, i) => seenAt[WARMUP + i]! - at).sort()
}

/** The steps from `from` on that the server answers (the reader's GET). */
const onServer = async (runId: string, _dir: string, from: number): Promise<ReadonlyArray<number>> => {
  const response = await fetch(`${baseUrl}/api/v1/projects/default/runs/${runId}/history?minStep=${from}`, {
    headers: { authorization: `Bearer ${apiKey}` }
  })
  if (response.status === 404) return []
  const body = (await response.json()) as { rows: ReadonlyArray<{ step: number }> }
  return body.rows.map((row) => row.step)
}

/** The steps from `from` on that the run's journal holds (read whole: it is small here). */
const onDisk = (_runId: string, runDir: string, from: number): ReadonlyArray<number> => {
  const scan = readJournal(path.join(runDir, "journal.slog"))
  if (Either.isLeft(scan)) return []
  return scan.right.records.flatMap((record) => (record.kind === "history" && record.step >= from ? [record.step] : []))
}

const rows: Array<{ [column: string]: string | number }> = []
for (const flushIntervalMs of [100, 1000]) {
  const disk = await measure("offline", flushIntervalMs, onDisk)
  const online = await measure("online", flushIntervalMs, onServer)
  for (const [what, sorted] of [[`online: log() → readable on the server`, online], [`baseline, offline: log() → in the journal`, disk]] as const) {
    rows.push({
      "flush interval ms": flushIntervalMs,
      path: what,
      rows: sorted.length,
      "p50 ms": +quantile(sorted, 0.5).toFixed(1),
      "p90 ms": +quantile(sorted, 0.9).toFixed(1),
      "p99 ms": +quantile(sorted, 0.99).toFixed(1),
      "max ms": +sorted[sorted.length - 1]!.toFixed(1)
    })
  }
}
server.stop()

report(`live latency: one row every ${EVERY_MS} ms, a reader on the history API every ${READ_EVERY_MS} ms (targets at the default 100 ms flush: p50 ≤ 100 ms, p99 ≤ 250 ms; at 1,000 ms: p50 ≤ 1,050 ms)`, rows)
