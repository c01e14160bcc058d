/**
 * The Writer actor over a real journal whose appends can be made to fail, as a full or failing
 * disk makes them: refused batches are held and written again, in order, once the disk takes
 * writes (at the next flush or RETRY_INTERVAL later, on the TestClock); past the cap the newest are
 * dropped, counted, and the journal's seqs stay contiguous; the synchronous path keeps order and
 * never throws. (test/runtime/DiskFull.test.ts does the same on a real full disk.)
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import { describe } from "vitest"
import { supervise } from "../../src/actors/Supervisor.js"
import * as Writer from "../../src/actors/Writer.js"
import { JournalWriteFailed } from "../../src/journal/JournalError.js"
import { JournalWriter } from "../../src/journal/JournalWriter.js"
import { histories, openJournal as openJournalAt, read, settle } from "../support/actors.js"
import { poll } from "../support/poll.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("writer")

const openJournal = Effect.suspend(() => openJournalAt(temp.file("journal.slog")))

/**
 * What each coming frame append does: "ok" appends; "torn" writes the first half of the frame at
 * the journal's offset, as a write cut off by a failing disk does, then throws; "refused" throws
 * having written nothing. Calls past the plan append. Returns the number of calls so far.
 */
const planAppends = (journal: JournalWriter, plan: Array<"ok" | "torn" | "refused">) => {
  const append = journal.appendFrame.bind(journal)
  const calls = { count: 0 }
  journal.appendFrame = (frame) => {
    calls.count++
    const step = plan.shift() ?? "ok"
    if (step === "ok") return append(frame)
    if (step === "torn") {
      const bytes = Buffer.concat(frame.parts)
      fs.writeSync(journal.fd, bytes, 0, bytes.length >> 1, journal.offset)
    }
    throw new JournalWriteFailed({ path: journal.path, offset: journal.offset, cause: new Error(`ENOSPC (${step})`) })
  }
  return calls
}

/** Makes frame appends throw, as a full disk does, for as long as `refusing()` holds. */
const refuseWhile = (journal: JournalWriter, refusing: () => boolean) => {
  const append = journal.appendFrame.bind(journal)
  journal.appendFrame = (frame) => {
    if (refusing()) throw new JournalWriteFailed({ path: journal.path, offset: journal.offset, cause: new Error("ENOSPC") })
    append(frame)
  }
}

/** A Writer over `journal` (no fiber: only the synchronous path runs); `reports` collects what it reports. */
const makeWriter = (journal: JournalWriter, options: { readonly inboxCapacity?: number; readonly maxHeldBytes?: number } = {}) =>
  Effect.gen(function* () {
    const reports: Array<string> = []
    const writer = yield* Writer.make({
      journal,
      inboxCapacity: options.inboxCapacity ?? 4,
      durability: "buffered",
      maxHeldBytes: options.maxHeldBytes ?? 2 ** 20,
      report: (message) => reports.push(message)
    })
    return { writer, reports }
  })

/** The same, with its fiber running under the real restart schedule. */
const startWriter = (journal: JournalWriter, options: { readonly inboxCapacity?: number; readonly maxHeldBytes?: number } = {}) =>
  Effect.gen(function* () {
    const made = yield* makeWriter(journal, options)
    yield* supervise("the journal Writer", made.writer.loop, { report: (message) => made.reports.push(message) })
    yield* settle()
    return made
  })

/** The bytes of the frame `records` make. */
const frameBytes = (count: number) => JournalWriter.frame(histories(0, count)).bytes

