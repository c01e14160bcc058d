/**
 * Tailer actor (service process): the one reader of a run's journal for its upload. It walks the
 * journal (JournalReader's `walk`, each frame once) up to the offset the training process reported
 * as flushed, and hands the records from `from` (the upload cursor's ackSeq) on to the Uploader in
 * batches, in seq order, each record once; what it has read of the whole journal (the highest
 * seq, the latest `run` record, whether the run ended, damage) it publishes in `state`, which is
 * all the upload needs to know of the journal. It never reads past the flushed offset, so it never
 * sees a frame being written: a torn frame there is "not flushed yet" (unless `final` says the
 * journal ends there). A corrupt frame with whole frames after it is skipped and reported, and the
 * seqs it held go to the Uploader as lost, so that the upload does not wait for them.
 *
 * Runs of like history rows stay the column blocks the journal holds them as (HistoryBlock records,
 * never unpacked into rows here), sliced where a batch or `from` cuts one.
 *
 * Nothing waits on a timer: a flushed offset wakes the Tailer; what it has read goes at once when
 * the Uploader can send it at once (`idle`) or the journal is whole, and otherwise it gathers
 * until a batch is full (`maxBatchBytes`, 1 MiB: a block counted by the bytes of its columns, any
 * other record by its share of the rest of its frame; or MAX_BATCH_RECORDS records, a block
 * counting its rows: the server's cap) or the Uploader is idle again (`nudge`). Its output queue
 * is bounded (capacity set by whoever wires it): when the Uploader falls behind, the Tailer waits,
 * and the records wait in the journal, not in memory.
 *
 * What it has read is plain state, read synchronously (`state`), and `onRead` says when it moved:
 * the upload wakes for it once a read, not once a frame. A service wakes ten times a second per
 * run; each stream subscriber or fiber started on a wake cost it milliseconds of CPU there
 * (bench/concurrent.ts, profiled), so the Tailer's wake is one latch, nothing more.
 *
 * One fiber only runs `loop`; `flushedTo` and `nudge` may be called from anywhere.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Queue from "effect/Queue"
import { walk, type Damage } from "../journal/JournalReader.js"
import { MAX_BATCH_RECORDS } from "../schemas/Limits.js"
import type { RunRecord, UploadRecord } from "../schemas/Record.js"
import { blockBytes, lastSeq, rowCount, sliceBlock } from "../schemas/UploadRecords.js"

/** At most this many bytes of records (as framed in the journal) in one batch: 1 MiB. */
export const MAX_BATCH_BYTES = 1024 * 1024

/** An inclusive range of seqs. */
export type SeqSpan = readonly [number, number]

/** Records handed to the Uploader. */
export interface Batch {
  /** In seq order, without repeats; runs of like history rows as blocks, as the journal holds them. */
  readonly records: ReadonlyArray<UploadRecord>
  /** Bytes of the records: a block's columns, the other records' share of the rest of their frames. */
  readonly bytes: number
  /** Seqs the journal has lost to damage, before or among these records: nothing to wait for. */
  readonly lost: ReadonlyArray<SeqSpan>
}

/** What the Tailer has read of the journal so far. */
export interface TailState {
  /** Bytes read: every whole frame before this offset has been read. */
  readonly position: number
  /** Whether the walk has reached the end of the journal (`flushedTo` with `final`). */
  readonly complete: boolean
  /** The highest seq read; -1 before any record. */
  readonly lastSeq: number
  /** The latest `run` record read (a resumed run has one per opening); null before it. */
  readonly run: RunRecord | null
  /** Whether the record with the highest seq read is an `exit` record. */
  readonly ended: boolean
  /** Damage met, in the order met: skipped, its records lost. */
  readonly damage: ReadonlyArray<Damage>
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
  /**
   * The training process has flushed the journal up to `offset` (bytes); smaller values are
   * ignored. `final`: the journal ends there (the run is over, or its process is gone).
   */
  readonly flushedTo: (offset: number, final?: boolean) => void
  /** The consumer may have become idle (`idle`): what is gathered goes now if it is. */
  readonly nudge: () => void
  /** What has been read of the journal so far. */
  readonly state: () => TailState
  /** The actor's loop: one fiber only. */
  readonly loop: Effect.Effect<never, TailFailed>
}

