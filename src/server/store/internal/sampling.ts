/**
 * `history` with `samples`: at most N buckets of equal width over the steps of a range, per bucket
 * the last step's values of each key, and min and max of each numeric key (NaN left out), as a
 * chart's band needs. A bucket of at least BLOCK steps is read from the chunks' block summaries
 * alone (bench/history-read.ts: one metric of a million steps, samples=1000, in ~10 ms), and so is
 * one of half a block or more, widened to a whole block: at least N/2 buckets instead of N, which a
 * chart of N points does not show, for a read of the summaries instead of every entry (ten keys
 * of a 50k-step run, samples=1000: ~38 ms of the server's thread, while the run ingests).
 */
import * as Effect from "effect/Effect"
import type { Value } from "../../../schemas/Record.js"
import type { HistoryRow } from "../../../schemas/Wire.js"
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
 * least BLOCK / 2 steps its width is a whole number of blocks, aligned to blocks, so it is read from
 * the block summaries alone, but for a chunk the range cuts through (at most the first and the
 * last of each key), whose entries inside the range are read.
 */
export const sampled = (run: Run, runPk: number, ids: string, names: ReadonlyMap<number, string>, steps: StepRange, samples: number) =>
  Effect.gen(function* () {
    const within = inRange(steps)
    // The chunks' steps and block summaries first: the steps bound the buckets, and a long run's are read from its blocks alone.
    const stored = yield* run(
      `SELECT key_id, chunk, first_step, last_step, blocks, block_texts FROM history_chunks h
         WHERE run_pk = ? AND key_id IN (${ids}) ${within.where}`,
      [runPk, ...within.params]
    )
    if (stored.length === 0) return []
    let lo = steps.to
    let hi = steps.from
    for (const row of stored) (lo = Math.min(lo, row.first_step), (hi = Math.max(hi, row.last_step)))
    lo = Math.max(lo, steps.from)
    hi = Math.min(hi, steps.to)
    let origin = lo
    let width = Math.ceil((hi - lo + 1) / samples)
    const blocks = width * 2 >= Chunk.BLOCK
    if (blocks) {
      origin = Math.floor(lo / Chunk.BLOCK) * Chunk.BLOCK
      width = Math.ceil(Math.ceil((hi - origin + 1) / samples) / Chunk.BLOCK) * Chunk.BLOCK
    }
    interface Cell { min: number; max: number; step: number; ts: number; value: Value }
    // key_id → its cells by bucket number (at most `samples` of them): arrays, not maps, since a
    // read of a run under 64k steps folds every entry here (~500k for ten keys of 50k steps).
    const cellsByKey = new Map<number, Array<Cell | undefined>>()
    const cellsOf = (keyId: number): Array<Cell | undefined> => {
      let cells = cellsByKey.get(keyId)
      if (cells === undefined) cellsByKey.set(keyId, (cells = []))
      return cells
    }
    /** Folds an entry or block whose first step is `at` into its bucket of `cells` (one key's). */
    const add = (cells: Array<Cell | undefined>, at: number, min: number, max: number, step: number, ts: number, value: Value) => {
      const bucket = Math.floor((at - origin) / width)
      const cell = cells[bucket]
      if (cell === undefined) return void (cells[bucket] = { min, max, step, ts, value })
      cell.min = Chunk.minOf(cell.min, min)
      cell.max = Chunk.maxOf(cell.max, max)
      if (step > cell.step) (cell.step = step), (cell.ts = ts), (cell.value = value)
    }
    /** Folds the entries of a stored chunk that lie in the range. */
    const addEntries = (row: Parameters<typeof Chunk.entriesOf>[0] & { readonly key_id: number; readonly chunk: number }, frames: ReadonlyMap<number, Chunk.SharedColumns>) => {
      const chunk = Chunk.entriesOf(row, frames.get(row.chunk))
      const cells = cellsOf(row.key_id)
      for (let i = 0; i < chunk.steps.length; i++) {
        const step = chunk.steps[i]!
        if (step < steps.from || step > steps.to) continue
        const v = chunk.vals[i]!
        const text = chunk.texts === null ? null : (chunk.texts[i] ?? null)
        if (text === null) add(cells, step, v, v, step, chunk.ts[i]!, v)
        else add(cells, step, NaN, NaN, step, chunk.ts[i]!, Chunk.fromPair(v, text))
      }
    }
    /**
     * The entries of the key chunks `where` says, folded: each chunk's frame read and unpacked
     * once, not once a key (a join repeats it on every key's row).
     */
    const addEntriesWhere = (where: string, params: ReadonlyArray<unknown>) =>
      Effect.gen(function* () {
        const rows = yield* run(`SELECT h.key_id, h.chunk, h.n, h.steps, h.ts, h.vals, h.texts FROM history_chunks h WHERE h.run_pk = ? AND h.key_id IN (${ids}) ${where}`, [runPk, ...params])
        const shared = [...new Set(rows.filter((row) => row.steps === null || row.ts === null).map((row) => row.chunk as number))]
        const frames = new Map<number, Chunk.SharedColumns>()
        if (shared.length > 0) {
          for (const frame of yield* run(`SELECT chunk, steps, ts FROM history_frames WHERE run_pk = ? AND chunk IN (${shared.join(",")})`, [runPk])) {
            frames.set(frame.chunk, Chunk.sharedColumns(frame))
          }
        }
        for (const row of rows) addEntries(row, frames)
      })
    if (blocks) {
      const cut = new Set<string>()
      for (const row of stored) {
        if (row.first_step < steps.from || row.last_step > steps.to) {
          cut.add(`${row.key_id}/${row.chunk}`)
          continue
        }
        // A block's first step decides its bucket: buckets are aligned to blocks.
        const cells = cellsOf(row.key_id)
        Chunk.forEachBlock(row.chunk, row.blocks, row.block_texts, (b) => add(cells, b.block * Chunk.BLOCK, b.min, b.max, b.lastStep, b.lastTs, b.lastValue))
      }
      if (cut.size > 0) {
        // Only the chunks holding `from` and `to` can be cut; the keys' other chunks there are skipped.
        const edges = [...cut].map((at) => `(${at.replace("/", ",")})`).join(",")
        yield* addEntriesWhere(`AND (h.key_id, h.chunk) IN (VALUES ${edges})`, [])
      }
    } else {
      yield* addEntriesWhere(within.where, within.params)
    }
    const rows: Array<HistoryRow> = []
    const keys = [...cellsByKey].sort(([a], [b]) => a - b).map(([keyId, cells]) => ({ name: names.get(keyId)!, cells }))
    const buckets = Math.max(0, ...keys.map(({ cells }) => cells.length))
    for (let bucket = 0; bucket < buckets; bucket++) {
      let row: { step: number; ts: number; values: { [key: string]: Value }; min: { [key: string]: number }; max: { [key: string]: number } } | null = null
      for (const { name, cells } of keys) {
        const cell = cells[bucket]
        if (cell === undefined) continue
        row ??= { step: -1, ts: 0, values: {}, min: {}, max: {} }
        if (cell.step > row.step) (row.step = cell.step), (row.ts = cell.ts)
        row.values[name] = cell.value
        if (!Number.isNaN(cell.min)) (row.min[name] = cell.min), (row.max[name] = cell.max)
      }
      if (row !== null) rows.push(row)
    }
    return rows
  })