describe("Writer", () => {
  it.scoped("writes each submitted batch as one frame, in order", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { writer } = yield* startWriter(journal)
      expect(writer.submit(histories(0, 3))).toBe(true)
      expect(writer.submit(histories(3, 2))).toBe(true)
      yield* settle(() => read(journal).records.length === 5)

      const scan = read(journal)
      expect(scan.records).toEqual(histories(0, 5))
      expect(scan.frames).toBe(2)
      expect(writer.flushedOffset()).toBe(fs.statSync(journal.path).size)
    }))

  it.scoped("reports the flushed offset once per flush that moved it, never once per record", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const offsets: Array<number> = []
      const writer = yield* Writer.make({ journal, inboxCapacity: 4, durability: "buffered", maxHeldBytes: 2 ** 20, report: () => {}, onFlushed: (offset) => offsets.push(offset) })
      yield* supervise("the journal Writer", writer.loop, { report: () => {} })
      yield* settle()
      expect(offsets).toEqual([])
      writer.submit(histories(0, 3))
      yield* settle(() => offsets.length === 1)
      expect(offsets).toEqual([fs.statSync(journal.path).size])
      writer.writeNow(histories(3, 4))
      writer.writeNow([])
      expect(offsets).toEqual([offsets[0], fs.statSync(journal.path).size])
      expect(read(journal).records).toEqual(histories(0, 7))
    }))

  it.scoped("holds the batches a failing disk refused, one torn half-way, and writes each once, in order, when the disk takes writes again", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const calls = planAppends(journal, ["ok", "torn", "refused"])
      const { writer, reports } = yield* startWriter(journal)

      writer.submit(histories(0, 2))
      writer.submit(histories(2, 3))
      yield* settle(() => reports.length === 1)
      // The first batch landed; the second tore half-way and is held, the fiber alive.
      expect(calls.count).toBe(2)
      expect(reports).toHaveLength(1)
      expect(reports[0]).toContain("ENOSPC (torn)")
      expect(reports[0]).toContain("held in memory")
      expect(read(journal).records).toEqual(histories(0, 2))
      // A flush tries the held batch again first (refused, and not reported again), and holds the new one behind it.
      writer.submit(histories(5, 1))
      yield* settle(() => calls.count === 3)
      expect(reports).toHaveLength(1)
      expect(read(journal).records).toEqual(histories(0, 2))

      // With no flush, the next try comes RETRY_INTERVAL later.
      yield* TestClock.adjust("999 millis")
      expect(calls.count).toBe(3)
      yield* TestClock.adjust("1 millis")
      yield* settle(() => read(journal).records.length === 6)

      const scan = read(journal)
      expect(scan.damage).toEqual([])
      expect(scan.records).toEqual(histories(0, 6))
      expect(scan.frames).toBe(3)
      expect(scan.end).toBe(fs.statSync(journal.path).size)
      expect(reports).toHaveLength(2)
      expect(reports[1]).toContain("takes journal writes again")
      expect(writer.status()).toEqual({ dropped: 0, dropReason: null })
    }))

  it.scoped("past maxHeldBytes drops the newest batches, counts them, and numbers the records after them down: the journal's seqs stay contiguous", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      let refusing = true
      refuseWhile(journal, () => refusing)
      // Room for two frames of two records.
      const { writer, reports } = yield* makeWriter(journal, { maxHeldBytes: 2 * frameBytes(2) })
      for (let from = 0; from < 10; from += 2) writer.writeNow(histories(from, 2))
      expect(read(journal).records).toEqual([])
      expect(writer.status()).toMatchObject({ dropped: 6 })
      expect(writer.status().dropReason).toContain("ENOSPC")
      expect(writer.status().dropReason).toContain("maxUnwrittenMb")
      expect(reports.filter((report) => report.includes("dropped"))).toHaveLength(1)

      refusing = false
      writer.writeNow(histories(10, 2))
      const scan = read(journal)
      expect(scan.damage).toEqual([])
      // Seqs 0–3 held and written, 4–9 dropped, 10–11 written as 4–5.
      expect(scan.records).toEqual([...histories(0, 4), ...histories(10, 2).map((record, i) => ({ ...record, seq: 4 + i }))])
      expect(writer.status().dropped).toBe(6)
    }))

  it.scoped("when the run ends on a refusing disk, drops what it still holds, says so, and closes the journal", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      refuseWhile(journal, () => true)
      const { writer, reports } = yield* makeWriter(journal)
      writer.writeNow(histories(0, 3))
      writer.close(histories(3, 1))
      expect(writer.status()).toMatchObject({ dropped: 4 })
      expect(writer.status().dropReason).toContain("4 still held when the run ended")
      expect(reports.at(-1)).toContain("4 records could not be written before the run ended")
      expect(journal.fd).toBe(-1)
    }))

  it.scoped("writeNow writes the inbox first, then its records, before it returns", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { writer } = yield* startWriter(journal)
      // Submitted but not yet written: the fiber has not had a turn since.
      writer.submit(histories(0, 2))
      writer.writeNow(histories(2, 2))
      const scan = read(journal)
      expect(scan.records).toEqual(histories(0, 4))
      expect(scan.frames).toBe(2)
    }))

  it.scoped("writeNow on a refusing disk never throws and holds every record, to be written in order by the next write", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      planAppends(journal, ["refused", "refused"])
      const { writer, reports } = yield* makeWriter(journal)

      expect(() => writer.writeNow(histories(0, 1))).not.toThrow()
      expect(() => writer.writeNow(histories(1, 2))).not.toThrow()
      expect(read(journal).records).toEqual([])
      expect(reports).toHaveLength(1)

      writer.writeNow(histories(3, 1))
      const scan = read(journal)
      expect(scan.records).toEqual(histories(0, 4))
      expect(scan.damage).toEqual([])
      expect(reports).toHaveLength(2)
    }))

  it.scoped("refuses a batch when its inbox holds inboxCapacity batches", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { writer } = yield* makeWriter(journal, { inboxCapacity: 2 })
      expect(writer.submit(histories(0, 1))).toBe(true)
      expect(writer.submit(histories(1, 1))).toBe(true)
      expect(writer.submit(histories(2, 1))).toBe(false)

      writer.writeNow([])
      expect(read(journal).records).toEqual(histories(0, 2))
      expect(writer.submit(histories(2, 1))).toBe(true)
    }))

  it.scoped("with durability \"fsync\" still writes every batch, in order", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const writer = yield* Writer.make({ journal, inboxCapacity: 4, durability: "fsync", maxHeldBytes: 2 ** 20, report: () => {} })
      yield* supervise("the journal Writer", writer.loop, { report: () => {} })
      writer.submit(histories(0, 2))
      yield* settle(() => read(journal).records.length === 2)
      writer.submit(histories(2, 2))
      // The fdatasync resumes the fiber from libuv's thread pool, in real time: poll, with a deadline.
      yield* Effect.promise(() => poll("the second batch's fdatasync", () => (read(journal).records.length >= 4 ? true : undefined)))
      expect(read(journal).records).toEqual(histories(0, 4))
    }))
})
