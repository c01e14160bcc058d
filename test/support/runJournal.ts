/** Reading the journal a fixture child wrote, and the shape checks every child-process test makes. */
import * as Either from "effect/Either"
import { expect } from "vitest"
import { readJournal, type JournalScan } from "../../src/journal/JournalReader.js"
import * as RunDir from "../../src/runtime/RunDir.js"
import type { HistoryRecord, Record } from "../../src/schemas/Record.js"

/** The journal of run `id` under `root`, read whole (the run directory must exist). */
export const journalOf = (root: string, id: string): { readonly path: string; readonly scan: JournalScan } => {
  const dir = RunDir.find(root, id)
  if (dir === null) throw new Error(`no run directory for ${id} under ${root}`)
  return { path: dir.journal, scan: Either.getOrThrow(readJournal(dir.journal)) }
}

/** The run directory of run `id` under `root`. */
export const runDirOf = (root: string, id: string): RunDir.RunDir => {
  const dir = RunDir.find(root, id)
  if (dir === null) throw new Error(`no run directory for ${id} under ${root}`)
  return dir
}

/** The history records of a scan, in journal order. */
export const historyOf = (records: ReadonlyArray<Record>): Array<HistoryRecord> =>
  records.filter((record): record is HistoryRecord => record.kind === "history")

/**
 * Checks what every journal a fixture wrote must be: seq 0, 1, 2, … with no gap or repeat, and
 * history rows at steps 0, 1, 2, … Returns the rows' values of `i` (the fixtures log `{ i }`,
 * counting from 0 in each process), in journal order.
 */
export const expectContiguous = (records: ReadonlyArray<Record>): Array<unknown> => {
  expect(records.map((record) => record.seq)).toEqual(records.map((_, index) => index))
  const rows = historyOf(records)
  expect(rows.map((row) => row.step)).toEqual(rows.map((_, index) => index))
  return rows.map((row) => row.values["i"])
}
