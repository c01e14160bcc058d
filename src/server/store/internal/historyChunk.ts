/**
 * One metric of a run over CHUNK_STEPS aligned steps, as every store keeps it: packed columns
 * (step, seq, ts, value as Float64; non-numeric values as JSON text beside them) plus, per BLOCK
 * steps, min, max and the last entry, so that a `samples` read of a long run touches only the
 * block summaries (bench/history-read.ts). Pure data, no I/O: the stores read and write
 * the encoded form, its steps, seqs and ts once for all the keys that share them (historyFrame.ts).
 *
 * Values round-trip bit-exactly: every number (NaN, ±Infinity, -0 included) is a Float64; a
 * string, boolean or null is NaN in `vals` and its JSON in `texts` at the same index.
 */
import type { Value } from "../../../schemas/Record.js"

/** Steps per chunk row (aligned: chunk c holds steps c·CHUNK_STEPS … (c+1)·CHUNK_STEPS - 1). */
export const CHUNK_STEPS = 1024
/** Steps per block summary; a multiple of it divides CHUNK_STEPS. */
export const BLOCK = 64
const BLOCKS = CHUNK_STEPS / BLOCK
/** Doubles a block summary takes: min, max, last step, last ts, last value. */
const SUMMARY = 5

/** One metric's entries of one chunk, in step order, one entry a step. */
export interface Chunk {
  readonly steps: Array<number>
  readonly seqs: Array<number>
  readonly ts: Array<number>
  readonly vals: Array<number>
  /** JSON of a non-numeric value, else null. */
  readonly texts: Array<string | null>
}

/**
 * Entries on their way into a chunk: a Chunk, or columns cut from a history block (typed arrays,
 * `texts` null since every value of a block is a number), never copied into per-entry arrays.
 */
export interface Incoming {
  readonly steps: ArrayLike<number>
  readonly seqs: ArrayLike<number>
  readonly ts: ArrayLike<number>
  readonly vals: ArrayLike<number>
  /** JSON of a non-numeric value, else null; null for all of them when every value is a number. */
  readonly texts: ArrayLike<string | null> | null
  /**
   * `steps`, `seqs` and `ts` packed already: the keys of a block share them, so they are packed
   * once for all of its keys rather than once a key.
   */
  readonly packed?: { readonly steps: Buffer; readonly seqs: Buffer; readonly ts: Buffer }
}

/** The chunk row's columns as the stores keep them (BLOB in SQLite, bytea in PostgreSQL). */
export interface EncodedChunk {
  readonly n: number
  readonly firstStep: number
  readonly lastStep: number
  /** Float64 × SUMMARY per block (NaN step for an empty block, NaN min/max for no number). */
  readonly blocks: Buffer
  /** `{ block: json }` for blocks whose last value is not a number; null when there is none. */
  readonly blockTexts: string | null
  readonly steps: Buffer
  readonly seqs: Buffer
  readonly ts: Buffer
  readonly vals: Buffer
  /** `{ index: json }` of non-numeric values; null when there is none. */
  readonly texts: string | null
}

/** The chunk a step belongs to. */
export const chunkOf = (step: number): number => Math.floor(step / CHUNK_STEPS)

/** An empty chunk. */
export const empty = (): Chunk => ({ steps: [], seqs: [], ts: [], vals: [], texts: [] })

/** A value as its (Float64, text) pair. */
const toPair = (value: Value): readonly [number, string | null] =>
  typeof value === "number" ? [value, null] : [NaN, JSON.stringify(value)]
/** The value of a (Float64, text) pair. */
export const fromPair = (value: number, text: string | null): Value => (text === null ? value : (JSON.parse(text) as Value))

/** Appends one entry; the caller merges afterwards when steps came out of order. */
export const push = (chunk: Chunk, step: number, seq: number, ts: number, value: Value): void => {
  const [number, text] = toPair(value)
  chunk.steps.push(step)
  chunk.seqs.push(seq)
  chunk.ts.push(ts)
  chunk.vals.push(number)
  chunk.texts.push(text)
}

/** The smaller of a summary's min and a new one, NaN (no number) on either side left out. */
export const minOf = (held: number, next: number): number => (next !== next || held <= next ? held : next)
/** The larger of a summary's max and a new one, NaN (no number) on either side left out. */
export const maxOf = (held: number, next: number): number => (next !== next || held >= next ? held : next)

