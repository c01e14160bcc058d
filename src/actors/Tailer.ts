/**
 * Tailer actor (service process): reads a run's journal from the upload cursor up to the offset
 * the training process reported as flushed, and hands its records on to the Uploader in batches,
 * in seq order, each record once. It never reads past the flushed offset, so it never sees a frame
 * being written; a torn frame at the very end of what it may read is "not flushed yet" and read
 * again later. A corrupt frame with whole frames after it is skipped and reported.
 *
 * Runs of like history rows stay the column blocks the journal holds them as (HistoryBlock records,
 * never unpacked into rows here), sliced where a batch or the upload cursor cuts one.
 *
 * A batch goes when it holds `maxBatchBytes` (1 MiB) of records, a block counted by the bytes of
 * its columns and any other record by its share of the rest of its frame, or MAX_BATCH_RECORDS
 * records (the server's cap, Limits.ts), or `window` (200 ms, by
 * Effect's Clock) after its first record arrived. Its output queue is bounded (capacity set by whoever wires it): when the
 * Uploader falls behind, the Tailer waits, and the records wait in the journal, not in memory.
 *
 * One fiber only runs `loop`; `flushedTo` may be called from anywhere.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Queue from "effect/Queue"
import { readFrames, readRange } from "../journal/JournalReader.js"
import { HEADER_SIZE } from "../journal/internal/frame.js"
import type { UploadCursor } from "../runtime/UploadCursor.js"
import { MAX_BATCH_RECORDS } from "../schemas/Limits.js"
import type { UploadRecord } from "../schemas/Record.js"
import { blockBytes, lastSeq, sliceBlock } from "../schemas/UploadRecords.js"

/** At most this many bytes of records (as framed in the journal) in one batch: 1 MiB. */
export const MAX_BATCH_BYTES = 1024 * 1024

/** A partial batch goes this long after its first record arrived. */
export const BATCH_WINDOW: Duration.DurationInput = "200 millis"

/**
 * A place reading may resume: reading the journal from `offset` yields every record with
 * seq ≥ `seq` that the journal holds, and all records before `offset` have seq < `seq`.
 */
export interface Mark {
  readonly offset: number
  readonly seq: number
}

/** Records handed to the Uploader, with the marks the upload cursor may move to once they are acknowledged. */
export interface Batch {
  /** In seq order, without repeats; runs of like history rows as blocks, as the journal holds them. */
  readonly records: ReadonlyArray<UploadRecord>
  /** Bytes of the records: a block's columns, the other records' share of the rest of their frames. */
  readonly bytes: number
  /** Ascending by offset; the cursor moves to the last mark whose seq ≤ the server's ackSeq. */
  readonly marks: ReadonlyArray<Mark>
}

/** Reading the journal failed (not damage in it: that is skipped or waited on). */
export class TailFailed extends Data.TaggedError("TailFailed")<{ readonly path: string; readonly cause: unknown }> {
  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `steplog: reading the journal ${this.path} for upload failed: ${reason}`
  }
}

/** The Tailer's face to the service process. */
export interface Tailer {
  /** The training process has flushed the journal up to `offset` (bytes); smaller values are ignored. */
  readonly flushedTo: (offset: number) => void
  /** The journal offset read up to so far: every whole frame before it has been handed on or batched. */
  readonly position: () => number
  /** The actor's loop: one fiber only. */
  readonly loop: Effect.Effect<never, TailFailed>
}

/** Bytes read from the journal at a time, grown when one frame is larger. */
const READ_CHUNK = 8 * 1024 * 1024

