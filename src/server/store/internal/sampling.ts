/**
 * `history` with `samples`: at most N buckets of equal width over the steps of a range, per bucket
 * the last step's values of each key, and min and max of each numeric key (NaN left out), as a
 * chart's band needs. A bucket of at least BLOCK steps is read from the chunks' block summaries
 * alone (bench/history-read.ts: one metric of a million steps, samples=1000, in ~10 ms).
 */
import * as Effect from "effect/Effect"
import type { Value } from "../../../schemas/Record.js"
import type { HistoryRow } from "../../../schemas/Wire.js"
import { entryColumns, withFrames } from "./chunks.js"
import * as Chunk from "./historyChunk.js"
import type { Run } from "./sql.js"

/** Steps `from` to `to`, inclusive: what a history read is limited to. */
export interface StepRange {
  readonly from: number
  readonly to: number
}

/**
 * The chunk rows (as `h`) holding steps of the range: the chunk numbers bound the index scan, and
 * the chunk's first and last step (small columns, before the blobs) skip a chunk with none inside.
 */
export const inRange = (steps: StepRange) => ({
  where: `AND h.chunk BETWEEN ? AND ? AND h.last_step >= ? AND h.first_step <= ?`,
  params: [Chunk.chunkOf(steps.from), Chunk.chunkOf(steps.to), steps.from, steps.to]
})

/**
 * The buckets of `keys` (key_id → name; `ids` their list) over the range. When a bucket spans at
 * least BLOCK steps its width is a whole number of blocks, aligned to blocks, so it is read from
 * the block summaries alone, but for a chunk the range cuts through (at most the first and the
 * last of each key), whose entries inside the range are read.
 */
export const sampled = (run: Run, runPk: number, ids: string, names: ReadonlyMap<number, string>, steps: StepRange, samples: number) =>
  Effect.gen(function* () {
    const within = inRange(steps)
    const [range] = yield* run(
      `SELECT MIN(first_step) AS lo, MAX(last_step) AS hi FROM history_chunks h WHERE run_pk = ? AND key_id IN (${ids}) ${within.where}`,
      [runPk, ...within.params]
    )
    if (range.lo === null) return []
    const lo = Math.max(range.lo as number, steps.from)
    const hi = Math.min(range.hi as number, steps.to)
    let origin = lo
    let width = Math.ceil((hi - lo + 1) / samples)
    const blocks = width >= Chunk.BLOCK
    if (blocks) {
      origin = Math.floor(lo / Chunk.BLOCK) * Chunk.BLOCK
      width = Math.ceil(Math.ceil((hi - origin + 1) / samples) / Chunk.BLOCK) * Chunk.BLOCK
    }
    interface Cell { min: number; max: number; step: number; ts: number; value: Value }
    const buckets = new Map<number, Map<number, Cell>>()
    /** Folds an entry or block whose first step is `at` into its bucket. */
    const add = (at: number, keyId: number, min: number, max: number, step: number, ts: number, value: Value) => {
      const bucket = Math.floor((at - origin) / width)
      let cells = buckets.get(bucket)
      if (cells === undefined) buckets.set(bucket, (cells = new Map()))
      const cell = cells.get(keyId)
      if (cell === undefined) return void cells.set(keyId, { min, max, step, ts, value })
      cell.min = Chunk.minOf(cell.min, min)
      cell.max = Chunk.maxOf(cell.max, max)
      if (step > cell.step) (cell.step = step), (cell.ts = ts), (cell.value = value)
    }
    /** Folds the entries of a stored chunk that lie in the range. */
    const addEntries = (row: Parameters<typeof Chunk.entriesOf>[0] & { readonly key_id: number }) => {
      const chunk = Chunk.entriesOf(row)
      for (let i = 0; i < chunk.steps.length; i++) {
        const step = chunk.steps[i]!
        if (step < steps.from || step > steps.to) continue
        const v = chunk.vals[i]!
        const text = chunk.texts?.[i] ?? null
        const number = text === null ? v : NaN
        add(step, row.key_id, number, number, step, chunk.ts[i]!, Chunk.fromPair(v, text))
      }
    }
    const entries = `SELECT h.key_id, h.chunk, ${entryColumns} FROM ${withFrames} WHERE h.run_pk = ? AND h.key_id IN (${ids})`
    if (blocks) {
      const stored = yield* run(
        `SELECT key_id, chunk, first_step, last_step, blocks, block_texts FROM history_chunks h
           WHERE run_pk = ? AND key_id IN (${ids}) ${within.where}`,
        [runPk, ...within.params]
      )
      const cut = new Set<string>()
      for (const row of stored) {
        if (row.first_step < steps.from || row.last_step > steps.to) {
          cut.add(`${row.key_id}/${row.chunk}`)
          continue
        }
        // A block's first step decides its bucket: buckets are aligned to blocks.
        Chunk.forEachBlock(row.chunk, row.blocks, row.block_texts, (b) =>
          add(b.block * Chunk.BLOCK, row.key_id, b.min, b.max, b.lastStep, b.lastTs, b.lastValue))
      }
      if (cut.size > 0) {
        // Only the chunks holding `from` and `to` can be cut; the keys' other chunks there are skipped.
        const edges = yield* run(`${entries} AND h.chunk IN (?, ?)`, [runPk, Chunk.chunkOf(steps.from), Chunk.chunkOf(steps.to)])
        for (const row of edges) if (cut.has(`${row.key_id}/${row.chunk}`)) addEntries(row)
      }
    } else {
      for (const row of yield* run(`${entries} ${within.where}`, [runPk, ...within.params])) addEntries(row)
    }
    const rows: Array<HistoryRow> = []
    for (const bucket of [...buckets.keys()].sort((a, b) => a - b)) {
      const row = { step: -1, ts: 0, values: {} as { [key: string]: Value }, min: {} as { [key: string]: number }, max: {} as { [key: string]: number } }
      for (const [keyId, cell] of buckets.get(bucket)!) {
        const name = names.get(keyId)!
        if (cell.step > row.step) (row.step = cell.step), (row.ts = cell.ts)
        row.values[name] = cell.value
        if (!Number.isNaN(cell.min)) (row.min[name] = cell.min), (row.max[name] = cell.max)
      }
      rows.push(row)
    }
    return rows
  })
