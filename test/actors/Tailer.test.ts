/**
 * The Tailer on a real journal: it reads only up to the flushed offset, waits out a torn tail
 * (unless the journal ends there), hands on at once what it read when the Uploader is idle and
 * gathers while it is busy (never on a timer), cuts batches at 1 MiB or MAX_BATCH_RECORDS,
 * resumes from a cursor's seq without handing on anything below it, publishes what it has read
 * of the journal (its last seq, run record, end, damage), and names the seqs damage lost.
 */
import { expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as fs from "node:fs"
import { describe } from "vitest"
import * as Tailer from "../../src/actors/Tailer.js"
import { encodeFrame } from "../../src/journal/internal/frame.js"
import type { JournalWriter } from "../../src/journal/JournalWriter.js"
import { MAX_BATCH_RECORDS } from "../../src/schemas/Limits.js"
import type { Record } from "../../src/schemas/Record.js"
import { historyRows, rowCount } from "../../src/schemas/UploadRecords.js"
import { histories, openJournal as openJournalAt, settle } from "../support/actors.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("tailer")

const openJournal = Effect.suspend(() => openJournalAt(temp.file("journal.slog")))

/** Appends one frame per group of records; returns each frame's [offset, end). */
const appendFrames = (journal: JournalWriter, groups: ReadonlyArray<ReadonlyArray<Record>>) =>
  groups.map((records) => {
    const offset = journal.offset
    journal.append(records)
    return { offset, end: journal.offset }
  })

/** A Tailer over `journal` from seq `from`; its consumer idle unless `busy` says otherwise (`idle.open` nudges it). */
const startTailer = (journal: JournalWriter, from = 0, options: { readonly busy?: boolean; readonly maxBatchBytes?: number } = {}) =>
  Effect.gen(function* () {
    const output = yield* Queue.unbounded<Tailer.Batch>()
    const reports: Array<string> = []
    let idleNow = options.busy !== true
    const tailer = yield* Tailer.make({
      journal: journal.path,
      from,
      output,
      idle: () => idleNow,
      report: (message) => reports.push(message),
      ...(options.maxBatchBytes === undefined ? {} : { maxBatchBytes: options.maxBatchBytes })
    })
    yield* Effect.forkScoped(tailer.loop)
    yield* settle()
    const taken = Effect.gen(function* () {
      yield* settle()
      return Chunk.toReadonlyArray(yield* Queue.takeAll(output))
    })
    const idle = { open: Effect.sync(() => ((idleNow = true), tailer.nudge())) }
    return { tailer, taken, reports, idle }
  })

/** The seqs a batch holds, a block's one a row. */
const seqs = (batch: Tailer.Batch) => batch.records.flatMap((record) => Array.from({ length: rowCount(record) }, (_, i) => record.seq + i))

/** A history record of about `size` bytes once framed. */
const big = (seq: number, size: number): Record => ({ kind: "history", seq, ts: seq, step: seq, values: { blob: "x".repeat(size) } })

describe("Tailer", () => {
  it.scoped("reads nothing past the flushed offset, even when more whole frames are on disk", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [, b] = appendFrames(journal, [histories(0, 5), histories(5, 5), histories(10, 5)])
      const { tailer, taken } = yield* startTailer(journal)

      tailer.flushedTo(b!.end)
      expect((yield* taken).map(seqs)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
      expect(tailer.state()).toMatchObject({ position: b!.end, lastSeq: 9, complete: false })

      tailer.flushedTo(journal.offset)
      expect((yield* taken).map(seqs)).toEqual([[10, 11, 12, 13, 14]])
    }))

  it.scoped("hands on what it read at once while the consumer is idle, and gathers while it is busy, with no timer", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [a, b, c] = appendFrames(journal, [histories(0, 3), histories(3, 3), histories(6, 3)])
      const { tailer, taken, idle } = yield* startTailer(journal, 0, { busy: true })

      tailer.flushedTo(a!.end)
      tailer.flushedTo(b!.end)
      expect(yield* taken).toEqual([])
      yield* idle.open
      expect((yield* taken).map(seqs)).toEqual([[0, 1, 2, 3, 4, 5]])

      tailer.flushedTo(c!.end)
      expect((yield* taken).map(seqs)).toEqual([[6, 7, 8]])
    }))

  it.scoped("hands on the last records at once, busy consumer or not, once the journal is whole", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [a, b] = appendFrames(journal, [histories(0, 3), histories(3, 3)])
      const { tailer, taken } = yield* startTailer(journal, 0, { busy: true })

      tailer.flushedTo(a!.end)
      expect(yield* taken).toEqual([])
      tailer.flushedTo(b!.end, true)
      expect((yield* taken).map(seqs)).toEqual([[0, 1, 2, 3, 4, 5]])
    }))

  it.scoped("cuts a batch at MAX_BATCH_RECORDS records, the server's cap, however few bytes they are", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const lines = Array.from({ length: MAX_BATCH_RECORDS + 5 }, (_, seq): Record => ({ kind: "output", seq, ts: seq, stream: "stdout", text: "." }))
      appendFrames(journal, [lines])
      const { tailer, taken } = yield* startTailer(journal)
      tailer.flushedTo(journal.offset)
      const batches = yield* taken
      expect(batches.map((batch) => batch.records.length)).toEqual([MAX_BATCH_RECORDS, 5])
      expect(batches.flatMap(seqs)).toEqual(lines.map((line) => line.seq))
    }))

  it.scoped("counts a block as the rows it stands for against MAX_BATCH_RECORDS, cutting it there", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      // One key a row: 24 bytes of columns, so MAX_BATCH_RECORDS + 5 rows are far below 1 MiB.
      appendFrames(journal, [histories(0, MAX_BATCH_RECORDS + 5)])
      const { tailer, taken } = yield* startTailer(journal)
      tailer.flushedTo(journal.offset)
      const batches = yield* taken
      expect(batches.map((batch) => batch.records.map((record) => [record.kind, record.seq, rowCount(record)]))).toEqual([
        [["historyBlock", 0, MAX_BATCH_RECORDS]],
        [["historyBlock", MAX_BATCH_RECORDS, 5]]
      ])
    }))

  it.scoped("hands on a batch as soon as one more record would take it past 1 MiB, busy consumer or not, splitting a frame if need be", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      // 10 frames of 3 records of ~50 kB: 20 records fit in 1 MiB, the 21st is the 3rd of frame 7
      const frames = appendFrames(journal, Array.from({ length: 10 }, (_, f) => [0, 1, 2].map((i) => big(f * 3 + i, 50_000))))
      const { tailer, taken, idle } = yield* startTailer(journal, 0, { busy: true })
      tailer.flushedTo(journal.offset)

      const full = yield* taken
      expect(full).toHaveLength(1)
      const batch = full[0]!
      const share = (frames[0]!.end - frames[0]!.offset) / 3
      expect(seqs(batch)).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect(batch.bytes).toBeLessThanOrEqual(Tailer.MAX_BATCH_BYTES)
      expect(batch.bytes + share).toBeGreaterThan(Tailer.MAX_BATCH_BYTES)

      yield* idle.open
      expect((yield* taken).map(seqs)).toEqual([Array.from({ length: 10 }, (_, i) => 20 + i)])
    }))

  it.scoped("waits out a torn frame at the flushed offset and reads it once it is whole", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [a] = appendFrames(journal, [histories(0, 4)])
      const [head, payload] = encodeFrame(histories(4, 4))
      const frame = Buffer.concat([head, payload])
      const half = Math.floor(frame.length / 2)
      fs.appendFileSync(journal.path, frame.subarray(0, half))
      const { tailer, taken, reports } = yield* startTailer(journal)

      tailer.flushedTo(a!.end + half)
      expect((yield* taken).map(seqs)).toEqual([[0, 1, 2, 3]])
      expect(tailer.state()).toMatchObject({ position: a!.end, damage: [] })

      fs.appendFileSync(journal.path, frame.subarray(half))
      tailer.flushedTo(a!.end + frame.length)
      expect((yield* taken).map(seqs)).toEqual([[4, 5, 6, 7]])
      expect(reports).toEqual([])
    }))

  it.scoped("reports a torn tail where the journal ends (final), and is then complete", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [a] = appendFrames(journal, [histories(0, 4)])
      const frame = Buffer.concat(encodeFrame(histories(4, 4)))
      fs.appendFileSync(journal.path, frame.subarray(0, 10))
      const { tailer, taken } = yield* startTailer(journal)
      tailer.flushedTo(a!.end + 10, true)
      expect((yield* taken).map(seqs)).toEqual([[0, 1, 2, 3]])
      const state = tailer.state()
      expect(state).toMatchObject({ complete: true, lastSeq: 3, position: a!.end + 10 })
      expect(state.damage.map((damage) => [damage.kind, damage.offset])).toEqual([["torn-tail", a!.end]])
    }))

  it.scoped("skips a corrupt frame with whole frames after it, says so, and names the seqs it lost", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [, b] = appendFrames(journal, [histories(0, 2), histories(2, 2), histories(4, 2)])
      const bytes = fs.readFileSync(journal.path)
      bytes[b!.offset + 10] = bytes[b!.offset + 10]! ^ 0xff
      fs.writeFileSync(journal.path, bytes)
      const { tailer, taken, reports } = yield* startTailer(journal)

      tailer.flushedTo(journal.offset)
      const batches = yield* taken
      expect(batches.map(seqs)).toEqual([[0, 1, 4, 5]])
      expect(batches.flatMap((batch) => batch.lost)).toEqual([[2, 3]])
      expect(reports).toHaveLength(1)
      expect(reports[0]).toContain(`at byte ${b!.offset}`)
      expect(reports[0]).toContain("corrupt-frame")
      expect((tailer.state()).damage.map((damage) => damage.kind)).toEqual(["corrupt-frame"])
    }))

  it.scoped("resumes from a cursor's seq: reads the whole journal once, hands on nothing below it, and knows its run record and end", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const run: Record = {
        kind: "run", seq: 0, ts: 0, runId: "r" as never, project: "p", name: "n", config: {}, tags: [], notes: null, group: null, jobType: null,
        host: "h", pid: 1, argv: [], gitCommit: null, sdkVersion: "0", resumed: false
      }
      appendFrames(journal, [[run, ...histories(1, 4)], histories(5, 5), [...histories(10, 4), { kind: "exit", seq: 14, ts: 14, exitCode: 0, signal: null, durationMs: 1 }]])
      const { tailer, taken } = yield* startTailer(journal, 7)
      tailer.flushedTo(journal.offset)
      expect((yield* taken).map(seqs)).toEqual([[7, 8, 9, 10, 11, 12, 13, 14]])
      expect(tailer.state()).toMatchObject({ lastSeq: 14, ended: true, run: { name: "n" } })
    }))

  it.scoped("hands on like history rows as the journal's column blocks, cut where a batch fills or the cursor falls", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      appendFrames(journal, [histories(0, 1500), histories(1500, 1000)])
      // A row of one key is 24 bytes of columns (step, ts, value): 700 rows fill a batch.
      const { tailer, taken } = yield* startTailer(journal, 500, { maxBatchBytes: 700 * 24 })
      tailer.flushedTo(journal.offset)
      const batches = yield* taken

      expect(batches.map((batch) => batch.records.map((record) => [record.kind, record.seq, rowCount(record)]))).toEqual([
        [["historyBlock", 500, 700]],
        [["historyBlock", 1200, 300], ["historyBlock", 1500, 400]],
        [["historyBlock", 1900, 600]]
      ])
      expect(batches.map((batch) => batch.bytes)).toEqual([700 * 24, 700 * 24, 600 * 24])
      expect(batches.flatMap((batch) => batch.records.flatMap((record) => (record.kind === "historyBlock" ? historyRows(record) : [record])))).toEqual(histories(500, 2000))
    }))
})
