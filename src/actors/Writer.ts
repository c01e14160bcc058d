/**
 * Writer actor: the only code that appends to the journal. Its inbox holds batches of records
 * (at most `inboxCapacity` batches, see Pipeline.ts); one fiber takes each batch and appends it as
 * one frame. `writeNow` is the synchronous path (a full Buffer, durability "sync", the run's end):
 * it writes the inbox, then the given records, before it returns. Nothing is held across a yield
 * point, so the fiber and `writeNow` can never reorder batches.
 *
 * A disk that refuses a write (full, failing) is never the training's problem: nothing is thrown.
 * The batch is kept as its encoded frame, and so is every later one, in order, up to
 * `maxHeldBytes` (the `maxUnwrittenMb` setting); they are written, oldest first, at the next flush
 * or RETRY_INTERVAL later, whichever comes first, and the journal ends at a whole frame
 * throughout. Past the cap the newest batches are dropped and counted, and the records after them
 * are numbered down by as many, so that the journal's seqs stay contiguous (the upload's ackSeq
 * counts on it); `status` says how many were dropped and why. Each episode is reported three
 * times at most: when writes start failing, when the cap is met, and when the disk takes writes again.
 *
 * `onFlushed` (online runs: the service link) hears the journal's offset after each flush that
 * moved it: once per wake-up of the fiber and once per `writeNow`, never once per record.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as MutableQueue from "effect/MutableQueue"
import * as fs from "node:fs"
import type { JournalWriteFailed } from "../journal/JournalError.js"
import { JournalWriter, type Frame } from "../journal/JournalWriter.js"
import type { Durability } from "../schemas/Settings.js"
import type { Record } from "../schemas/Record.js"

/** How often held frames are tried again when no flush comes sooner. */
export const RETRY_INTERVAL = Duration.seconds(1)

/** Records handed to the Writer that never reach the journal. */
export interface WriteStatus {
  /** Held past the cap, or still held when the run ended. */
  readonly dropped: number
  /** Why records were dropped; null while none were. */
  readonly dropReason: string | null
}

/** The Writer's face to the rest of the pipeline. */
export interface Writer {
  /** Hands a batch to the Writer; false (and nothing taken) when the inbox is full. */
  readonly submit: (batch: ReadonlyArray<Record>) => boolean
  /** Writes every batch in the inbox, then `records`, before returning (or holds them, the disk refusing). */
  readonly writeNow: (records: ReadonlyArray<Record>) => void
  /** Writes what it can of `records` and everything held, drops the rest, and closes the journal. */
  readonly close: (records: ReadonlyArray<Record>) => void
  /** Bytes of whole frames in the journal. */
  readonly flushedOffset: () => number
  readonly status: () => WriteStatus
  /** The actor's loop, to be run under a supervisor: one fiber only. */
  readonly loop: Effect.Effect<never>
}

