/**
 * The wired data path, Buffer → Writer → a real journal: when records reach the disk under each
 * durability (time from `TestClock`), what a full Buffer or a full Writer inbox does, that closing
 * the scope drains, that a refusing disk loses nothing, and that a million records pass through
 * in bounded memory.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import { describe } from "vitest"
import { JournalWriteFailed } from "../../src/journal/JournalError.js"
import { readEntries } from "../../src/journal/JournalReader.js"
import { JournalWriter } from "../../src/journal/JournalWriter.js"
import * as Pipeline from "../../src/runtime/Pipeline.js"
import type { Durability } from "../../src/schemas/Settings.js"
import { histories, history, read, settle } from "../support/actors.js"
import { garbageCollector } from "../support/gc.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("pipeline")

const FLUSH_MS = 100

const createJournal = () => Either.getOrThrow(JournalWriter.create(temp.file("journal.slog")))


/** Makes the journal's appends throw, as a full disk does, for as long as `refusing()` holds. */
const refuseWhile = (journal: JournalWriter, refusing: () => boolean) => {
  const append = journal.appendFrame.bind(journal)
  journal.appendFrame = (frame) => {
    if (refusing()) throw new JournalWriteFailed({ path: journal.path, offset: journal.offset, cause: new Error("ENOSPC") })
    append(frame)
  }
}

/**
 * Starts a Pipeline over `journal` in the current scope (which closes the journal when it
 * closes); `reports` collects what it reports.
 */
const startPipeline = (
  journal: JournalWriter,
  settings: { bufferSize: number; batchSize: number; durability?: Durability }
) =>
  Effect.gen(function* () {
    const reports: Array<string> = []
    const pipeline = yield* Pipeline.make({
      journal,
      settings: { flushIntervalMs: FLUSH_MS, durability: "buffered", maxUnwrittenMb: 64, ...settings },
      report: (message) => reports.push(message)
    })
    yield* settle()
    return { pipeline, reports }
  })