const isOrdered = (steps: ArrayLike<number>): boolean => {
  for (let i = 1; i < steps.length; i++) if (steps[i]! <= steps[i - 1]!) return false
  return true
}

const textAt = (entries: Incoming, i: number): string | null => (entries.texts === null ? null : entries.texts[i]!)

/**
 * Pieces of one chunk's incoming entries as one, in the order given: a single piece as it is,
 * pieces all of numbers (as blocks give) as typed columns, anything else as a Chunk.
 */
export const concat = (pieces: ReadonlyArray<Incoming>): Incoming => {
  if (pieces.length === 1) return pieces[0]!
  let length = 0
  for (const piece of pieces) length += piece.steps.length
  const column = (of: (piece: Incoming) => ArrayLike<number>) => {
    const out = new Float64Array(length)
    let at = 0
    for (const piece of pieces) (out.set(of(piece), at), (at += piece.steps.length))
    return out
  }
  let texts: Array<string | null> | null = null
  if (pieces.some((piece) => piece.texts !== null)) {
    texts = []
    for (const piece of pieces) for (let i = 0; i < piece.steps.length; i++) texts.push(textAt(piece, i))
  }
  return { steps: column((p) => p.steps), seqs: column((p) => p.seqs), ts: column((p) => p.ts), vals: column((p) => p.vals), texts }
}

/**
 * `held` with `incoming` merged in, in step order, one entry a step: of two entries at one step
 * the one with the higher seq wins, whichever arrived first.
 */
export const merge = (held: Chunk, incoming: Incoming): Chunk => {
  const at = new Map<number, { chunk: Incoming; i: number }>()
  for (const chunk of [held, incoming]) {
    for (let i = 0; i < chunk.steps.length; i++) {
      const other = at.get(chunk.steps[i]!)
      if (other === undefined || other.chunk.seqs[other.i]! < chunk.seqs[i]!) at.set(chunk.steps[i]!, { chunk, i })
    }
  }
  const out = empty()
  for (const step of [...at.keys()].sort((a, b) => a - b)) {
    const { chunk, i } = at.get(step)!
    out.steps.push(step)
    out.seqs.push(chunk.seqs[i]!)
    out.ts.push(chunk.ts[i]!)
    out.vals.push(chunk.vals[i]!)
    out.texts.push(textAt(chunk, i))
  }
  return out
}

/** Numbers as the Float64 blob of a column: a view of a Float64Array's bytes (the drivers copy what they bind). */
export const pack = (numbers: ArrayLike<number>): Buffer =>
  numbers instanceof Float64Array
    ? Buffer.from(numbers.buffer, numbers.byteOffset, numbers.byteLength)
    : Buffer.from(Float64Array.from(numbers).buffer)
/** Float64s of a blob (copied: a driver's buffers need not be 8-byte aligned). */
const unpackFloats = (bytes: Uint8Array): Float64Array =>
  new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
const textsOf = (texts: ArrayLike<string | null> | null): string | null => {
  if (texts === null) return null
  let out: { [index: number]: string } | undefined
  for (let i = 0; i < texts.length; i++) if (texts[i] !== null) (out ??= {})[i] = texts[i]!
  return out === undefined ? null : JSON.stringify(out)
}

