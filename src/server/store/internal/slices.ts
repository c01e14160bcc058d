/**
 * A batch cut into slices of about SLICE_COST, each of which an ingest stores before it gives the
 * event loop a turn (ingest.ts). The cost counts in units of one value of a history block (a
 * float64 copied into a chunk), and a block's row two more (its step, seq and ts); a history row's value costs ~10 of them (it is an object walked
 * key by key and encoded from a Chunk), any other record 10. A slice stores in ~10-20 ms on the
 * 2-core machine: a 10,000-row block of ten doubles (100,000 units) ingests in ~6-9 ms, a batch of
 * 1,000 ten-key history rows (110,000 units) in ~5 ms (bench/history-read.ts), so the batches an
 * uploader sends (up to ~1 MiB) are one slice, as before.
 */
import type { UploadRecord } from "../../../schemas/Record.js"
import { sliceBlock } from "../../../schemas/UploadRecords.js"

/** Cost units one slice holds at most (but always at least one record, or one row of a block). */
export const SLICE_COST = 200_000

/** What storing a record costs, in block values. */
const costOf = (record: UploadRecord): number => {
  // A block row's step, seq and ts (chunk frames) cost about as much as two values.
  if (record.kind === "historyBlock") return record.rows * (record.keys.length + 2)
  if (record.kind !== "history") return 10
  let keys = 1
  for (const _ in record.values) keys++
  return 10 * keys
}

/** `batch` in order, cut into slices of at most SLICE_COST; a block over the cost is cut into blocks of fewer rows. */
export const slices = (batch: ReadonlyArray<UploadRecord>): Array<ReadonlyArray<UploadRecord>> => {
  const out: Array<Array<UploadRecord>> = []
  let slice: Array<UploadRecord> = []
  let cost = 0
  const close = () => {
    if (slice.length > 0) out.push(slice)
    slice = []
    cost = 0
  }
  for (const record of batch) {
    const c = costOf(record)
    if (record.kind === "historyBlock" && c > SLICE_COST) {
      close()
      const rows = Math.max(1, Math.floor(SLICE_COST / (record.keys.length + 2)))
      for (let from = 0; from < record.rows; from += rows) out.push([sliceBlock(record, from, Math.min(record.rows, from + rows))])
      continue
    }
    if (cost + c > SLICE_COST) close()
    slice.push(record)
    cost += c
  }
  close()
  return out
}
