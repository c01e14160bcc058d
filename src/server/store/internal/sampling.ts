/**
 * `history` with `samples`: at most N buckets of equal width over the steps of a range, per bucket
 * the last step's values of each key, and min and max of each numeric key (NaN left out), as a
 * chart's band needs. A bucket of at least BLOCK steps is read from the chunks' block summaries
 * alone (bench/history-read.ts: one metric of a million steps, samples=1000, in ~10 ms), and so is
 * one of half a block or more, widened to a whole block: at least N/2 buckets instead of N, which a
 * chart of N points does not show, for a read of the summaries instead of every entry (ten keys
 * of a 50k-step run, samples=1000: ~38 ms of the server's thread, while the run ingests). A
 * narrower bucket is a power of two steps wide, again at least N/2 of them.
 *
 * So the buckets of a growing run stay where they were from one read to the next (until the run
 * doubles, or grows by N blocks), and a read keeps its rows (HistoryCache.remember): the next read
 * of the same range makes again only the buckets over chunks written since, the top chunk of each
 * key of a live run, and answers the other rows as they were, the very objects, whose JSON the
 * server keeps (QueryHandlers.ts). A sampled read of a 25k-step run of ten keys made all 1,000
 * rows each time: ~18 ms of the server's CPU, a third of it the answer's JSON (a probe of 300
 * reads of such a run, profiled; bench/concurrent.ts's paced runs read one as it grows).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { RunId, Value } from "../../../schemas/Record.js"
import type { HistoryRow, ProjectName } from "../../../schemas/Wire.js"
import type { ChunkRef, HistoryCache, RunOf } from "./historyCache.js"
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
 * The keys a history read asks for (all when undefined), as the condition of its join of
 * `metric_keys k` onto the run: a run read for keys it lacks is still found, with none.
 */
export const pickedKeys = (keys: ReadonlyArray<string> | undefined) =>
  keys === undefined
    ? { on: "", params: [] }
    : keys.length === 0
    ? { on: "AND 1 = 0", params: [] }
    : { on: `AND k.name IN (${keys.map(() => "?").join(",")})`, params: keys }

/** What a sampled read keeps of its answer for the next read of the same range (HistoryCache.remember). */
interface Answer {
  readonly origin: number
  readonly width: number
  /** Chunk number → the stamps of the keys' chunks of that number. */
  readonly stamps: ReadonlyMap<number, string>
  /** By bucket: its row, null when no key has an entry in it. */
  readonly rows: ReadonlyArray<HistoryRow | null>
}

/** The stamps of `refs` (in key order) by chunk number: a chunk number's text changes with any of its key chunks, or with one added. */
const stampsByChunk = (refs: ReadonlyArray<ChunkRef>): Map<number, string> => {
  const stamps = new Map<number, string>()
  for (const ref of refs) stamps.set(ref.chunk, `${stamps.get(ref.chunk) ?? ""}${ref.key_id}:${ref.stamp} `)
  return stamps
}

/**
 * The buckets of a run's keys (`keys`, all when undefined) over the range; none when the run does
 * not exist. When a bucket spans at least BLOCK / 2 steps its width is a whole number of blocks,
 * aligned to blocks, so it is read from the block summaries alone, but for a chunk the range cuts
 * through (at most the first and the last of each key), whose entries inside the range are read.
 * Summaries and entries come through `cache`, which keeps those of rows unchanged since an
 * earlier read, and so do the rows of buckets over such chunks alone.
 */