/** The chunk (holding at least one entry, all of chunk `c`) as its columns, with its block summaries. */
export const encode = (chunk: Incoming, c: number): EncodedChunk => {
  const { steps, ts, vals, texts } = chunk
  const n = steps.length
  const blocks = new Float64Array(BLOCKS * SUMMARY).fill(NaN)
  // Steps are in order: a block's entries are one run of them, its last entry its last step.
  for (let i = 0; i < n;) {
    const block = Math.floor(steps[i]! / BLOCK)
    const next = (block + 1) * BLOCK
    let min = NaN
    let max = NaN
    let j = i
    for (; j < n && steps[j]! < next; j++) {
      const value = vals[j]!
      // NaN, logged or standing for a text, counts in neither min nor max; texts need no look here.
      if (value === value) {
        if (!(min <= value)) min = value // NaN (no number yet) compares false
        if (!(max >= value)) max = value
      }
    }
    const o = (block - c * BLOCKS) * SUMMARY
    blocks[o] = min
    blocks[o + 1] = max
    blocks[o + 2] = steps[j - 1]!
    blocks[o + 3] = ts[j - 1]!
    blocks[o + 4] = vals[j - 1]!
    i = j
  }
  const blockTexts: { [block: number]: string } = {}
  if (texts !== null) {
    for (let i = 0; i < steps.length; i++) {
      const b = Math.floor(steps[i]! / BLOCK) - c * BLOCKS
      if (texts[i] !== null) blockTexts[b] = texts[i]!
      else delete blockTexts[b]
    }
  }
  return {
    n,
    firstStep: steps[0]!,
    lastStep: steps[n - 1]!,
    blocks: Buffer.from(blocks.buffer),
    blockTexts: Object.keys(blockTexts).length > 0 ? JSON.stringify(blockTexts) : null,
    steps: chunk.packed?.steps ?? pack(chunk.steps),
    seqs: chunk.packed?.seqs ?? pack(chunk.seqs),
    ts: chunk.packed?.ts ?? pack(chunk.ts),
    vals: pack(chunk.vals),
    texts: textsOf(chunk.texts)
  }
}

/** A chunk row as a store gives it back. */
export interface StoredChunk {
  readonly n: number
  readonly last_step: number
  readonly blocks: Uint8Array
  readonly block_texts: string | null
  readonly steps: Uint8Array
  readonly seqs: Uint8Array
  readonly ts: Uint8Array
  readonly vals: Uint8Array
  readonly texts: string | null
}

/**
 * `stored` (if any) with `incoming` merged in, encoded. When every incoming step comes after the
 * stored ones, in order (an upload in order), the stored blobs are extended and the block
 * summaries combined without decoding what is stored: the costly part of an ingest otherwise
 * (bench/history-read.ts).
 */
export const mergeInto = (stored: StoredChunk | undefined, incoming: Incoming, c: number): EncodedChunk => {
  const ordered = isOrdered(incoming.steps)
  if (stored === undefined) return encode(ordered ? incoming : merge(empty(), incoming), c)
  if (!ordered || incoming.steps[0]! <= stored.last_step) return encode(merge(decode(stored), incoming), c)
  const added = encode(incoming, c)
  const blocks = unpackFloats(stored.blocks)
  const fresh = new Float64Array(added.blocks.buffer, added.blocks.byteOffset, BLOCKS * SUMMARY)
  const blockTexts: { [block: string]: string } = stored.block_texts === null ? {} : JSON.parse(stored.block_texts)
  const freshTexts: { [block: string]: string } = added.blockTexts === null ? {} : JSON.parse(added.blockTexts)
  for (let b = 0; b < BLOCKS; b++) {
    const o = b * SUMMARY
    if (Number.isNaN(fresh[o + 2]!)) continue // nothing new in this block
    blocks[o] = minOf(blocks[o]!, fresh[o]!)
    blocks[o + 1] = maxOf(blocks[o + 1]!, fresh[o + 1]!)
    for (let k = 2; k < SUMMARY; k++) blocks[o + k] = fresh[o + k]!
    const text = freshTexts[b]
    if (text !== undefined) blockTexts[b] = text
    else delete blockTexts[b]
  }
  let texts = stored.texts
  if (added.texts !== null) {
    const all: { [i: string]: string } = texts === null ? {} : JSON.parse(texts)
    for (const [i, text] of Object.entries(JSON.parse(added.texts) as { [i: string]: string })) all[Number(i) + stored.n] = text
    texts = JSON.stringify(all)
  }
  return {
    n: stored.n + added.n,
    firstStep: unpackFloats(stored.steps.subarray(0, 8))[0]!,
    lastStep: added.lastStep,
    blocks: Buffer.from(blocks.buffer),
    blockTexts: Object.keys(blockTexts).length > 0 ? JSON.stringify(blockTexts) : null,
    steps: Buffer.concat([stored.steps, added.steps]),
    seqs: Buffer.concat([stored.seqs, added.seqs]),
    ts: Buffer.concat([stored.ts, added.ts]),
    vals: Buffer.concat([stored.vals, added.vals]),
    texts
  }
}

