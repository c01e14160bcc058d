/**
 * History rows into chunks (historyChunk.ts) and frames (historyFrame.ts): how an ingest stores a
 * batch's history rows and blocks, and the columns a read takes them from.
 *
 *   metric_keys    a run's history keys, interned to small integers
 *   history_chunks (run_pk, key_id, chunk) → one metric over CHUNK_STEPS aligned steps as packed
 *                  Float64 columns plus per-BLOCK min/max/last summaries. A batch rewrites the
 *                  chunks it touches (read, merge, write), so a late or re-ordered row lands
 *                  exactly; a `samples` read of a long run reads only the block summaries. Its
 *                  steps, seqs and ts are NULL when they are the first n of the chunk's frame;
 *                  `version` counts its writes.
 *   history_frames (run_pk, chunk) → the steps, seqs and ts the keys of a chunk share, stored once
 *                  for all of them: a ten-double row costs 8 bytes a value, not 32, so a million of
 *                  them write 240 MB less, twice (WAL, then the file): ingest of a million such rows
 *                  as blocks took ~2.2 CPU-s and ~3 s, now ~1.6 and ~1.3 (bench/history-read.ts).
 *
 * A history block goes in as it came: its fresh rows go into the chunks as slices of its columns,
 * never as a row object each; steps, seqs and ts are packed once for all of its keys.
 */
import * as Effect from "effect/Effect"
import { MAX_KEYS_PER_RUN } from "../../../schemas/Limits.js"
import type { HistoryBlock, HistoryRecord } from "../../../schemas/Record.js"
import { floats } from "../../../schemas/UploadRecords.js"
import { BatchOverLimit } from "../RecordStore.js"
import * as Chunk from "./historyChunk.js"
import * as Frame from "./historyFrame.js"
import { advanceLast, type LastValues } from "./runRow.js"
import { inserts, replacing, type Run, type Statement } from "./sql.js"

/** history_chunks (as `h`) with the frame of each chunk (as `f`): what `entryColumns` reads from. */
export const withFrames = `history_chunks h LEFT JOIN history_frames f ON f.run_pk = h.run_pk AND f.chunk = h.chunk`
/** A key chunk's entries (Chunk.decode's input): its steps, seqs and ts from the frame when it shares them. */
export const entryColumns = `COALESCE(h.steps, substr(f.steps, 1, h.n * 8)) AS steps, COALESCE(h.seqs, substr(f.seqs, 1, h.n * 8)) AS seqs,
  COALESCE(h.ts, substr(f.ts, 1, h.n * 8)) AS ts, h.vals AS vals, h.texts AS texts`

const frameColumns = ["run_pk", "chunk", "n", "steps", "seqs", "ts"]
const chunkColumns = ["run_pk", "key_id", "chunk", "n", "first_step", "last_step", "blocks", "block_texts", "steps", "seqs", "ts", "vals", "texts"]
const replaceFrame = replacing(["run_pk", "chunk"], frameColumns)
// Each write of a key chunk counts its version up: a read's stamp of the row (StoreSql.chunkStamp).
const replaceChunk = `${replacing(["run_pk", "key_id", "chunk"], chunkColumns)}, version = history_chunks.version + 1`

/**
 * What ingest keeps of a run's history between batches: its key ids and, per key, the highest chunk
 * stored and (once written here) that chunk's content; the same for the run's frames. Saves
 * re-reading them on every batch (ingest.ts says when it is trusted).
 */
export interface HistoryState {
  readonly keyIds: Map<string, number>
  /** key_id → the highest chunk stored for it (-1: none) and its content when known */
  readonly tops: Map<number, { c: number; chunk: Chunk.StoredChunk | undefined }>
  /** The highest chunk with a frame (-1: none) and that frame when known. */
  readonly topFrame: { c: number; frame: Frame.Frame | undefined }
}

/** A run's history state read from the store. */
export const loadHistoryState = (run: Run, runPk: number) =>
  Effect.gen(function* () {
    const keyIds = new Map<string, number>()
    const tops = new Map<number, { c: number; chunk: Chunk.StoredChunk | undefined }>()
    for (const k of yield* run(
      `SELECT key_id, name, (SELECT MAX(chunk) FROM history_chunks h WHERE h.run_pk = k.run_pk AND h.key_id = k.key_id)
         AS top FROM metric_keys k WHERE run_pk = ?`,
      [runPk]
    )) {
      keyIds.set(k.name as string, k.key_id as number)
      tops.set(k.key_id as number, { c: (k.top as number | null) ?? -1, chunk: undefined })
    }
    const [frames] = yield* run(`SELECT MAX(chunk) AS top FROM history_frames WHERE run_pk = ?`, [runPk])
    return { keyIds, tops, topFrame: { c: (frames.top as number | null) ?? -1, frame: undefined } } satisfies HistoryState
  })

