/**
 * What SIGKILL costs: nothing with durability "sync", at most the last flush interval's rows with
 * the default. A child logs without end and reports each row on stdout with a synchronous write;
 * the test kills it at a random moment chosen from those reports, then reads the journal.
 */
import * as fs from "node:fs"
import { afterEach, describe, expect, it } from "vitest"
import type { Damage } from "../../src/journal/JournalReader.js"
import { killChildren, startFixture, type Child } from "../support/child.js"
import { expectContiguous, journalOf } from "../support/runJournal.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("durability")
afterEach(killChildren)

const ID = "durability"

/** One progress report: `rows` rows had been logged (log() had returned) at `at` ms. */
interface Report {
  readonly rows: number
  readonly at: number
}

const parse = (line: string): Report => {
  const [rows, at] = line.split(" ").map(Number)
  return { rows: rows!, at: at! }
}

const start = (env: { readonly [key: string]: string }): { child: Child; root: string } => {
  const root = temp.file("runs")
  fs.mkdirSync(root)
  return { child: startFixture("logForever.mjs", { STEPLOG_DIR: root, STEPLOG_RUN_ID: ID, ...env }, root), root }
}

/** SIGKILLs the child and waits until it is gone and every line it wrote has been read. */
const kill = async (child: Child): Promise<ReadonlyArray<Report>> => {
  child.process.kill("SIGKILL")
  expect(await child.exited()).toEqual({ code: null, signal: "SIGKILL" })
  return child.lines.filter((line) => line !== "").map(parse)
}

/**
 * The journal of a killed run: seq and steps contiguous from 0, rows in the order logged, and no
 * exit record (the run crashed). The only damage allowed is a torn tail, a write cut off by the
 * kill (the kernel may stop a write to the page cache at a page boundary for a fatal signal).
 */
const killedRun = (root: string): number => {
  const { scan } = journalOf(root, ID)
  const torn: ReadonlyArray<Damage> = scan.damage.filter((damage) => damage.kind === "torn-tail" && damage.offset === scan.end)
  expect(scan.damage).toEqual(torn.slice(0, 1))
  const values = expectContiguous(scan.records)
  expect(values).toEqual(values.map((_, index) => index))
  expect(scan.records.map((record) => record.kind)).toEqual(["run", ...values.map(() => "history")])
  return values.length
}

describe("SIGKILL", () => {
  // Three kills at random moments: one process, three different places in its loop.
  for (const round of [1, 2, 3]) {
    it(`with durability "sync", loses no row that log() had returned for (round ${round})`, async () => {
      const target = 200 + Math.floor(Math.random() * 20_000)
      const { child, root } = start({ STEPLOG_DURABILITY: "sync", PACE: "none" })
      await child.waitForLine((line) => parse(line).rows >= target)
      const reports = await kill(child)
      const reported = Math.max(...reports.map((report) => report.rows))
      const rows = killedRun(root)
      // Every reported row is there; at most the one being logged when the kill landed is extra.
      expect(rows, `killed after ${reported} reported rows (target ${target})`).toBeGreaterThanOrEqual(reported)
      expect(rows).toBeLessThanOrEqual(reported + 1)
    })
  }

  it("with the default durability, loses at most the rows of the last flush interval", async () => {
    const interval = 50
    const { child, root } = start({ STEPLOG_FLUSH_INTERVAL_MS: String(interval), PACE: "1ms" })
    // A random moment 4 to 12 intervals into the run, on the child's own clock.
    const first = parse(await child.waitForLine(() => true))
    const after = interval * (4 + Math.random() * 8)
    await child.waitForLine((line) => parse(line).at - first.at >= after)
    const reports = await kill(child)
    const last = reports.at(-1)!
    // Measured from the child's last report, so that time the child spent descheduled by a busy
    // machine is not counted against it: rows logged two intervals before that were flushed.
    const due = reports.filter((report) => report.at <= last.at - 2 * interval)
    const owed = Math.max(0, ...due.map((report) => report.rows))
    expect(owed, "the kill came late enough for some rows to be due").toBeGreaterThan(0)
    const rows = killedRun(root)
    expect(rows, `killed ${last.at - first.at} ms in, after ${last.rows} reported rows; ${owed} rows were due`).toBeGreaterThanOrEqual(owed)
    expect(rows).toBeLessThanOrEqual(last.rows + 1)
  })
})
