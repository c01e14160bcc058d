/**
 * A process that never calls finish() still leaves a whole journal with an `exit` record, and
 * still ends the way it would have without steplog. Real child processes: process death is the
 * point, so nothing here can be simulated in-process.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { ExitRecord } from "../../src/schemas/Record.js"
import { killChildren, startFixture, type Child } from "../support/child.js"
import { expectContiguous, journalOf, runDirOf } from "../support/runJournal.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("exit-hooks")
afterEach(killChildren)

// More than the Buffer holds (2 048), so both the full-buffer write and the hook's drain run.
const ROWS = 20_000
const ID = "exit-hooks"

const start = (end: string): { child: Child; root: string } => {
  const root = temp.file("runs")
  fs.mkdirSync(root)
  const child = startFixture("logRows.mjs", { STEPLOG_DIR: root, STEPLOG_RUN_ID: ID, ROWS: String(ROWS), END: end }, root)
  return { child, root }
}

/** Checks the run's journal: every row the child logged, in order, then summary and exit. */
const expectEndedRun = (root: string, exit: Pick<ExitRecord, "exitCode" | "signal">, rows: { exactly?: number; atLeast?: number }) => {
  const { scan } = journalOf(root, ID)
  expect(scan.damage).toEqual([])
  const values = expectContiguous(scan.records)
  if (rows.exactly !== undefined) expect(values.length).toBe(rows.exactly)
  if (rows.atLeast !== undefined) expect(values.length).toBeGreaterThanOrEqual(rows.atLeast)
  expect(values).toEqual(values.map((_, index) => index))
  expect(scan.records.map((record) => record.kind)).toEqual(["run", ...values.map(() => "history"), "summary", "exit"])
  expect(scan.records.at(-1)).toMatchObject({ kind: "exit", ...exit })
  // The hook released the run: nothing is left holding it.
  expect(fs.existsSync(path.join(runDirOf(root, ID).path, "lock"))).toBe(false)
}

describe("a process that exits without finish()", () => {
  const cases = [
    { end: "return", how: "returning from its main module", code: 0 },
    { end: "exit3", how: "process.exit(3)", code: 3 },
    { end: "throw", how: "an uncaught exception", code: 1 }
  ]
  for (const { end, how, code } of cases) {
    it(`keeps every logged row and an exit record after ${how}, and still exits with code ${code}`, async () => {
      const { child, root } = start(end)
      const ended = await child.exited()
      expect(ended, child.stderr()).toEqual({ code, signal: null })
      expect(child.lines).toContain(`logged ${ROWS}`)
      if (end === "throw") expect(child.stderr()).toContain("the training loop blew up")
      expectEndedRun(root, { exitCode: code, signal: null }, { exactly: ROWS })
    })
  }
})

describe("a process ended by a signal", () => {
  const cases = [
    { signal: "SIGINT", end: "idle", doing: "idle", status: 130 },
    { signal: "SIGTERM", end: "idle", doing: "idle", status: 143 },
    { signal: "SIGINT", end: "logging", doing: "still logging", status: 130 },
    { signal: "SIGTERM", end: "logging", doing: "still logging", status: 143 }
  ] as const
  for (const { signal, end, doing, status } of cases) {
    it(`keeps every logged row after ${signal} while ${doing}, and still dies of ${signal}`, async () => {
      const { child, root } = start(end)
      await child.waitForLine((line) => line === `logged ${ROWS}`)
      child.process.kill(signal)
      const ended = await child.exited()
      expect(ended, child.stderr()).toEqual({ code: null, signal })
      // While logging, rows after the report are in the journal too: "at least", contiguous.
      expectEndedRun(root, { exitCode: status, signal }, end === "idle" ? { exactly: ROWS } : { atLeast: ROWS })
    })
  }

  it("leaves the decision to the program's own SIGINT handler, and still writes the journal", async () => {
    const { child, root } = start("own-sigint")
    await child.waitForLine((line) => line === `logged ${ROWS}`)
    child.process.kill("SIGINT")
    const ended = await child.exited()
    // The handler ran and chose to exit 42 a little later: steplog neither killed the process
    // first nor kept it from exiting.
    expect(child.lines.filter((line) => line === "handled SIGINT")).toHaveLength(1)
    expect(ended, child.stderr()).toEqual({ code: 42, signal: null })
    expectEndedRun(root, { exitCode: 130, signal: "SIGINT" }, { exactly: ROWS })
  })
})
