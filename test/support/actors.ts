/** What the actor and pipeline tests share: history records, a journal per test, and a bounded settle. */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { readJournal } from "../../src/journal/JournalReader.js"
import { JournalWriter } from "../../src/journal/JournalWriter.js"
import type { Record } from "../../src/schemas/Record.js"

/** The history record with sequence number `seq` (and step `seq`). */
export const history = (seq: number): Record => ({
  kind: "history",
  seq,
  ts: 1_700_000_000_000 + seq,
  step: seq,
  values: { loss: 1 / (seq + 1) }
})

/** `count` history records from seq `from`. */
export const histories = (from: number, count: number): Array<Record> =>
  Array.from({ length: count }, (_, i) => history(from + i))

/** A new journal at `path`, closed when the test's scope closes (after the actors stop). */
export const openJournal = (path: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Either.getOrThrow(JournalWriter.create(path))),
    (journal) => Effect.sync(() => journal.close())
  )

/** Everything in `journal`'s file now. */
export const read = (journal: JournalWriter) => Either.getOrThrow(readJournal(journal.path))

/**
 * Lets the forked actors run until `done` holds, without moving the clock: a bounded number of
 * yields, so a condition that never comes true fails the test instead of hanging it.
 */
export const settle = (done: () => boolean = () => false) =>
  Effect.gen(function* () {
    for (let i = 0; i < 100 && !done(); i++) yield* Effect.yieldNow()
  })