describe("Pipeline", () => {
  it.scoped("writes nothing before the flush interval has passed, and everything once it has", () =>
    Effect.gen(function* () {
      const journal = createJournal()
      const { pipeline } = yield* startPipeline(journal, { bufferSize: 64, batchSize: 32 })
      histories(0, 10).forEach(pipeline.write)

      yield* settle()
      yield* TestClock.adjust(`${FLUSH_MS - 1} millis`)
      expect(read(journal).records).toEqual([])

      yield* TestClock.adjust("1 millis")
      yield* settle(() => read(journal).records.length === 10)
      const scan = read(journal)
      expect(scan.records).toEqual(histories(0, 10))
      expect(scan.damage).toEqual([])
      expect(pipeline.flushedOffset()).toBe(scan.end)
    }))

  it.scoped("writes a full batch without waiting for the interval", () =>
    Effect.gen(function* () {
      const journal = createJournal()
      const { pipeline } = yield* startPipeline(journal, { bufferSize: 64, batchSize: 8 })
      histories(0, 8).forEach(pipeline.write)
      yield* settle(() => read(journal).records.length === 8)
      expect(read(journal).records).toEqual(histories(0, 8))
      expect(yield* TestClock.currentTimeMillis).toBe(0)

      // One record short of a batch waits for the interval.
      pipeline.write(history(8))
      yield* settle()
      expect(read(journal).records).toHaveLength(8)

      yield* TestClock.adjust(`${FLUSH_MS} millis`)
      yield* settle(() => read(journal).records.length === 9)
      expect(read(journal).records).toEqual(histories(0, 9))
    }))

  it.scoped("when the Buffer is full, writes the queued records and the new one itself, before write returns", () =>
    Effect.gen(function* () {
      const journal = createJournal()
      const { pipeline } = yield* startPipeline(journal, { bufferSize: 4, batchSize: 4096 })
      histories(0, 4).forEach(pipeline.write)
      expect(read(journal).records).toEqual([])

      pipeline.write(history(4))
      expect(read(journal).records).toEqual(histories(0, 5))
    }))

  it.scoped("while the disk refuses, the Writer holds the Buffer's batches and writes them, in order, at the first flush after the disk is back", () =>
    Effect.gen(function* () {
      const journal = createJournal()
      let refusing = true
      refuseWhile(journal, () => refusing)
      const { pipeline, reports } = yield* startPipeline(journal, { bufferSize: 64, batchSize: 4 })

      for (let batch = 0; batch < 6; batch++) {
        histories(batch * 4, 4).forEach(pipeline.write)
        yield* settle()
      }
      histories(24, 2).forEach(pipeline.write)
      expect(reports).toHaveLength(1)
      expect(reports[0]).toContain("held in memory")
      expect(read(journal).records).toEqual([])

      refusing = false
      yield* TestClock.adjust(`${FLUSH_MS} millis`)
      yield* settle(() => read(journal).records.length === 26)
      const scan = read(journal)
      expect(scan.records).toEqual(histories(0, 26))
      expect(scan.damage).toEqual([])
      expect(reports).toHaveLength(2)
      expect(pipeline.status()).toEqual({ dropped: 0, dropReason: null })
    }))

  it.effect("closing the scope writes every record still waiting, and closes the journal", () =>
    Effect.gen(function* () {
      const journal = createJournal()
      const scope = yield* Scope.make()
      const { pipeline } = yield* startPipeline(journal, { bufferSize: 64, batchSize: 32 }).pipe(Scope.extend(scope))
      histories(0, 7).forEach(pipeline.write)
      yield* settle()
      expect(read(journal).records).toEqual([])

      yield* Scope.close(scope, Exit.void)
      expect(read(journal).records).toEqual(histories(0, 7))
      expect(journal.fd).toBe(-1)
    }))

  it.scoped("with durability \"sync\", every record is in the journal as soon as write returns", () =>
    Effect.gen(function* () {
      const journal = createJournal()
      const { pipeline } = yield* startPipeline(journal, { bufferSize: 64, batchSize: 32, durability: "sync" })
      for (const record of histories(0, 5)) {
        pipeline.write(record)
        expect(read(journal).records.at(-1)).toEqual(record)
      }
      expect(read(journal).records).toEqual(histories(0, 5))
    }))

  it.scoped("never throws while the disk refuses: reports once, keeps the records, and writes them in order when it can", () =>
    Effect.gen(function* () {
      const journal = createJournal()
      let refusing = true
      refuseWhile(journal, () => refusing)
      const { pipeline, reports } = yield* startPipeline(journal, { bufferSize: 64, batchSize: 32, durability: "sync" })

      for (const record of histories(0, 3)) expect(() => pipeline.write(record)).not.toThrow()
      expect(reports).toHaveLength(1)
      expect(reports[0]).toContain("held in memory")
      expect(read(journal).records).toEqual([])

      refusing = false
      pipeline.write(history(3))
      const scan = read(journal)
      expect(scan.records).toEqual(histories(0, 4))
      expect(scan.damage).toEqual([])
      expect(reports).toHaveLength(2)
    }))
})

describe("Pipeline memory", () => {
  it("carries a million records into the journal, in seq order, with its heap bounded by its capacities", async () => {
    const TOTAL = 1_000_000
    const CHECKPOINT = 100_000
    // An unbounded queue of 1M history records would hold well over 100 MiB of objects.
    const BOUND = 64 * 1024 * 1024
    const journal = createJournal()
    const growth: Array<number> = []
    const collectGarbage = garbageCollector()

    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { pipeline } = yield* startPipeline(journal, { bufferSize: 16, batchSize: 4096 })
          collectGarbage()
          const baseline = process.memoryUsage().heapUsed
          for (let seq = 0; seq < TOTAL; seq++) {
            pipeline.write(history(seq))
            if ((seq + 1) % CHECKPOINT === 0) {
              collectGarbage()
              growth.push(process.memoryUsage().heapUsed - baseline)
            }
          }
        })
      )
    )

    expect(growth).toHaveLength(TOTAL / CHECKPOINT)
    expect(Math.max(...growth)).toBeLessThan(BOUND)

    // Read frame by frame, checking as it goes, rather than holding a million decoded records.
    let expected = 0
    let damage = 0
    for (const entry of readEntries(fs.readFileSync(journal.path))) {
      if (entry._tag === "Damage") {
        damage++
        continue
      }
      for (const record of entry.records) {
        if (record.seq !== expected) throw new Error(`record ${expected} expected, seq ${record.seq} found`)
        expected++
      }
    }
    expect(damage).toBe(0)
    expect(expected).toBe(TOTAL)
  })
})
