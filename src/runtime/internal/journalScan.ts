/**
 * What RunUpload needs to know about a journal that the Tailer does not tell: the last seq it
 * holds (so that "the server acknowledged everything" can be decided), the latest `run` record (the
 * run's metadata) and whether the run ended (its last record is `exit`). Read incrementally, whole
 * frames only, up to an offset that only grows, as the Tailer reads: a torn frame at that offset is
 * "not written yet" and read again on the next call.
 *
 * It decodes every frame a second time (the Tailer decodes them too); that keeps the Tailer's face
 * unchanged, at the cost of one more pass over the journal, a cheap one: a block of history rows
 * is read as one record, never unpacked into rows.
 */
import { readFrames, readRange } from "../../journal/JournalReader.js"
import { HEADER_SIZE } from "../../journal/internal/frame.js"
import type { RunRecord, UploadRecord } from "../../schemas/Record.js"
import { lastSeq as lastSeqOf } from "../../schemas/UploadRecords.js"

/** Bytes read at a time, doubled while one frame is larger. */
const READ_CHUNK = 8 * 1024 * 1024

/** The incremental scan of one journal. */
export interface JournalScan {
  /** Reads every whole frame before `offset` (bytes) not read yet. Throws on I/O errors. */
  readonly scanTo: (offset: number) => void
  /** The offset just past the last whole frame read (or a corrupt stretch skipped). */
  readonly position: () => number
  /** The highest seq read so far; -1 before any record. */
  readonly lastSeq: () => number
  /** The latest `run` record read (a resumed run has one per opening); null before it. */
  readonly runRecord: () => RunRecord | null
  /** Whether the record with the highest seq read is an `exit` record. */
  readonly ended: () => boolean
}

/** A scan of the journal at `file`, starting at its first frame. */
export const make = (file: string): JournalScan => {
  let position = HEADER_SIZE
  let chunk = READ_CHUNK
  let lastSeq = -1
  let lastKind: UploadRecord["kind"] | null = null
  let runRecord: RunRecord | null = null
  // Read into one buffer, again and again: nothing read is kept but the run record, whose fields
  // are copies, so a scan does not allocate as much as the journal holds.
  let buffer = Buffer.allocUnsafe(0)

  /** Reads [position, min(limit, position + chunk)); `short` when the file ended first. */
  const read = (limit: number): { bytes: Buffer; end: number; short: boolean } => {
    const to = Math.min(limit, position + chunk)
    if (buffer.length < to - position) buffer = Buffer.allocUnsafe(Math.min(chunk, Math.max(to - position, 64 * 1024)))
    const range = readRange(file, position, to, buffer)
    return { bytes: range.bytes, end: range.end, short: range.end < to }
  }

  const scanTo = (offset: number): void => {
    while (position < offset) {
      const chunkRead = read(offset)
      const base = position
      let progressed = false
      for (const entry of readFrames(chunkRead.bytes, 0, chunkRead.end < offset)) {
        if (entry._tag === "Damage") {
          if (entry.damage.kind === "torn-tail") break
          if (entry.damage.kind === "corrupt-frame") {
            position = base + entry.damage.offset + entry.damage.bytes
            progressed = true
          }
          continue
        }
        for (const record of entry.records) {
          if (lastSeqOf(record) > lastSeq) {
            lastSeq = lastSeqOf(record)
            lastKind = record.kind
          }
          if (record.kind === "run") runRecord = record
        }
        position = base + entry.end
        progressed = true
      }
      if (progressed) chunk = READ_CHUNK
      else if (!chunkRead.short && chunkRead.end < offset) chunk *= 2
      else return
    }
  }

  return {
    scanTo,
    position: () => position,
    lastSeq: () => lastSeq,
    runRecord: () => runRecord,
    ended: () => lastKind === "exit"
  }
}
