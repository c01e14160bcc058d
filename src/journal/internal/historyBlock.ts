/**
 * Consecutive history rows with the same numeric keys travel in the journal as one column block:
 *
 *   { rows: n, seq0, keys: [k…], steps: f64[n], ts: f64[n], columns: [f64[n] per key] }
 *
 * (msgpack bins of little-endian float64). A training loop logs the same keys every step, so
 * nearly every row lands in a block, and filling typed columns costs a fraction of encoding each
 * row as a msgpack map (bench/journal-encode.ts). Seqs inside a block are consecutive, because only
 * history rows join one. Rows with other keys, or a value that is not a number, stay records.
 * Read back, a block becomes the upload's HistoryBlock record (schemas/Record.ts) with the very
 * same columns, so that the upload sends it on as it is (JournalReader.ts checks it on the way in).
 */
import * as os from "node:os"
import type { HistoryRecord, Record } from "../../schemas/Record.js"

/** A block as it is packed and unpacked. */
export interface Block {
  readonly rows: number
  readonly seq0: number
  readonly keys: ReadonlyArray<string>
  readonly steps: Uint8Array
  readonly ts: Uint8Array
  readonly columns: ReadonlyArray<Uint8Array>
}

const bigEndian = os.endianness() === "BE"

/**
 * Columns are filled in scratch arrays that live as long as the process and grow to the largest
 * batch (one writer at a time: the journal's appends are synchronous), then copied out, all of a
 * block's columns into one buffer. Allocating typed arrays per block cost more than filling them.
 */
let scratch: Array<Float64Array> = []
/** Scratch holds at most this many values (2 MiB): a longer block of wide rows is split. */
const SCRATCH_VALUES = 256 * 1024

const scratchColumns = (count: number, capacity: number): Array<Float64Array> => {
  if (scratch.length < count || scratch[0]!.length < capacity) {
    const size = Math.max(capacity, scratch[0]?.length ?? 0)
    scratch = Array.from({ length: Math.max(count, scratch.length) }, () => new Float64Array(size))
  }
  return scratch
}

/** Copies the first `rows` values of `count` scratch columns into one buffer; a view of it per column. */
const copyOut = (columns: Array<Float64Array>, count: number, rows: number): Array<Buffer> => {
  const out = Buffer.allocUnsafe(count * rows * 8)
  const floats = new Float64Array(out.buffer, out.byteOffset, count * rows)
  for (let c = 0; c < count; c++) floats.set(columns[c]!.subarray(0, rows), c * rows)
  if (bigEndian) out.swap64()
  return Array.from({ length: count }, (_, c) => out.subarray(c * rows * 8, (c + 1) * rows * 8))
}

/** The keys of a row whose values are all numbers, in order; null when one is not a number. */
const numericKeys = (values: HistoryRecord["values"]): Array<string> | null => {
  const keys: Array<string> = []
  for (const key in values) {
    if (typeof values[key] !== "number") return null
    keys.push(key)
  }
  return keys
}

/** Whether `record` can follow in a block of `keys` at `seq` (checked before any column is made). */
const joins = (record: Record | undefined, seq: number, keys: ReadonlyArray<string>): boolean => {
  if (record === undefined || record.kind !== "history" || record.seq !== seq) return false
  let k = 0
  for (const key in record.values) {
    if (keys[k++] !== key || typeof record.values[key] !== "number") return false
  }
  return k === keys.length
}

/**
 * Copies rows from `records[start]` on into `columns` ([0] steps, [1] ts, then one per key) while
 * they keep `keys` and consecutive seqs; returns how many rows it copied. Its own function, with
 * nothing after its loop: V8 reuses a loop's on-stack-replacement code on later calls, and code
 * after the loop that the OSR compile never saw ran deoptimised on every flush.
 */
const fill = (
  records: ReadonlyArray<Record>,
  start: number,
  keys: ReadonlyArray<string>,
  columns: Array<Float64Array>,
  capacity: number
): number => {
  const seq0 = records[start]!.seq
  const width = keys.length + 2
  let rows = 0
  rows: for (; rows < capacity; rows++) {
    const record = records[start + rows]!
    if (record.kind !== "history" || record.seq !== seq0 + rows) break
    let k = 2
    for (const key in record.values) {
      const value = record.values[key]
      if (keys[k - 2] !== key || typeof value !== "number") break rows
      columns[k++]![rows] = value
    }
    if (k !== width) break
    columns[0]![rows] = record.step
    columns[1]![rows] = record.ts
  }
  return rows
}

/**
 * Fills columns from `records[start]` on while rows keep the first row's numeric keys and
 * consecutive seqs; returns the column block of those rows, or null when fewer than two qualify.
 * Checking and filling happen in one pass over each row's values: this loop is the journal's
 * encoding cost (bench/journal-encode.ts).
 */
const blockAt = (records: ReadonlyArray<Record>, start: number): Block | null => {
  const first = records[start]!
  const keys = first.kind === "history" ? numericKeys(first.values) : null
  if (keys === null || !joins(records[start + 1], first.seq + 1, keys)) return null
  // Scratch columns: [0] steps, [1] ts, then one per key.
  const width = keys.length + 2
  const capacity = Math.min(records.length - start, Math.max(64, Math.floor(SCRATCH_VALUES / width)))
  const columns = scratchColumns(width, capacity)
  const rows = fill(records, start, keys, columns, capacity)
  const [steps, ts, ...values] = copyOut(columns, width, rows)
  return { rows, seq0: first.seq, keys, steps: steps!, ts: ts!, columns: values }
}

/** The payload entries for a batch: column blocks for runs of like rows, records for the rest. */
export const toEntries = (records: ReadonlyArray<Record>): Array<Record | Block> => {
  const entries: Array<Record | Block> = []
  for (let i = 0; i < records.length;) {
    const block = blockAt(records, i)
    if (block === null) entries.push(records[i++]!)
    else {
      entries.push(block)
      i += block.rows
    }
  }
  return entries
}
