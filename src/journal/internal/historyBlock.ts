/**
 * Consecutive history rows with the same numeric keys travel in the journal as one column block:
 *
 *   { rows: n, seq0, keys: [k…], steps: f64[n], ts: f64[n], columns: [f64[n] per key] }
 *
 * (msgpack bins of little-endian float64). A training loop logs the same keys every step, so
 * nearly every row lands in a block, and filling typed columns costs a fraction of encoding each
 * row as a msgpack map (bench/journal-encode.ts). Seqs inside a block are consecutive, because only
 * history rows join one. Rows with other keys, or a value that is not a number, stay records.
 */
import * as os from "node:os"
import type { HistoryRecord, Record } from "../../schemas/Record.js"

/** A block as it is packed and unpacked. */
interface Block {
  readonly rows: number
  readonly seq0: number
  readonly keys: ReadonlyArray<string>
  readonly steps: Uint8Array
  readonly ts: Uint8Array
  readonly columns: ReadonlyArray<Uint8Array>
}

const bigEndian = os.endianness() === "BE"

const bytesOf = (values: Float64Array): Buffer => {
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength)
  return bigEndian ? bytes.swap64() : bytes
}

const floatsOf = (bytes: Uint8Array, rows: number): Float64Array | null => {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== rows * 8) return null
  const copy = Buffer.from(bytes) // aligned, and ours to swap
  if (bigEndian) copy.swap64()
  return new Float64Array(copy.buffer, copy.byteOffset, rows)
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
 * Fills columns from `records[start]` on while rows keep the first row's numeric keys and
 * consecutive seqs; returns the column block of those rows, or null when fewer than two qualify.
 * Checking and filling happen in one pass over each row's values: this loop is the journal's
 * encoding cost (bench/journal-encode.ts).
 */
const blockAt = (records: ReadonlyArray<Record>, start: number): Block | null => {
  const first = records[start]!
  const keys = first.kind === "history" ? numericKeys(first.values) : null
  if (keys === null || !joins(records[start + 1], first.seq + 1, keys)) return null
  // Columns start small and double: a batch that alternates key sets makes many short blocks,
  // and sizing each for the whole rest of the batch would make encoding quadratic.
  let capacity = Math.min(records.length - start, 64)
  let steps = new Float64Array(capacity)
  let ts = new Float64Array(capacity)
  let columns = keys.map(() => new Float64Array(capacity))
  let rows = 0
  rows: for (; start + rows < records.length; rows++) {
    const record = records[start + rows]!
    if (record.kind !== "history" || record.seq !== first.seq + rows) break
    if (rows === capacity) {
      capacity = Math.min(records.length - start, capacity * 2)
      const grow = (column: Float64Array) => {
        const larger = new Float64Array(capacity)
        larger.set(column)
        return larger
      }
      steps = grow(steps)
      ts = grow(ts)
      columns = columns.map(grow)
    }
    let k = 0
    for (const key in record.values) {
      const value = record.values[key]
      if (keys[k] !== key || typeof value !== "number") break rows
      columns[k++]![rows] = value
    }
    if (k !== keys.length) break
    steps[rows] = record.step
    ts[rows] = record.ts
  }
  if (rows < 2) return null
  const bytes = (column: Float64Array) => bytesOf(column.subarray(0, rows))
  return { rows, seq0: first.seq, keys, steps: bytes(steps), ts: bytes(ts), columns: columns.map(bytes) }
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

/**
 * The records an entry holds: a block becomes its history rows, anything else is passed on as it
 * is (to be checked against the Record schema by the reader). A malformed block gives an error text.
 */
export const fromEntry = (entry: unknown): ReadonlyArray<unknown> | string => {
  if (typeof entry !== "object" || entry === null || !("rows" in entry)) return [entry]
  const block = entry as Partial<Block>
  const { rows, seq0, keys, columns } = block
  if (!Number.isSafeInteger(rows) || rows! < 0 || !Number.isSafeInteger(seq0)) return "a history block with a bad row count or first seq"
  if (!Array.isArray(keys) || !Array.isArray(columns) || keys.length !== columns.length || !keys.every((k) => typeof k === "string")) {
    return "a history block whose keys and columns do not match"
  }
  const steps = floatsOf(block.steps!, rows!)
  const ts = floatsOf(block.ts!, rows!)
  const values = columns.map((column) => floatsOf(column, rows!))
  if (steps === null || ts === null || values.some((v) => v === null)) return "a history block with a column of the wrong length"
  const records: Array<HistoryRecord> = []
  for (let r = 0; r < rows!; r++) {
    const row: { [key: string]: number } = {}
    for (let k = 0; k < keys.length; k++) row[keys[k]!] = values[k]![r]!
    records.push({ kind: "history", seq: seq0! + r, ts: ts[r]!, step: steps[r]!, values: row })
  }
  return records
}
