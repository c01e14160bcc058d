/**
 * The Writer actor over a real journal whose appends can be made to fail, as a full or failing
 * disk makes them: a failed batch is written again, once, at the same offset, after the
 * supervisor's restart delay (passed with `TestClock`), and the synchronous path keeps order.
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
import { encodeFrame } from "../../src/journal/internal/frame.js"
import { histories, openJournal as openJournalAt, read, settle } from "../support/actors.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("writer")


const openJournal = Effect.suspend(() => openJournalAt(temp.file("journal.slog")))



/**
 * What each coming append call does: "ok" appends; "torn" writes the first half of the frame at
 * the journal's offset, as a write cut off by a failing disk does, then throws; "refused" throws
 * having written nothing. Calls past the plan append. Returns the number of calls so far.
 */
const planAppends = (journal: JournalWriter, plan: Array<"ok" | "torn" | "refused">) => {
  const append = journal.append.bind(journal)
  const calls = { count: 0 }
  journal.append = (records) => {
    calls.count++
    const step = plan.shift() ?? "ok"
    if (step === "ok") return append(records)
    if (step === "torn") {
      const frame = Buffer.concat(encodeFrame(records))
      fs.writeSync(journal.fd, frame, 0, frame.length >> 1, journal.offset)
    }
    throw new JournalWriteFailed({ path: journal.path, offset: journal.offset, cause: new Error(`ENOSPC (${step})`) })
  }
  return calls
}

/** Starts a Writer over `journal` under the real restart schedule; `reports` collects what it reports. */
const startWriter = (journal: JournalWriter, inboxCapacity = 4) =>
  Effect.gen(function* () {
    const reports: Array<string> = []
    const writer = yield* Writer.make({ journal, inboxCapacity, durability: "buffered" })
    yield* supervise("the journal Writer", writer.loop, { report: (message) => reports.push(message) })
    yield* settle()
    return { writer, reports }
  })

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
      const writer = yield* Writer.make({ journal, inboxCapacity: 4, durability: "buffered", onFlushed: (offset) => offsets.push(offset) })
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

  it.scoped("after two failed appends, one of them torn half-way, is restarted by its supervisor and writes every record once, in order, undamaged", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const calls = planAppends(journal, ["ok", "torn", "refused"])
      const { writer, reports } = yield* startWriter(journal)

      writer.submit(histories(0, 2))
      writer.submit(histories(2, 3))
      yield* settle(() => reports.length === 1)
      // The first batch landed; the second tore half-way and the fiber died.
      expect(calls.count).toBe(2)
      expect(reports).toHaveLength(1)
      expect(reports[0]).toContain("the journal Writer failed and will be restarted")
      expect(reports[0]).toContain("ENOSPC (torn)")
      const torn = read(journal)
      expect(torn.records).toEqual(histories(0, 2))
      expect(torn.damage.map((d) => d.kind)).toEqual(["torn-tail"])
      // A batch submitted while the Writer is down waits behind the failed one.
      writer.submit(histories(5, 1))

      // No retry before the first restart delay (10 ms) has passed.
      yield* TestClock.adjust("9 millis")
      expect(calls.count).toBe(2)
      yield* TestClock.adjust("1 millis")
      yield* settle(() => reports.length === 2)
      expect(calls.count).toBe(3)
      expect(reports[1]).toContain("ENOSPC (refused)")

      // The second delay doubles to 20 ms; then the same batch goes to the same offset.
      yield* TestClock.adjust("19 millis")
      expect(calls.count).toBe(3)
      yield* TestClock.adjust("1 millis")
      yield* settle(() => read(journal).records.length === 6)

      const scan = read(journal)
      expect(scan.damage).toEqual([])
      expect(scan.records).toEqual(histories(0, 6))
      expect(scan.frames).toBe(3)
      expect(scan.end).toBe(fs.statSync(journal.path).size)
      expect(reports).toHaveLength(2)
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

  it.scoped("writeNow on a refusing disk throws and keeps every record, to be written in order by the next write", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      planAppends(journal, ["refused", "refused"])
      // No actor fiber: only the synchronous path runs here.
      const writer = yield* Writer.make({ journal, inboxCapacity: 4, durability: "buffered" })

      expect(() => writer.writeNow(histories(0, 1))).toThrow(JournalWriteFailed)
      expect(() => writer.writeNow(histories(1, 2))).toThrow(JournalWriteFailed)
      expect(read(journal).records).toEqual([])

      writer.writeNow(histories(3, 1))
      const scan = read(journal)
      expect(scan.records).toEqual(histories(0, 4))
      expect(scan.damage).toEqual([])
    }))

  it.scoped("refuses a batch when its inbox holds inboxCapacity batches", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const writer = yield* Writer.make({ journal, inboxCapacity: 2, durability: "buffered" })
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
      const writer = yield* Writer.make({ journal, inboxCapacity: 4, durability: "fsync" })
      yield* supervise("the journal Writer", writer.loop, { report: () => {} })
      writer.submit(histories(0, 2))
      yield* settle(() => read(journal).records.length === 2)
      writer.submit(histories(2, 2))
      // The fdatasync resumes the fiber from libuv's thread pool, in real time: poll, with a deadline.
      const deadline = Date.now() + 10_000
      while (read(journal).records.length < 4 && Date.now() < deadline) {
        yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      }
      expect(read(journal).records).toEqual(histories(0, 4))
    }))
})
