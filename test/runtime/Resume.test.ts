/**
 * `init({ id, resume: "allow" })` of a run that exists appends after its last whole frame: the
 * journal reads back without damage, seq and steps carry on without a gap, and the config carries
 * over. Both processes are real children, as in a restarted training job.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { init } from "../../src/index.js"
import { JournalUnreadable } from "../../src/journal/JournalError.js"
import { readEntries } from "../../src/journal/JournalReader.js"
import type { RunRecord } from "../../src/schemas/Record.js"
import { killChildren, startFixture } from "../support/child.js"
import { expectContiguous, journalOf } from "../support/runJournal.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("resume")
afterEach(killChildren)

const ID = "resumed"

const newRoot = (): string => {
  const root = temp.file("runs")
  fs.mkdirSync(root)
  return root
}

/** Runs logRows.mjs to its end (finish()) and returns its stderr. */
const runToEnd = async (root: string, env: { readonly [key: string]: string }): Promise<string> => {
  const child = startFixture("logRows.mjs", { STEPLOG_DIR: root, STEPLOG_RUN_ID: ID, END: "finish", ...env }, root)
  expect(await child.exited(), child.stderr()).toEqual({ code: 0, signal: null })
  return child.stderr()
}

const runRecords = (root: string) =>
  journalOf(root, ID).scan.records.filter((record): record is RunRecord => record.kind === "run")

describe("resuming a run", () => {
  it("appends to a finished offline run: no damage, seq and steps carry on, config carries over", async () => {
    const root = newRoot()
    await runToEnd(root, { ROWS: "5", CONFIG: JSON.stringify({ lr: 0.1 }) })
    await runToEnd(root, { ROWS: "4", CONFIG: JSON.stringify({ epochs: 3 }), STEPLOG_RESUME: "allow" })

    const { scan } = journalOf(root, ID)
    expect(scan.damage).toEqual([])
    // Steps 0…8 across both processes; each process counted its own rows from 0.
    expect(expectContiguous(scan.records)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3])
    const whole = ["run", "history", "history", "history", "history", "history", "summary", "exit"]
    expect(scan.records.map((record) => record.kind)).toEqual([...whole.slice(0, 6), "summary", "exit", "run", ...whole.slice(1, 5), "summary", "exit"])
    const [first, second] = runRecords(root)
    expect(second).toMatchObject({ resumed: true, name: first!.name, config: { lr: 0.1, epochs: 3 } })
    expect(fs.readdirSync(root).filter((name) => name.startsWith("run-"))).toHaveLength(1)
  })

  // The first run writes with durability "sync", so each record is a frame of its own and the
  // cut tears exactly the last one (the exit record).
  const tears = [
    { what: "a frame's payload", keep: (start: number, end: number) => end - 3 - start },
    { what: "a frame's header", keep: () => 5 }
  ]
  for (const { what, keep } of tears) {
    it(`appends after the last whole frame of a journal whose tail was torn through ${what}`, async () => {
      const root = newRoot()
      await runToEnd(root, { ROWS: "5", CONFIG: JSON.stringify({ lr: 0.1 }), STEPLOG_DURABILITY: "sync" })
      const { path: journal } = journalOf(root, ID)
      const bytes = fs.readFileSync(journal)
      const frames = [...readEntries(bytes)].flatMap((entry) => (entry._tag === "Frame" ? [entry] : []))
      const last = frames.at(-1)!
      expect(last.records.map((record) => record.kind)).toEqual(["exit"])
      fs.truncateSync(journal, last.offset + keep(last.offset, last.end))
      const torn = journalOf(root, ID).scan
      expect(torn.damage.map((damage) => damage.kind)).toEqual(["torn-tail"])
      expect(torn.records.map((record) => record.kind).at(-1)).toBe("summary")

      const stderr = await runToEnd(root, { ROWS: "4", STEPLOG_RESUME: "allow" })
      expect(stderr).toContain(`had damage at byte ${last.offset}`)

      const { scan } = journalOf(root, ID)
      expect(scan.damage).toEqual([])
      expect(expectContiguous(scan.records)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3])
      expect(scan.records.slice(0, torn.records.length)).toEqual(torn.records)
      expect(scan.records.map((record) => record.kind).slice(torn.records.length)).toEqual(["run", "history", "history", "history", "history", "summary", "exit"])
      expect(runRecords(root)[1]).toMatchObject({ resumed: true, config: { lr: 0.1 } })
    })
  }

  it("refuses to resume a run whose journal is not a steplog journal, and leaves the file alone", async () => {
    const root = newRoot()
    await runToEnd(root, { ROWS: "1" })
    const { path: journal } = journalOf(root, ID)
    fs.writeFileSync(journal, "not a journal")

    const opening = init({ dir: root, id: ID, mode: "offline", resume: "allow" })
    const error = await opening.then(() => null, (e: unknown) => e)
    expect(error).toBeInstanceOf(JournalUnreadable)
    expect(error).toMatchObject({ reason: "not-a-journal" })
    expect(fs.readFileSync(journal, "utf8")).toBe("not a journal")
    expect(fs.readdirSync(path.dirname(journal)).filter((name) => name.startsWith("lock"))).toEqual([])
  })
})
