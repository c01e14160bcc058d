/**
 * The Buffer actor on its own, handing its batches straight to a real journal: when a batch goes
 * (interval or batch size, time from `TestClock`), what a refused hand-off does, and what a full
 * queue does.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { describe } from "vitest"
import * as Buffer from "../../src/actors/Buffer.js"
import { JournalWriter } from "../../src/journal/JournalWriter.js"
import { histories, history, openJournal as openJournalAt, read, settle } from "../support/actors.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("buffer")

const FLUSH_MS = 100


const openJournal = Effect.suspend(() => openJournalAt(temp.file("journal.slog")))



/**
 * Starts a Buffer whose hand-off appends each batch to `journal` as one frame, as the Writer
 * would, except while `accepting()` is false: then it refuses, as a full Writer inbox does.
 */
const startBuffer = (
  journal: JournalWriter,
  options: { capacity: number; batchSize: number; accepting?: () => boolean }
) =>
  Effect.gen(function* () {
    const handOffs = { offered: 0, refused: 0 }
    const buffer = yield* Buffer.make({
      capacity: options.capacity,
      batchSize: options.batchSize,
      flushInterval: `${FLUSH_MS} millis`,
      handOff: (batch) => {
        handOffs.offered++
        if (options.accepting !== undefined && !options.accepting()) {
          handOffs.refused++
          return false
        }
        journal.append(batch)
        return true
      }
    })
    yield* Effect.forkScoped(buffer.loop)
    // Let the loop reach its first wait before the test starts offering.
    yield* settle()
    return { buffer, handOffs }
  })

describe("Buffer", () => {
  it.scoped("hands nothing on before the flush interval has passed, then everything queued, in one batch", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { buffer } = yield* startBuffer(journal, { capacity: 64, batchSize: 32 })
      const records = histories(0, 5)
      for (const record of records) expect(buffer.offer(record)).toBe(true)

      yield* settle()
      yield* TestClock.adjust(`${FLUSH_MS - 1} millis`)
      expect(read(journal).records).toEqual([])

      yield* TestClock.adjust("1 millis")
      const scan = read(journal)
      expect(scan.records).toEqual(records)
      expect(scan.frames).toBe(1)
      expect(scan.damage).toEqual([])
    }))

  it.scoped("flushes at the next multiple of the interval on the clock, so a record offered late in one waits only for its end", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { buffer } = yield* startBuffer(journal, { capacity: 64, batchSize: 32 })
      yield* TestClock.adjust(`${FLUSH_MS + 70} millis`)
      const [first, second] = histories(0, 2)
      expect(buffer.offer(first!)).toBe(true)
      yield* settle()
      yield* TestClock.adjust("29 millis")
      expect(read(journal).records).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(read(journal).records).toEqual([first])
      // The next record, offered at once, waits for the next multiple: a whole interval.
      expect(buffer.offer(second!)).toBe(true)
      yield* settle()
      yield* TestClock.adjust(`${FLUSH_MS - 1} millis`)
      expect(read(journal).records).toEqual([first])
      yield* TestClock.adjust("1 millis")
      expect(read(journal).records).toEqual([first, second])
    }))

  it.scoped("hands on a full batch as soon as batchSize records wait, without waiting for the interval", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { buffer } = yield* startBuffer(journal, { capacity: 64, batchSize: 8 })
      for (const record of histories(0, 7)) buffer.offer(record)
      yield* settle()
      // One short of a batch: it waits for the interval.
      expect(read(journal).records).toEqual([])

      buffer.offer(history(7))
      yield* settle(() => journal.offset > 8)
      expect(read(journal).records).toEqual(histories(0, 8))
      expect(yield* TestClock.currentTimeMillis).toBe(0)
    }))

  it.scoped("keeps a refused batch, with everything offered meanwhile, and retries it every interval in order", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      let accepting = false
      const { buffer, handOffs } = yield* startBuffer(journal, { capacity: 64, batchSize: 32, accepting: () => accepting })
      for (const record of histories(0, 3)) buffer.offer(record)

      yield* TestClock.adjust(`${FLUSH_MS} millis`)
      expect(handOffs.refused).toBe(1)
      for (const record of histories(3, 2)) buffer.offer(record)

      yield* TestClock.adjust(`${FLUSH_MS} millis`)
      expect(handOffs.refused).toBe(2)
      expect(read(journal).records).toEqual([])

      accepting = true
      yield* TestClock.adjust(`${FLUSH_MS} millis`)
      const scan = read(journal)
      expect(scan.records).toEqual(histories(0, 5))
      expect(scan.frames).toBe(1)
      expect(handOffs.offered).toBe(3)
    }))

  it.scoped("takes nothing and says so when full, and hands on exactly what it took", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { buffer } = yield* startBuffer(journal, { capacity: 4, batchSize: 16 })
      expect(histories(0, 4).map(buffer.offer)).toEqual([true, true, true, true])
      expect(buffer.offer(history(4))).toBe(false)

      yield* TestClock.adjust(`${FLUSH_MS} millis`)
      expect(read(journal).records).toEqual(histories(0, 4))
      // Room again after the flush.
      expect(buffer.offer(history(4))).toBe(true)
    }))

  it.scoped("sets no timer while it is empty, so an idle run does not keep the process alive", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { buffer } = yield* startBuffer(journal, { capacity: 64, batchSize: 32 })
      expect((yield* TestClock.sleeps()).length).toBe(0)

      buffer.offer(history(0))
      yield* settle(() => false)
      expect((yield* TestClock.sleeps()).length).toBe(1)

      yield* TestClock.adjust(`${FLUSH_MS} millis`)
      expect(read(journal).records).toEqual([history(0)])
      expect((yield* TestClock.sleeps()).length).toBe(0)
    }))

  it.scoped("takeAll empties the queue, oldest first, so a caller can write the records itself", () =>
    Effect.gen(function* () {
      const journal = yield* openJournal
      const { buffer } = yield* startBuffer(journal, { capacity: 8, batchSize: 8 })
      for (const record of histories(0, 3)) buffer.offer(record)
      expect(buffer.takeAll()).toEqual(histories(0, 3))
      expect(buffer.takeAll()).toEqual([])

      // What was taken is gone: the next interval hands on nothing.
      yield* TestClock.adjust(`${FLUSH_MS} millis`)
      expect(read(journal).records).toEqual([])
    }))
})
