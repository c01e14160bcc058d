/**
 * One million calls as fast as possible (no event-loop turn at all: the worst case for memory):
 * records per second, peak RSS growth over the process before logging, and the time from the last
 * call until everything is on disk; then the journal is read back to check every record is there.
 * Run once for steplog or for pino (argv[2]), each in a fresh process, so one does not inherit the
 * other's heap. Target: steplog's RSS growth under 64 MiB, every record in the journal.
 */
import { init } from "steplog"
import * as fs from "node:fs"
import * as path from "node:path"
import { readJournal } from "../src/journal/JournalReader.js"
import { nanos, openPino, report, row, tempDir } from "./fixtures.js"

const CALLS = 1_000_000
const which = process.argv[2] === "pino" ? "pino" : "steplog"
const dir = tempDir("million")

const before = process.memoryUsage.rss()
let peak = before
const opened = which === "steplog" ? await init({ dir, mode: "offline", name: "million" }) : null
const pino = opened === null ? openPino(dir) : null
const log = opened?.log ?? pino!.log

const start = process.hrtime.bigint()
for (let i = 0; i < CALLS; i++) {
  log(row(i))
  if (i % 10_000 === 0) peak = Math.max(peak, process.memoryUsage.rss())
}
const lastCall = process.hrtime.bigint()
if (opened !== null) await opened.finish()
else await pino!.close()
const done = process.hrtime.bigint()
peak = Math.max(peak, process.memoryUsage.rss())

let stored: number
if (opened !== null) {
  const scan = readJournal(path.join(opened.dir, "journal.slog"))
  if (scan._tag === "Left") throw scan.left
  stored = scan.right.records.filter((r) => r.kind === "history").length
} else {
  stored = fs.readFileSync(path.join(dir, "pino.log"), "utf8").split("\n").length - 1
}

report(`one million calls, no event-loop turn (target: RSS growth < 64 MiB, every record stored)`, [
  {
    logger: which === "steplog" ? "steplog run.log()" : "pino logger.info()",
    "records/s": Math.round(CALLS / (nanos(start, lastCall) / 1e9)),
    "peak RSS growth MiB": +((peak - before) / 2 ** 20).toFixed(1),
    "last call → on disk ms": +(nanos(lastCall, done) / 1e6).toFixed(1),
    "records stored": stored
  }
])