/** The chunk back from its stored columns. */
export const decode = (row: {
  readonly steps: Uint8Array
  readonly seqs: Uint8Array
  readonly ts: Uint8Array
  readonly vals: Uint8Array
  readonly texts: string | null
}): Chunk => {
  const steps = Array.from(unpackFloats(row.steps))
  const texts: Array<string | null> = new Array(steps.length).fill(null)
  if (row.texts !== null) for (const [i, text] of Object.entries(JSON.parse(row.texts) as { [i: string]: string })) texts[Number(i)] = text
  return {
    steps,
    seqs: Array.from(unpackFloats(row.seqs)),
    ts: Array.from(unpackFloats(row.ts)),
    vals: Array.from(unpackFloats(row.vals)),
    texts
  }
}

/** Steps and ts a chunk's keys share, unpacked once for all of them. */
export interface SharedColumns {
  readonly steps: Float64Array
  readonly ts: Float64Array
}

/** A key chunk's entries as a read walks them (`entriesOf`): columns, and the texts by index. */
export interface Entries {
  readonly steps: Float64Array
  readonly ts: Float64Array
  readonly vals: Float64Array
  readonly texts: { readonly [index: string]: string } | null
}

/** A frame's columns (historyFrame.ts) unpacked, for `entriesOf`. */
export const sharedColumns = (frame: { readonly steps: Uint8Array; readonly ts: Uint8Array }): SharedColumns => ({
  steps: unpackFloats(frame.steps),
  ts: unpackFloats(frame.ts)
})

/**
 * A stored key chunk's entries as a read walks them: its columns as stored, steps and ts its own
 * or the first `n` of its frame's (`shared`), without the arrays `decode` builds for a merge. A
 * sampled read of a run under 32k steps (samples=1000) walks every entry of every key, and
 * copying each key's share of the frame and then each column into arrays was most of its time
 * (bench/concurrent.ts, profiled).
 */
export const entriesOf = (
  row: {
    readonly n: number
    readonly steps: Uint8Array | null
    readonly ts: Uint8Array | null
    readonly vals: Uint8Array
    readonly texts: string | null
  },
  shared: SharedColumns | undefined
): Entries => ({
  steps: row.steps !== null ? unpackFloats(row.steps) : shared!.steps.subarray(0, row.n),
  ts: row.ts !== null ? unpackFloats(row.ts) : shared!.ts.subarray(0, row.n),
  vals: unpackFloats(row.vals),
  texts: row.texts === null ? null : (JSON.parse(row.texts) as { [index: string]: string })
})

/** One block's summary as a sampled read uses it. */
export interface BlockSummary {
  readonly block: number
  /** Min and max of the block's numbers other than NaN; NaN when it has none. */
  readonly min: number
  readonly max: number
  readonly lastStep: number
  readonly lastTs: number
  readonly lastValue: Value
}

/** A key chunk's stored block summaries, unpacked: SUMMARY floats a block, and the texts of blocks whose last value is not a number. */
export interface BlockSummaries {
  readonly floats: Float64Array
  readonly texts: { readonly [block: string]: string }
}

/** The block summaries of a chunk row's `blocks` and `block_texts`. */
export const summariesOf = (blocks: Uint8Array, blockTexts: string | null): BlockSummaries => ({
  floats: unpackFloats(blocks),
  texts: blockTexts === null ? {} : (JSON.parse(blockTexts) as { [b: string]: string })
})

/** Calls `f` for each non-empty block of chunk `c`'s summaries, in step order. */
export const forEachBlock = (c: number, { floats, texts }: BlockSummaries, f: (summary: BlockSummary) => void): void => {
  for (let b = 0; b < BLOCKS; b++) {
    const o = b * SUMMARY
    if (Number.isNaN(floats[o + 2]!)) continue
    const text = texts[b]
    f({
      block: c * BLOCKS + b,
      min: floats[o]!,
      max: floats[o + 1]!,
      lastStep: floats[o + 2]!,
      lastTs: floats[o + 3]!,
      lastValue: text === undefined ? floats[o + 4]! : (JSON.parse(text) as Value)
    })
  }
}
