/**
 * Working with the records of an upload batch (`UploadRecord`, Record.ts) without unpacking a
 * history block into rows: how many seqs a record stands for, cutting a batch at a seq or after a
 * number of rows (a block straddling the cut is sliced, its columns shared, not copied), and a
 * block's columns as numbers. Only a reader that needs rows (`steplog inspect`, a resume) calls
 * `historyRows`; the upload path and the server's store work on the columns.
 */
import * as os from "node:os"
import type { HistoryBlock, HistoryRecord, UploadRecord } from "./Record.js"

/** How many records `record` stands for: a block its rows, any other record one. */
export const rowCount = (record: UploadRecord): number => (record.kind === "historyBlock" ? record.rows : 1)

/** The last seq `record` holds. */
export const lastSeq = (record: UploadRecord): number => record.seq + rowCount(record) - 1

/** How many records `records` stand for. */
export const totalRows = (records: ReadonlyArray<UploadRecord>): number => {
  let rows = 0
  for (const record of records) rows += rowCount(record)
  return rows
}

/** The bytes of a block's columns (8 a value, step and ts included). */
export const blockBytes = (block: HistoryBlock): number => block.rows * (block.keys.length + 2) * 8

/** Rows [from, to) of `block` as a block of their own (0 ≤ from < to ≤ rows); its columns are views. */
export const sliceBlock = (block: HistoryBlock, from: number, to: number): HistoryBlock =>
  from === 0 && to === block.rows
    ? block
    : {
        kind: "historyBlock",
        seq: block.seq + from,
        rows: to - from,
        keys: block.keys,
        steps: block.steps.subarray(from * 8, to * 8),
        ts: block.ts.subarray(from * 8, to * 8),
        columns: block.columns.map((column) => column.subarray(from * 8, to * 8))
      }

/**
 * `blocks` with each run of consecutive ones (every seq of one following on the last of the one
 * before, the same keys in the same order) joined into one block: its columns copied once, into
 * fresh buffers that `floats` views without a copy. A block with no neighbour to join is kept as
 * it is if its columns are 8-byte aligned already. What lets the server's store cut a batch into
 * chunks that its keys share whole, and read every column without another copy.
 */
export const joinBlocks = (blocks: ReadonlyArray<HistoryBlock>): Array<HistoryBlock> => {
  const joined: Array<HistoryBlock> = []
  const sameKeys = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a === b || (a.length === b.length && a.every((key, k) => key === b[k]))
  for (let i = 0; i < blocks.length;) {
    const first = blocks[i]!
    let rows = first.rows
    let end = i + 1
    for (; end < blocks.length && blocks[end]!.seq === first.seq + rows && sameKeys(blocks[end]!.keys, first.keys); end++) {
      rows += blocks[end]!.rows
    }
    if (end === i + 1 && [first.steps, first.ts, ...first.columns].every((column) => column.byteOffset % 8 === 0)) joined.push(first)
    else {
      const group = blocks.slice(i, end)
      const column = (of: (block: HistoryBlock) => Uint8Array): Uint8Array => {
        const out = new Uint8Array(rows * 8)
        let at = 0
        for (const block of group) (out.set(of(block), at), (at += block.rows * 8))
        return out
      }
      joined.push({
        kind: "historyBlock",
        seq: first.seq,
        rows,
        keys: first.keys,
        steps: column((block) => block.steps),
        ts: column((block) => block.ts),
        columns: first.keys.map((_, k) => column((block) => block.columns[k]!))
      })
    }
    i = end
  }
  return joined
}

/** The records of `records` with seq ≥ `seq`: later records whole, a block holding `seq` cut there. */
export const fromSeq = (records: ReadonlyArray<UploadRecord>, seq: number): Array<UploadRecord> => {
  const kept: Array<UploadRecord> = []
  for (const record of records) {
    if (lastSeq(record) < seq) continue
    kept.push(record.kind === "historyBlock" && record.seq < seq ? sliceBlock(record, seq - record.seq, record.rows) : record)
  }
  return kept
}

/** `records` cut after their first `rows` records (counted as `rowCount` does), a block cut if need be. */
export const splitAfter = (
  records: ReadonlyArray<UploadRecord>,
  rows: number
): readonly [Array<UploadRecord>, Array<UploadRecord>] => {
  const head: Array<UploadRecord> = []
  const tail: Array<UploadRecord> = []
  let left = rows
  for (const record of records) {
    const count = rowCount(record)
    if (left >= count) head.push(record)
    else if (left <= 0) tail.push(record)
    else {
      const block = record as HistoryBlock // only a block counts more than one
      head.push(sliceBlock(block, 0, left))
      tail.push(sliceBlock(block, left, count))
    }
    left -= count
  }
  return [head, tail]
}

const bigEndian = os.endianness() === "BE"

/**
 * A column's float64s. A view of the bytes where it can be (this machine little-endian, the bytes
 * 8-byte aligned); a copy otherwise, as for a column unpacked at an odd offset of a request body.
 */
export const floats = (bytes: Uint8Array): Float64Array => {
  if (!bigEndian && bytes.byteOffset % 8 === 0) return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8)
  const copy = new Float64Array(bytes.byteLength / 8)
  const view = new Uint8Array(copy.buffer)
  view.set(bytes)
  if (bigEndian) Buffer.from(copy.buffer).swap64()
  return copy
}

/** The history records a block stands for, in seq order. */
export const historyRows = (block: HistoryBlock): Array<HistoryRecord> => {
  const steps = floats(block.steps)
  const ts = floats(block.ts)
  const columns = block.columns.map(floats)
  const rows: Array<HistoryRecord> = []
  for (let r = 0; r < block.rows; r++) {
    const values: { [key: string]: number } = {}
    for (let k = 0; k < block.keys.length; k++) values[block.keys[k]!] = columns[k]![r]!
    rows.push({ kind: "history", seq: block.seq + r, ts: ts[r]!, step: steps[r]!, values })
  }
  return rows
}