/**
 * Cuts a block into pieces of chunks: per run of its rows in one chunk, one piece a key (`keys`:
 * their ids, in the block's order), its columns views of the block's, steps, seqs and ts packed
 * once for all of its keys. Answers the row of the highest step (the last of them). Kept out of
 * the ingest generator, whose loops V8 optimises less well.
 */
const cutBlock = (
  block: HistoryBlock,
  keys: ReadonlyArray<number>,
  pieces: (keyId: number, c: number) => Array<Chunk.Incoming>
): { readonly seq: number; readonly step: number; readonly values: ReadonlyArray<number> } => {
  const steps = floats(block.steps)
  const ts = floats(block.ts)
  const columns = block.columns.map(floats)
  const rows = block.rows
  const seqs = new Float64Array(rows)
  for (let i = 0; i < rows; i++) seqs[i] = block.seq + i
  for (let start = 0; start < rows;) {
    const c = Chunk.chunkOf(steps[start]!)
    let end = start + 1
    while (end < rows && Chunk.chunkOf(steps[end]!) === c) end++
    const shared = { steps: steps.subarray(start, end), seqs: seqs.subarray(start, end), ts: ts.subarray(start, end) }
    const packed = { steps: Chunk.pack(shared.steps), seqs: Chunk.pack(shared.seqs), ts: Chunk.pack(shared.ts) }
    for (let k = 0; k < keys.length; k++) pieces(keys[k]!, c).push({ ...shared, vals: columns[k]!.subarray(start, end), texts: null, packed })
    start = end
  }
  let latest = 0
  for (let i = 1; i < rows; i++) if (steps[i]! >= steps[latest]!) latest = i
  return { seq: block.seq + latest, step: steps[latest]!, values: columns.map((column) => column[latest]!) }
}

/**
 * Puts history rows, and blocks of fresh rows, in the chunks of their keys (each chunk touched is
 * read, merged and written back whole, block summaries recomputed) and advances the last values.
 * Answers the writes that store them (new keys, frames, chunks: rows no other write of an ingest
 * touches), for the caller to send with the run's row (StoreSql.writeAll).
 */
