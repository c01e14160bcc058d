/** History rows as the one HistoryBlock record the journal and the uploader carry them as. */
import type { HistoryBlock, HistoryRecord } from "../../src/schemas/Record.js"

/** `rows` (consecutive seqs, the same keys, every value a number) as one block. */
export const blockOf = (rows: ReadonlyArray<HistoryRecord>): HistoryBlock => {
  const keys = Object.keys(rows[0]!.values)
  rows.forEach((row, i) => {
    if (row.seq !== rows[0]!.seq + i || Object.keys(row.values).join() !== keys.join()) throw new Error(`row ${i} cannot join the block`)
  })
  const column = (of: (row: HistoryRecord) => number) => {
    const bytes = new Uint8Array(rows.length * 8)
    const view = new DataView(bytes.buffer)
    rows.forEach((row, i) => view.setFloat64(i * 8, of(row), true))
    return bytes
  }
  return {
    kind: "historyBlock",
    seq: rows[0]!.seq,
    rows: rows.length,
    keys,
    steps: column((row) => row.step),
    ts: column((row) => row.ts),
    columns: keys.map((key) => column((row) => row.values[key] as number))
  }
}