/** Builds a Tailer of the journal at `journal`, handing the records from seq `from` on to `output`. */
export const make = (options: {
  readonly journal: string
  readonly from: number
  readonly output: Queue.Enqueue<Batch>
  /** Whether the consumer could send a batch at once (`nudge` when that may have become true); default: always. */
  readonly idle?: () => boolean
  /** Called when `state` has moved: after each read, and before a batch is handed on (which may wait). */
  readonly onRead?: () => void
  readonly maxBatchBytes?: number
  readonly report?: (message: string) => void
}): Effect.Effect<Tailer> =>
  Effect.gen(function* () {
    const maxBatchBytes = options.maxBatchBytes ?? MAX_BATCH_BYTES
    const idle = options.idle ?? (() => true)
    const onRead = options.onRead ?? (() => {})
    const report = options.report ?? (() => {})
    const wake = yield* Effect.makeLatch(false)

    // The loop's state; kept here, not in the loop, so that a restarted loop carries on.
    const journal = walk(options.journal)
    let flushed = 0
    let final = false
    /** Every record below it has been handed on (or acknowledged before this start). */
    let nextSeq = options.from
    let records: Array<UploadRecord> = []
    let lost: Array<SeqSpan> = []
    let bytes = 0
    /** Records in the batch as the server counts them: a block as its rows. */
    let count = 0
    let read: TailState = { position: 0, complete: false, lastSeq: -1, run: null, ended: false, damage: [] }

    const emit = Effect.suspend(() => {
      onRead()
      const batch: Batch = { records, bytes, lost }
      records = []
      lost = []
      bytes = 0
      count = 0
      return options.output.offer(batch)
    })

    /**
     * Notes a frame's records in what has been read of the journal. The writer numbers records
     * without a gap, so seqs skipped on the way were lost to damage (a corrupt frame, an invalid
     * record): those the upload still needs are noted as lost.
     */
    const note = (frameRecords: ReadonlyArray<UploadRecord>, position: number) => {
      let { lastSeq: last, run, ended } = read
      for (const record of frameRecords) {
        const expected = last + 1
        if (record.seq > expected && record.seq - 1 >= nextSeq) lost.push([Math.max(expected, nextSeq), record.seq - 1])
        if (lastSeq(record) > last) (last = lastSeq(record)), (ended = record.kind === "exit")
        if (record.kind === "run") run = record
      }
      read = { ...read, position, lastSeq: last, run, ended }
    }

    /** Adds `record` of `size` bytes to the batch. */
    const add = (record: UploadRecord, size: number) => {
      records.push(record)
      bytes += size
      count += rowCount(record)
      nextSeq = lastSeq(record) + 1
    }

    /** Reads every whole frame up to the flushed offset into batches, handing on each full one. */
    const readFlushed = Effect.gen(function* () {
      // Frame by frame, lazily: a batch handed on waits for room in the queue before more is read.
      const frames = journal.to(flushed, final)
      for (;;) {
        const next = yield* Effect.try({ try: () => frames.next(), catch: (cause) => new TailFailed({ path: options.journal, cause }) })
        if (next.done === true) break
        const entry = next.value
        if (entry._tag === "Damage") {
          const { damage } = entry
          report(`steplog: skipping damage in ${options.journal} at byte ${damage.offset} (${damage.bytes} bytes): ${damage.kind}: ${damage.detail}`)
          read = { ...read, damage: [...read.damage, damage] }
          continue
        }
        note(entry.records, entry.end)
        // A block counts the bytes of its columns; the other records share the rest of the frame.
        let others = 0
        let otherBytes = entry.end - entry.offset
        for (const record of entry.records) {
          if (record.kind === "historyBlock") otherBytes -= blockBytes(record)
          else others++
        }
        const share = others === 0 ? 0 : Math.max(0, otherBytes) / others
        const full = () => records.length > 0 && (bytes >= maxBatchBytes || count >= MAX_BATCH_RECORDS)
        for (const record of entry.records) {
          if (lastSeq(record) < nextSeq) continue
          if (record.kind !== "historyBlock") {
            if (records.length > 0 && (bytes + share > maxBatchBytes || count >= MAX_BATCH_RECORDS)) yield* emit
            add(record, share)
            continue
          }
          // A block goes in as many rows as the batch has room for, the rest into the next batch.
          let block = record.seq < nextSeq ? sliceBlock(record, nextSeq - record.seq, record.rows) : record
          const rowBytes = blockBytes(block) / block.rows
          for (;;) {
            const room = Math.min(Math.floor((maxBatchBytes - bytes) / rowBytes), MAX_BATCH_RECORDS - count)
            if (room < 1 && records.length > 0) {
              yield* emit
              continue
            }
            const take = Math.min(block.rows, Math.max(1, room))
            add(sliceBlock(block, 0, take), take * rowBytes)
            if (take === block.rows) break
            block = sliceBlock(block, take, block.rows)
          }
        }
        if (full()) yield* emit
      }
      read = { ...read, position: journal.position(), complete: final && journal.position() >= flushed }
      onRead()
    })

    const loop = Effect.gen(function* () {
      for (;;) {
        // Closed before reading, so that a `flushedTo` during the read opens it again.
        yield* wake.close
        yield* readFlushed
        if (records.length === 0 && lost.length === 0) {
          yield* wake.await
          continue
        }
        // Sent at once when the Uploader could send it at once, or when the journal is whole (nothing
        // more will come to gather: a finished run's last records do not wait); else gathered until
        // a flush or a nudge.
        if (idle() || read.complete) yield* emit
        else yield* wake.await
      }
    }) as Effect.Effect<never, TailFailed>

    return {
      flushedTo: (offset, ends = false) => {
        if (offset < flushed || (offset === flushed && (final || !ends))) return
        flushed = offset
        final = final || ends
        wake.unsafeOpen()
      },
      nudge: () => wake.unsafeOpen(),
      state: () => read,
      loop
    }
  })
