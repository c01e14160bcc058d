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
import type { ChunkCache, ChunkRef } from "./chunkCache.js"
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
 * last of each key), whose entries inside the range are read. Summaries and entries come through
 * `chunks`, which keeps those of rows unchanged since an earlier read.
 */
export const sampled = (run: Run, runPk: number, ids: string, names: ReadonlyMap<number, string>, steps: StepRange, samples: number, chunks: ChunkCache) =>
  Effect.gen(function* () {
    const within = inRange(steps)
    // The chunks' steps and stamps first: the steps bound the buckets, and the stamps say which chunks `chunks` holds as they are.
    const stored: ReadonlyArray<ChunkRef & { readonly first_step: number; readonly last_step: number }> = yield* run(
      `SELECT h.key_id, h.chunk, h.first_step, h.last_step, ${chunks.firstColumns} FROM ${chunks.source}
         WHERE h.run_pk = ? AND h.key_id IN (${ids}) ${within.where}`,
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
    // Entries are folded up to `hi`: a chunk written since the first statement (PostgreSQL reads
    // each statement at its own snapshot) may hold steps past it, which these buckets do not cover.
    const range: StepRange = { from: steps.from, to: hi }
    const byKey = new Map<number, KeyBuckets>()
    const bucketsOf = (keyId: number): KeyBuckets => {
      let buckets = byKey.get(keyId)
      if (buckets === undefined) byKey.set(keyId, (buckets = new KeyBuckets()))
      return buckets
    }
    /** Folds the entries of `refs` that lie in the range. */
    const addEntriesOf = (refs: ReadonlyArray<ChunkRef>) =>
      Effect.gen(function* () {
        const entries = (yield* chunks.entries(run, runPk, refs)).values
        refs.forEach((ref, i) => {
          const chunk = entries[i]
          if (chunk !== undefined) bucketsOf(ref.key_id).addEntries(chunk, range, origin, width)
        })
      })
    if (blocks) {
      // Only the chunks holding `from` and `to` can be cut (at most the first and the last of each
      // key), and a chunk written since the first statement may have grown: their entries are read.
      const whole = stored.filter((row) => row.first_step >= steps.from && row.last_step <= steps.to)
      const cut = stored.filter((row) => row.first_step < steps.from || row.last_step > steps.to)
      const { values: summaries, changed } = yield* chunks.summaries(run, runPk, whole)
      for (let i = 0; i < whole.length; i++) {
        const row = whole[i]!
        const summary = summaries[i]
        if (summary === undefined) continue
        if (changed[i]) {
          cut.push(row)
          continue
        }
        // A block's first step decides its bucket: buckets are aligned to blocks.
        const into = bucketsOf(row.key_id)
        Chunk.forEachBlock(row.chunk, summary, (b) => into.add(Math.floor((b.block * Chunk.BLOCK - origin) / width), b.min, b.max, b.lastStep, b.lastTs, b.lastValue))
      }
      if (cut.length > 0) yield* addEntriesOf(cut)
    } else {
      yield* addEntriesOf(stored)
    }
    const rows: Array<HistoryRow> = []
    const keys = [...byKey].sort(([a], [b]) => a - b).map(([keyId, buckets]) => ({ name: names.get(keyId)!, cells: buckets.cells }))
    const count = Math.floor((hi - origin) / width) + 1
    for (let bucket = 0; bucket < count; bucket++) {
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

/** A bucket of one key: min and max of its numbers (NaN while it has none), and its latest entry's step, ts and value. */
interface Cell {
  min: number
  max: number
  step: number
  ts: number
  value: Value
}

/** One key's buckets, by bucket number: only those the key has entries in (a sparse key has few). */
class KeyBuckets {
  readonly cells: Array<Cell | undefined> = []

  /** Folds an entry or a block into `bucket`: `min` and `max` (NaN: none), and, when `step` is its latest, ts and value. */
  add(bucket: number, min: number, max: number, step: number, ts: number, value: Value): void {
    const cell = this.cells[bucket]
    if (cell === undefined) return void (this.cells[bucket] = { min, max, step, ts, value })
    cell.min = Chunk.minOf(cell.min, min)
    cell.max = Chunk.maxOf(cell.max, max)
    if (step > cell.step) (cell.step = step), (cell.ts = ts), (cell.value = value)
  }

  /**
   * Folds the entries of a key's chunk that lie in `range` into buckets of `width` steps from
   * `origin`, a run of entries in one bucket at a time (a chunk's steps ascend): min and max over
   * the run, then one `add` of them with the run's latest entry. An `add` an entry cost a read of
   * 250k entries ~6 ms, this ~3 (bench/concurrent.ts, profiled).
   */
  addEntries({ steps, ts, vals, texts }: Chunk.Entries, range: StepRange, origin: number, width: number): void {
    for (let i = 0; i < steps.length;) {
      const first = steps[i]!
      if (first < range.from || first > range.to) {
        i++
        continue
      }
      const bucket = Math.floor((first - origin) / width)
      const start = origin + bucket * width
      const end = Math.min(start + width, range.to + 1)
      let lo = NaN
      let hi = NaN
      let latest = i
      let j = i
      for (; j < steps.length; j++) {
        const step = steps[j]!
        if (step < start || step >= end) break
        if (step > steps[latest]!) latest = j
        if (texts === null || texts[j] === undefined) (lo = Chunk.minOf(lo, vals[j]!)), (hi = Chunk.maxOf(hi, vals[j]!))
      }
      const text = texts === null ? undefined : texts[latest]
      this.add(bucket, lo, hi, steps[latest]!, ts[latest]!, text === undefined ? vals[latest]! : Chunk.fromPair(vals[latest]!, text))
      i = j
    }
  }
}