/** Builds a Tailer of the journal at `journal`, starting from `from`, handing batches to `output`. */
export const make = (options: {
  readonly journal: string
  readonly from: UploadCursor
  readonly output: Queue.Enqueue<Batch>
  readonly maxBatchBytes?: number
  readonly window?: Duration.DurationInput
  readonly report?: (message: string) => void
}): Effect.Effect<Tailer> =>
  Effect.gen(function* () {
    const maxBatchBytes = options.maxBatchBytes ?? MAX_BATCH_BYTES
    const windowMs = Duration.toMillis(Duration.decode(options.window ?? BATCH_WINDOW))
    const report = options.report ?? (() => {})
    const wake = yield* Effect.makeLatch(false)

    // The loop's state; kept here, not in the loop, so that a restarted loop carries on.
    let flushed = 0
    let position = Math.max(options.from.offset, HEADER_SIZE)
    /** Every record below it has been handed on (or acknowledged before this start). */
    let nextSeq = options.from.ackSeq
    let chunk = READ_CHUNK
    let records: Array<UploadRecord> = []
    let marks: Array<Mark> = []
    let bytes = 0
    let firstAt = 0

    const emit = Effect.suspend(() => {
      const batch: Batch = { records, bytes, marks }
      records = []
      marks = []
      bytes = 0
      return options.output.offer(batch)
    })

    /** Reads the bytes [position, min(flushed, position + chunk)) of the journal, and where they end. */
    const readChunk = () => readRange(options.journal, position, Math.min(flushed, position + chunk))

    /** Reads every whole frame up to the flushed offset into batches, handing on each full one. */
    const readFlushed = Effect.gen(function* () {
      while (position < flushed) {
        const read = yield* Effect.try({ try: readChunk, catch: (cause) => new TailFailed({ path: options.journal, cause }) })
        const base = position
        let progressed = false
        for (const entry of readFrames(read.bytes, 0, read.end < flushed)) {
          if (entry._tag === "Damage") {
            const { damage } = entry
            if (damage.kind === "torn-tail") break // not flushed yet, or cut by the chunk: read again from here
            report(`steplog: skipping damage in ${options.journal} at byte ${base + damage.offset}: ${damage.kind}: ${damage.detail}`)
            if (damage.kind === "corrupt-frame") {
              position = base + damage.offset + damage.bytes
              progressed = true
            }
            continue
          }
          const frameOffset = base + entry.offset
          const frameEnd = base + entry.end
          // A block counts the bytes of its columns; the other records share the rest of the frame.
          let others = 0
          let otherBytes = entry.end - entry.offset
          for (const record of entry.records) {
            if (record.kind === "historyBlock") otherBytes -= blockBytes(record)
            else others++
          }
          const share = others === 0 ? 0 : Math.max(0, otherBytes) / others
          let markedStart = false
          /** Adds `record` of `size` bytes to the batch; a full batch is handed on first. */
          const add = (record: UploadRecord, size: number) =>
            Effect.gen(function* () {
              if (records.length === 0) firstAt = yield* Clock.currentTimeMillis
              if (!markedStart) {
                marks.push({ offset: frameOffset, seq: record.seq })
                markedStart = true
              }
              records.push(record)
              bytes += size
              nextSeq = lastSeq(record) + 1
            })
          for (const record of entry.records) {
            if (lastSeq(record) < nextSeq) continue
            if (record.kind !== "historyBlock") {
              if (records.length > 0 && (bytes + share > maxBatchBytes || records.length >= MAX_BATCH_RECORDS)) {
                yield* emit
                markedStart = false
              }
              yield* add(record, share)
              continue
            }
            // A block goes in as many rows as the batch has room for, the rest into the next batch.
            let block = record.seq < nextSeq ? sliceBlock(record, nextSeq - record.seq, record.rows) : record
            const rowBytes = blockBytes(block) / block.rows
            for (;;) {
              const room = Math.floor((maxBatchBytes - bytes) / rowBytes)
              if ((room < 1 || records.length >= MAX_BATCH_RECORDS) && records.length > 0) {
                yield* emit
                markedStart = false
                continue
              }
              const take = Math.min(block.rows, Math.max(1, room))
              yield* add(sliceBlock(block, 0, take), take * rowBytes)
              if (take === block.rows) break
              block = sliceBlock(block, take, block.rows)
            }
          }
          if (markedStart) marks.push({ offset: frameEnd, seq: nextSeq })
          position = frameEnd
          progressed = true
          if (bytes >= maxBatchBytes) yield* emit
        }
        if (progressed) {
          chunk = READ_CHUNK
        } else if (read.end < flushed) {
          chunk *= 2 // one frame (or a damaged stretch) larger than the chunk
        } else {
          return // a torn tail at the flushed offset: wait for the rest of it
        }
      }
    })

    const loop = Effect.gen(function* () {
      for (;;) {
        // Closed before reading, so that a `flushedTo` during the read opens it again.
        yield* wake.close
        yield* readFlushed
        if (records.length > 0) {
          const waited = (yield* Clock.currentTimeMillis) - firstAt
          if (waited >= windowMs) {
            yield* emit
            continue
          }
          yield* Effect.raceFirst(wake.await, Effect.sleep(Duration.millis(windowMs - waited)))
        } else {
          yield* wake.await
        }
      }
    }) as Effect.Effect<never, TailFailed>

    return {
      flushedTo: (offset) => {
        if (offset <= flushed) return
        flushed = offset
        wake.unsafeOpen()
      },
      position: () => position,
      loop
    }
  })