export const ingestHistory = (
  run: Run,
  runPk: number,
  history: ReadonlyArray<HistoryRecord>,
  blocks: ReadonlyArray<HistoryBlock>,
  lastValues: LastValues,
  state: HistoryState
) =>
  Effect.gen(function* () {
    const { keyIds, tops } = state
    const newKeys: Array<ReadonlyArray<unknown>> = []
    const keyIdOf = (key: string): number => {
      let keyId = keyIds.get(key)
      if (keyId === undefined) {
        keyId = keyIds.size
        keyIds.set(key, keyId)
        newKeys.push([runPk, keyId, key])
        tops.set(keyId, { c: -1, chunk: undefined })
      }
      return keyId
    }
    // key_id → chunk → this batch's entries for it, in pieces
    const incoming = new Map<number, Map<number, Array<Chunk.Incoming>>>()
    const pieces = (keyId: number, c: number): Array<Chunk.Incoming> => {
      let byChunk = incoming.get(keyId)
      if (byChunk === undefined) incoming.set(keyId, (byChunk = new Map()))
      let list = byChunk.get(c)
      if (list === undefined) byChunk.set(c, (list = []))
      return list
    }
    // Rows: one piece per key and chunk, filled row by row.
    const rowPieces = new Map<string, Chunk.Chunk>()
    for (const record of history) {
      const c = Chunk.chunkOf(record.step)
      for (const key in record.values) {
        const value = record.values[key]!
        const keyId = keyIdOf(key)
        let chunk = rowPieces.get(`${keyId}/${c}`)
        if (chunk === undefined) {
          rowPieces.set(`${keyId}/${c}`, (chunk = Chunk.empty()))
          pieces(keyId, c).push(chunk)
        }
        Chunk.push(chunk, record.step, record.seq, record.ts, value)
        advanceLast(lastValues, key, record.step, record.seq, value)
      }
    }
    for (const block of blocks) {
      const latest = cutBlock(block, block.keys.map(keyIdOf), pieces)
      for (let k = 0; k < block.keys.length; k++) advanceLast(lastValues, block.keys[k]!, latest.step, latest.seq, latest.values[k]!)
    }
    if (keyIds.size > MAX_KEYS_PER_RUN) {
      return yield* new BatchOverLimit({ detail: `it would give the run ${keyIds.size} history keys; a run may have ${MAX_KEYS_PER_RUN}` })
    }
    // Only the chunks neither known absent (past the key's highest) nor held in the state are read.
    const held = new Map<string, Chunk.StoredChunk>()
    const readKeys = new Set<number>()
    const readChunks = new Set<number>()
    for (const [keyId, byChunk] of incoming) {
      const top = tops.get(keyId)!
      for (const c of byChunk.keys()) {
        if (c > top.c) continue
        if (c === top.c && top.chunk !== undefined) held.set(`${keyId}/${c}`, top.chunk)
        else (readKeys.add(keyId), readChunks.add(c))
      }
    }
    if (readKeys.size > 0) {
      const stored = yield* run(
        `SELECT h.key_id, h.chunk, h.n, h.last_step, h.blocks, h.block_texts, ${entryColumns} FROM ${withFrames}
           WHERE h.run_pk = ? AND h.key_id IN (${[...readKeys].join(",")}) AND h.chunk IN (${[...readChunks].join(",")})`,
        [runPk]
      )
      for (const row of stored) held.set(`${row.key_id}/${row.chunk}`, row)
    }
    // chunk → its keys' merged entries
    const merged = new Map<number, Array<{ keyId: number; e: Chunk.EncodedChunk }>>()
    for (const [keyId, byChunk] of incoming) {
      for (const [c, list] of byChunk) {
        const e = Chunk.mergeInto(held.get(`${keyId}/${c}`), Chunk.concat(list), c)
        const top = tops.get(keyId)!
        if (c >= top.c) {
          // Copied (a few KiB): the state outlives the request, whose body the columns may view.
          top.c = c
          top.chunk = {
            n: e.n, last_step: e.lastStep, blocks: e.blocks, block_texts: e.blockTexts,
            steps: Buffer.from(e.steps), seqs: Buffer.from(e.seqs), ts: Buffer.from(e.ts), vals: Buffer.from(e.vals), texts: e.texts
          }
        }
        let keys = merged.get(c)
        if (keys === undefined) merged.set(c, (keys = []))
        keys.push({ keyId, e })
      }
    }
    const frames = yield* framesOf(run, runPk, [...merged.keys()], state.topFrame)
    const frameRows: Array<ReadonlyArray<unknown>> = []
    const rows: Array<ReadonlyArray<unknown>> = []
    for (const [c, keys] of merged) {
      const frame = Frame.extend(frames.get(c), keys.map(({ e }) => e))
      if (frame !== undefined && frame !== frames.get(c)) {
        frameRows.push([runPk, c, frame.n, frame.steps, frame.seqs, frame.ts])
        if (c >= state.topFrame.c) {
          state.topFrame.c = c
          state.topFrame.frame = { n: frame.n, steps: Buffer.from(frame.steps), seqs: Buffer.from(frame.seqs), ts: Buffer.from(frame.ts) }
        }
      }
      for (const { keyId, e } of keys) {
        const own = !Frame.isAligned(frame, e)
        rows.push([
          runPk, keyId, c, e.n, e.firstStep, e.lastStep, e.blocks, e.blockTexts,
          own ? e.steps : null, own ? e.seqs : null, own ? e.ts : null, e.vals, e.texts
        ])
      }
    }
    return [
      ...inserts("metric_keys", ["run_pk", "key_id", "name"], newKeys),
      ...inserts("history_frames", frameColumns, frameRows, replaceFrame),
      ...inserts("history_chunks", chunkColumns, rows, replaceChunk)
    ] satisfies Array<Statement>
  })

/** The frames of chunks `cs` of a run: the known top one, none past it, the others read. */
const framesOf = (run: Run, runPk: number, cs: ReadonlyArray<number>, top: HistoryState["topFrame"]) =>
  Effect.gen(function* () {
    const frames = new Map<number, Frame.Frame>()
    const read: Array<number> = []
    for (const c of cs) {
      if (c > top.c) continue
      if (c === top.c && top.frame !== undefined) frames.set(c, top.frame)
      else read.push(c)
    }
    if (read.length > 0) {
      for (const row of yield* run(`SELECT chunk, n, steps, seqs, ts FROM history_frames WHERE run_pk = ? AND chunk IN (${read.join(",")})`, [runPk])) {
        frames.set(row.chunk, row)
      }
    }
    return frames
  })
