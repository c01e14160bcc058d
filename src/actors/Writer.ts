/**
 * Writer actor: the only code that appends to the journal. Its inbox holds batches of records
 * (at most `inboxCapacity` batches, see Pipeline.ts); one fiber takes each batch and appends it as
 * one frame. A batch leaves the inbox only once its frame is written: when an append fails, the
 * fiber dies, its supervisor restarts it, and the same batch is written again at the same offset.
 *
 * `writeNow` is the synchronous path used by `log()` when the Buffer is full, by durability
 * "sync", and at the end of a run: it writes the inbox, then the given records, before it returns.
 * Nothing is held across a yield point, so the fiber and `writeNow` can never reorder batches.
 *
 * `onFlushed` (online runs: the service link) hears the journal's offset after each flush that
 * moved it: once per wake-up of the fiber and once per `writeNow`, never once per record.
 */
import * as Effect from "effect/Effect"
import * as MutableQueue from "effect/MutableQueue"
import * as fs from "node:fs"
import type { JournalWriter } from "../journal/JournalWriter.js"
import type { Durability } from "../schemas/Settings.js"
import type { Record } from "../schemas/Record.js"

/** The Writer's face to the rest of the pipeline. */
export interface Writer {
  /** Hands a batch to the Writer; false (and nothing taken) when the inbox is full. */
  readonly submit: (batch: ReadonlyArray<Record>) => boolean
  /**
   * Writes every batch in the inbox, then `records`, before returning. When the disk refuses, the
   * records stay queued in memory (the inbox may then exceed its capacity) and the error is thrown
   * for the caller to report: nothing is dropped.
   */
  readonly writeNow: (records: ReadonlyArray<Record>) => void
  /** Bytes of whole frames in the journal. */
  readonly flushedOffset: () => number
  /** The actor's loop, to be run under a supervisor: one fiber only. */
  readonly loop: Effect.Effect<never>
}

/** Builds a Writer over `journal`; `durability: "fsync"` adds an fdatasync after each flush. */
export const make = (options: {
  readonly journal: JournalWriter
  readonly inboxCapacity: number
  readonly durability: Durability
  /** Called with the offset of whole frames after a flush that wrote something (after the fsync, with "fsync"). */
  readonly onFlushed?: (offset: number) => void
}): Effect.Effect<Writer> =>
  Effect.gen(function* () {
    const { journal, inboxCapacity } = options
    // Unbounded underneath so that a failing disk can park records here; `submit` enforces the
    // capacity, so only `writeNow` after a failed write takes it past `inboxCapacity`.
    const inbox = MutableQueue.unbounded<ReadonlyArray<Record>>()
    const ready = yield* Effect.makeLatch(false)

    const writeInbox = (): void => {
      for (;;) {
        const batch = MutableQueue.poll(inbox, MutableQueue.EmptyMutableQueue)
        if (batch === MutableQueue.EmptyMutableQueue) return
        try {
          journal.append(batch)
        } catch (error) {
          // Back at the head of the line: the rest of the inbox follows it on the retry.
          const rest = MutableQueue.pollUpTo(inbox, Number.POSITIVE_INFINITY)
          MutableQueue.offer(inbox, batch)
          MutableQueue.offerAll(inbox, rest)
          throw error
        }
      }
    }

    const onFlushed = options.onFlushed
    let reported = journal.offset
    const report = (): void => {
      if (onFlushed === undefined || journal.offset === reported) return
      reported = journal.offset
      onFlushed(reported)
    }

    const fsync = Effect.async<void>((resume) => {
      fs.fdatasync(journal.fd, () => resume(Effect.void))
    })

    const loop = Effect.gen(function* () {
      for (;;) {
        yield* Effect.sync(writeInbox)
        if (options.durability === "fsync") yield* fsync
        report()
        yield* ready.await
        yield* ready.close
      }
    }) as Effect.Effect<never>

    return {
      submit: (batch) => {
        if (MutableQueue.length(inbox) >= inboxCapacity) return false
        MutableQueue.offer(inbox, batch)
        ready.unsafeOpen()
        return true
      },
      writeNow: (records) => {
        if (records.length > 0) MutableQueue.offer(inbox, records)
        writeInbox()
        report()
      },
      flushedOffset: () => journal.offset,
      loop
    }
  })