/** Builds a Writer over `journal`; `durability: "fsync"` adds an fdatasync after each flush. */
export const make = (options: {
  readonly journal: JournalWriter
  readonly inboxCapacity: number
  readonly durability: Durability
  /** Bytes of encoded frames held in memory while the disk refuses writes. */
  readonly maxHeldBytes: number
  /** Where the episodes of a refusing disk are told (once each). */
  readonly report: (message: string) => void
  /** Called with the offset of whole frames after a flush that wrote something (after the fsync, with "fsync"). */
  readonly onFlushed?: (offset: number) => void
}): Effect.Effect<Writer> =>
  Effect.gen(function* () {
    const { journal, inboxCapacity, maxHeldBytes, report } = options
    // Unbounded underneath so that writeNow can always queue; `submit` enforces the capacity.
    const inbox = MutableQueue.unbounded<ReadonlyArray<Record>>()
    const ready = yield* Effect.makeLatch(false)

    /** Frames the disk refused, oldest first, and the records each holds. */
    const held: Array<{ readonly frame: Frame; readonly records: number }> = []
    let heldBytes = 0
    /** Records dropped past the cap, and held still when the run ended. */
    let droppedPastCap = 0
    let droppedAtEnd = 0
    /** The first refusal that cost records: what `status` gives as the reason. */
    let costly: JournalWriteFailed | null = null
    /** The refusal of the current episode (null: the disk takes writes). */
    let refusal: JournalWriteFailed | null = null
    let capMet = false

    const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`

    const dropReason = (refused: JournalWriteFailed): string => {
      const why = refused.cause instanceof Error ? refused.cause.message : String(refused.cause)
      const parts = [
        ...(droppedPastCap > 0 ? [`${droppedPastCap} past the ${mib(maxHeldBytes)} held in memory for them (maxUnwrittenMb)`] : []),
        ...(droppedAtEnd > 0 ? [`${droppedAtEnd} still held when the run ended`] : [])
      ]
      return `the disk refused journal writes to ${refused.path} (${why}): ${parts.join(", and ")}`
    }

    const hold = (frame: Frame, records: number): void => {
      if (heldBytes + frame.bytes <= maxHeldBytes) {
        held.push({ frame, records })
        heldBytes += frame.bytes
        return
      }
      droppedPastCap += records
      costly ??= refusal
      if (!capMet) {
        capMet = true
        report(`steplog: ${mib(maxHeldBytes)} of records wait for the disk (maxUnwrittenMb); the newest are dropped until it takes writes again (finish() reports how many)`)
      }
    }

    /** Writes the held frames, oldest first, until one is refused. */
    const writeHeld = (): void => {
      while (held.length > 0) {
        const next = held[0]!
        try {
          journal.appendFrame(next.frame)
        } catch (error) {
          refusal = error as JournalWriteFailed
          return
        }
        held.shift()
        heldBytes -= next.frame.bytes
      }
      if (refusal !== null) {
        report(`steplog: the disk takes journal writes again; the records held meanwhile are written${droppedPastCap > 0 ? ` (${droppedPastCap} records were dropped in all)` : ""}`)
        refusal = null
        capMet = false
      }
    }

    /** Appends `batch` (numbered down past the records dropped), or holds it behind older held frames. */
    const writeBatch = (batch: ReadonlyArray<Record>): void => {
      const shift = droppedPastCap
      const records = shift === 0 ? batch : batch.map((record) => ({ ...record, seq: record.seq - shift }))
      const frame = JournalWriter.frame(records)
      if (held.length === 0) {
        try {
          return journal.appendFrame(frame)
        } catch (error) {
          refusal = error as JournalWriteFailed
          report(`${refusal.message}; records are held in memory (up to ${mib(maxHeldBytes)}, maxUnwrittenMb) and written when the disk takes them`)
        }
      }
      hold(frame, batch.length)
    }

    const writeInbox = (): void => {
      writeHeld()
      for (;;) {
        const batch = MutableQueue.poll(inbox, MutableQueue.EmptyMutableQueue)
        if (batch === MutableQueue.EmptyMutableQueue) return
        writeBatch(batch)
      }
    }

    const onFlushed = options.onFlushed
    let reported = journal.offset
    const tell = (): void => {
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
        tell()
        yield* held.length === 0 ? ready.await : Effect.raceFirst(ready.await, Effect.sleep(RETRY_INTERVAL))
        yield* ready.close
      }
    }) as Effect.Effect<never>

    const writeNow = (records: ReadonlyArray<Record>): void => {
      if (records.length > 0) MutableQueue.offer(inbox, records)
      writeInbox()
      tell()
    }

    return {
      submit: (batch) => {
        if (MutableQueue.length(inbox) >= inboxCapacity) return false
        MutableQueue.offer(inbox, batch)
        ready.unsafeOpen()
        return true
      },
      writeNow,
      close: (records) => {
        writeNow(records)
        if (held.length > 0) {
          droppedAtEnd = held.reduce((sum, entry) => sum + entry.records, 0)
          costly ??= refusal
          report(`steplog: ${droppedAtEnd} records could not be written before the run ended: ${refusal?.message ?? "the disk refused them"}`)
          held.length = 0
          heldBytes = 0
        }
        try {
          journal.close()
        } catch (error) {
          report(`steplog: closing the journal failed: ${(error as Error).message}`)
        }
      },
      flushedOffset: () => journal.offset,
      status: () => ({ dropped: droppedPastCap + droppedAtEnd, dropReason: costly === null ? null : dropReason(costly) }),
      loop
    }
  })