export const sampled = (
  run: Run,
  cache: HistoryCache,
  project: ProjectName,
  runId: RunId,
  keys: ReadonlyArray<string> | undefined,
  steps: StepRange,
  samples: number
) =>
  Effect.gen(function* () {
    const within = inRange(steps)
    const picked = pickedKeys(keys)
    // The run, its keys and their chunks' steps and stamps in one statement (a round trip less on
    // PostgreSQL): the steps bound the buckets, the stamps say what `cache` holds as it is.
    const found: ReadonlyArray<Partial<ChunkRef & { readonly first_step: number; readonly last_step: number; readonly name: string }> & { readonly run_pk: number }> = yield* run(
      `SELECT r.run_pk, k.key_id, k.name, h.chunk, h.first_step, h.last_step, ${cache.firstColumns}
         FROM runs r LEFT JOIN metric_keys k ON k.run_pk = r.run_pk ${picked.on}
         LEFT JOIN history_chunks h ON h.run_pk = r.run_pk AND h.key_id = k.key_id ${within.where}
         WHERE r.project = ? AND r.run_id = ? ORDER BY k.key_id, h.chunk`,
      [...picked.params, ...within.params, project, runId]
    )
    if (found.length === 0) return Option.none<ReadonlyArray<HistoryRow>>()
    const owner: RunOf = { pk: found[0]!.run_pk, id: `${project}/${runId}` }
    const names = new Map<number, string>()
    for (const row of found) if (row.key_id != null) names.set(row.key_id, row.name!)
    const stored = found.filter((row) => row.chunk != null) as ReadonlyArray<ChunkRef & { readonly first_step: number; readonly last_step: number }>
    if (stored.length === 0) return Option.some<ReadonlyArray<HistoryRow>>([])
    // The steps the buckets span: those of the run's chunks, within the range.
    let lo = steps.to
    let hi = steps.from
    for (const row of stored) (lo = Math.min(lo, row.first_step), (hi = Math.max(hi, row.last_step)))
    lo = Math.max(lo, steps.from)
    hi = Math.min(hi, steps.to)
    const { origin, width, blocks } = bucketing(lo, hi, samples)
    const count = Math.floor((hi - origin) / width) + 1
    /** The chunk numbers a bucket spans. */
    const chunksOf = (bucket: number): Array<number> => {
      const start = origin + bucket * width
      return Array.from({ length: Chunk.chunkOf(start + width - 1) - Chunk.chunkOf(start) + 1 }, (_, i) => Chunk.chunkOf(start) + i)
    }

    // The rows of the last read of this range that can stand: same buckets, and their chunks as they were.
    // (`names` is in key order, as the statement gave them.)
    const what = `${[...names.keys()].join(",")}/${steps.from}/${steps.to}/${samples}`
    const stamps = stampsByChunk(stored)
    const before = cache.recall<Answer>(owner, what)
    const stands = Array.from({ length: count }, (_, bucket) =>
      before !== undefined && before.origin === origin && before.width === width && bucket < before.rows.length &&
      chunksOf(bucket).every((c) => stamps.get(c) === before.stamps.get(c)))
    const wanted = new Set(stands.flatMap((stood, bucket) => (stood ? [] : chunksOf(bucket))))
    const refs = stored.filter((row) => wanted.has(row.chunk))

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
        const entries = (yield* cache.entries(run, owner, refs)).values
        refs.forEach((ref, i) => {
          const chunk = entries[i]
          if (chunk !== undefined) bucketsOf(ref.key_id).addEntries(chunk, range, origin, width)
        })
      })
    if (blocks) {
      // Only the chunks holding `from` and `to` can be cut (at most the first and the last of each
      // key), and a chunk written since the first statement may have grown: their entries are read.
      const whole = refs.filter((row) => row.first_step >= steps.from && row.last_step <= steps.to)
      const cut = refs.filter((row) => row.first_step < steps.from || row.last_step > steps.to)
      const { values: summaries, changed } = yield* cache.summaries(run, owner, whole)
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
    } else if (refs.length > 0) {
      yield* addEntriesOf(refs)
    }

    const cellsByName = [...byKey].sort(([a], [b]) => a - b).map(([keyId, buckets]) => ({ name: names.get(keyId)!, cells: buckets.cells }))
    const made = new Array<HistoryRow | null>(count)
    for (let bucket = 0; bucket < count; bucket++) {
      if (stands[bucket]) {
        made[bucket] = before!.rows[bucket] ?? null
        continue
      }
      let row: { step: number; ts: number; values: { [key: string]: Value }; min: { [key: string]: number }; max: { [key: string]: number } } | null = null
      for (const { name, cells } of cellsByName) {
        const cell = cells[bucket]
        if (cell === undefined) continue
        row ??= { step: -1, ts: 0, values: {}, min: {}, max: {} }
        if (cell.step > row.step) (row.step = cell.step), (row.ts = cell.ts)
        row.values[name] = cell.value
        if (!Number.isNaN(cell.min)) (row.min[name] = cell.min), (row.max[name] = cell.max)
      }
      made[bucket] = row
    }
    const rows = made.filter((row): row is HistoryRow => row !== null)
    cache.remember(owner, what, { origin, width, stamps, rows: made } satisfies Answer, count * 8 + rows.length * (ROW_BYTES + names.size * KEY_BYTES))
    return Option.some<ReadonlyArray<HistoryRow>>(rows)
  })

/**
 * The buckets of steps `lo` to `hi` in at most `samples`: from `origin`, `width` steps each, a
 * power of two, or (`blocks`) whole blocks aligned to blocks once a bucket spans half a block.
 */
const bucketing = (lo: number, hi: number, samples: number): { readonly origin: number; readonly width: number; readonly blocks: boolean } => {
  const narrowest = Math.ceil((hi - lo + 1) / samples)
  if (narrowest * 2 < Chunk.BLOCK) return { origin: lo, width: 2 ** Math.ceil(Math.log2(narrowest)), blocks: false }
  const origin = Math.floor(lo / Chunk.BLOCK) * Chunk.BLOCK
  return { origin, width: Math.ceil(Math.ceil((hi - origin + 1) / samples) / Chunk.BLOCK) * Chunk.BLOCK, blocks: true }
}

/** What a kept row costs in bytes, about: its objects, and a key's three numbers in them and in the row's JSON (QueryHandlers.ts). */
const ROW_BYTES = 200
const KEY_BYTES = 3 * 64

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
