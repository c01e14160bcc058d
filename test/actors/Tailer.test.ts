/**
 * The Tailer on a real journal, time from TestClock: it reads only up to the flushed offset, waits
 * out a torn tail, batches by size (1 MiB of frame bytes) and by time (200 ms after the first
 * record), and resumes from an upload cursor without handing on anything below its ackSeq.
 */
import { expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import { describe } from "vitest"
import * as Tailer from "../../src/actors/Tailer.js"
import { encodeFrame } from "../../src/journal/internal/frame.js"
import type { JournalWriter } from "../../src/journal/JournalWriter.js"
import * as UploadCursor from "../../src/runtime/UploadCursor.js"
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

const startTailer = (journal: JournalWriter, from: UploadCursor.UploadCursor = UploadCursor.start) =>
  Effect.gen(function* () {
    const output = yield* Queue.unbounded<Tailer.Batch>()
    const reports: Array<string> = []
    const tailer = yield* Tailer.make({ journal: journal.path, from, output, report: (message) => reports.push(message) })
    yield* Effect.forkScoped(tailer.loop)
    yield* settle()
    const taken = Effect.gen(function* () {
      yield* settle()
      return Chunk.toReadonlyArray(yield* Queue.takeAll(output))
    })
    return { tailer, taken, reports }
  })

/** The seqs a batch holds, a block's one a row. */
const seqs = (batch: Tailer.Batch) => batch.records.flatMap((record) => Array.from({ length: rowCount(record) }, (_, i) => record.seq + i))

/** A history record of about `size` bytes once framed. */
const big = (seq: number, size: number): Record => ({ kind: "history", seq, ts: seq, step: seq, values: { blob: "x".repeat(size) } })

describe("Tailer", () => {
  it.scoped("cuts a batch at MAX_BATCH_RECORDS records, the server's cap, however few bytes they are", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const lines = Array.from({ length: MAX_BATCH_RECORDS + 5 }, (_, seq): Record => ({ kind: "output", seq, ts: seq, stream: "stdout", text: "." }))
      appendFrames(journal, [lines])
      const { tailer, taken } = yield* startTailer(journal)
      tailer.flushedTo(journal.offset)
      yield* TestClock.adjust(Tailer.BATCH_WINDOW)
      const batches = yield* taken
      expect(batches.map((batch) => batch.records.length)).toEqual([MAX_BATCH_RECORDS, 5])
      expect(batches.flatMap(seqs)).toEqual(lines.map((line) => line.seq))
    }))

  it.scoped("reads nothing past the flushed offset, even when more whole frames are on disk", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [, b] = appendFrames(journal, [histories(0, 5), histories(5, 5), histories(10, 5)])
      const { tailer, taken } = yield* startTailer(journal)

      tailer.flushedTo(b!.end)
      yield* TestClock.adjust("200 millis")
      const first = yield* taken
      expect(first.map(seqs)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
      expect(tailer.position()).toBe(b!.end)

      tailer.flushedTo(journal.offset)
      yield* TestClock.adjust("200 millis")
      expect((yield* taken).map(seqs)).toEqual([[10, 11, 12, 13, 14]])
    }))

  it.scoped("sends a partial batch 200 ms after its first record, with the records that came meanwhile", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [a, b, c] = appendFrames(journal, [histories(0, 3), histories(3, 3), histories(6, 3)])
      const { tailer, taken } = yield* startTailer(journal)

      tailer.flushedTo(a!.end)
      yield* TestClock.adjust("150 millis")
      tailer.flushedTo(b!.end)
      yield* TestClock.adjust("49 millis")
      expect(yield* taken).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect((yield* taken).map(seqs)).toEqual([[0, 1, 2, 3, 4, 5]])

      // the next batch's window starts at its own first record
      yield* TestClock.adjust("500 millis")
      tailer.flushedTo(c!.end)
      yield* TestClock.adjust("199 millis")
      expect(yield* taken).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect((yield* taken).map(seqs)).toEqual([[6, 7, 8]])
    }))

  it.scoped("hands on a batch as soon as one more record would take it past 1 MiB, splitting a frame if need be", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      // 10 frames of 3 records of ~50 kB: 20 records fit in 1 MiB, the 21st is the 3rd of frame 7
      const frames = appendFrames(journal, Array.from({ length: 10 }, (_, f) => [0, 1, 2].map((i) => big(f * 3 + i, 50_000))))
      const { tailer, taken } = yield* startTailer(journal)
      tailer.flushedTo(journal.offset)

      const full = yield* taken // no time has passed: only the size rule can have sent it
      expect(full).toHaveLength(1)
      const batch = full[0]!
      const share = (frames[0]!.end - frames[0]!.offset) / 3
      expect(seqs(batch)).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect(batch.bytes).toBeLessThanOrEqual(Tailer.MAX_BATCH_BYTES)
      expect(batch.bytes + share).toBeGreaterThan(Tailer.MAX_BATCH_BYTES)
      // the split frame (records 18..20) is marked at its start: the cursor can only move there
      expect(batch.marks.at(-1)).toEqual({ offset: frames[6]!.offset, seq: 18 })
      expect(batch.marks.at(-2)).toEqual({ offset: frames[5]!.end, seq: 18 })

      yield* TestClock.adjust("200 millis")
      const rest = yield* taken
      expect(rest.map(seqs)).toEqual([Array.from({ length: 10 }, (_, i) => 20 + i)])
      expect(rest[0]!.marks[0]).toEqual({ offset: frames[6]!.offset, seq: 20 })
      expect(rest[0]!.marks.at(-1)).toEqual({ offset: frames[9]!.end, seq: 30 })
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
      yield* TestClock.adjust("200 millis")
      expect((yield* taken).map(seqs)).toEqual([[0, 1, 2, 3]])
      expect(tailer.position()).toBe(a!.end)

      fs.appendFileSync(journal.path, frame.subarray(half))
      tailer.flushedTo(a!.end + frame.length)
      yield* TestClock.adjust("200 millis")
      expect((yield* taken).map(seqs)).toEqual([[4, 5, 6, 7]])
      expect(reports).toEqual([])
    }))

  it.scoped("skips a corrupt frame with whole frames after it, and says so", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [, b] = appendFrames(journal, [histories(0, 2), histories(2, 2), histories(4, 2)])
      const bytes = fs.readFileSync(journal.path)
      bytes[b!.offset + 10] = bytes[b!.offset + 10]! ^ 0xff
      fs.writeFileSync(journal.path, bytes)
      const { tailer, taken, reports } = yield* startTailer(journal)

      tailer.flushedTo(journal.offset)
      yield* TestClock.adjust("200 millis")
      expect((yield* taken).map(seqs)).toEqual([[0, 1, 4, 5]])
      expect(reports).toHaveLength(1)
      expect(reports[0]).toContain(`at byte ${b!.offset}: corrupt-frame`)
    }))

  it.scoped("resumes from a cursor: reads from its offset and hands on nothing below its ackSeq", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [, b] = appendFrames(journal, [histories(0, 5), histories(5, 5), histories(10, 5)])
      const { tailer, taken } = yield* startTailer(journal, { offset: b!.offset, ackSeq: 7 })
      tailer.flushedTo(journal.offset)
      yield* TestClock.adjust("200 millis")
      const batches = yield* taken
      expect(batches.map(seqs)).toEqual([[7, 8, 9, 10, 11, 12, 13, 14]])
      expect(batches[0]!.marks[0]).toEqual({ offset: b!.offset, seq: 7 })
    }))

  it.scoped("hands on like history rows as the journal's column blocks, cut where a batch fills or the cursor falls", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const [a, b] = appendFrames(journal, [histories(0, 1500), histories(1500, 1000)])
      const output = yield* Queue.unbounded<Tailer.Batch>()
      // A row of one key is 24 bytes of columns (step, ts, value): 700 rows fill a batch.
      const tailer = yield* Tailer.make({ journal: journal.path, from: { offset: a!.offset, ackSeq: 500 }, output, maxBatchBytes: 700 * 24 })
      yield* Effect.forkScoped(tailer.loop)
      tailer.flushedTo(journal.offset)
      yield* settle()
      yield* TestClock.adjust("200 millis")
      yield* settle()
      const batches = Chunk.toReadonlyArray(yield* Queue.takeAll(output))

      expect(batches.map((batch) => batch.records.map((record) => [record.kind, record.seq, rowCount(record)]))).toEqual([
        [["historyBlock", 500, 700]],
        [["historyBlock", 1200, 300], ["historyBlock", 1500, 400]],
        [["historyBlock", 1900, 600]]
      ])
      expect(batches.map((batch) => batch.bytes)).toEqual([700 * 24, 700 * 24, 600 * 24])
      expect(batches.flatMap((batch) => batch.records.flatMap((record) => (record.kind === "historyBlock" ? historyRows(record) : [record])))).toEqual(histories(500, 2000))
      expect(batches.map((batch) => batch.marks)).toEqual([
        [{ offset: a!.offset, seq: 500 }],
        [{ offset: a!.offset, seq: 1200 }, { offset: a!.end, seq: 1500 }, { offset: b!.offset, seq: 1500 }],
        [{ offset: b!.offset, seq: 1900 }, { offset: b!.end, seq: 2500 }]
      ])
    }))
})
