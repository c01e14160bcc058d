/**
 * What sampled history reads keep of a store's key chunks between reads: each chunk's block
 * summaries and entries, unpacked, under the stamp its row had when they were read
 * (StoreSql.chunkStamp: PostgreSQL's row versions; none on SQLite, whose reads take blobs
 * in-process and keep nothing here). A dashboard following a live run reads its history every few
 * hundred ms, while each upload rewrites only the top chunk of each key: the others are read from
 * here, not moved and parsed again. On PostgreSQL a blob crosses the wire as hex, twice its size,
 * so a sampled read of a 25k-step run of ten keys cost ~13 ms of the database's CPU and ~8 ms of
 * the server's to move its chunks (bench/concurrent.ts, profiled), as much as its fold and answer.
 *
 * A stamp names one committed version of a row (and of its chunk's frame, whose steps and ts a key
 * chunk may share), so another server process's write (PostgreSQL replicas) is a miss like any
 * other. At most MAX_BYTES are kept, the least recently used dropped first.
 */
import * as Effect from "effect/Effect"
import { withFrames } from "./chunks.js"
import * as Chunk from "./historyChunk.js"
import type { Run } from "./sql.js"

/** Bytes of unpacked columns kept at most: 64 MiB, some 2,700 key chunks of a thousand steps. */
export const MAX_BYTES = 64 * 2 ** 20

/** A key chunk of a run, as the read's first statement found it. */
export interface ChunkRef {
  readonly key_id: number
  readonly chunk: number
  /** Its row's stamp (StoreSql.chunkStamp); null: not kept. */
  readonly stamp: string | null
}

/** `key_id/chunk`: how the answers of `summaries` and `entries` are keyed. */
export const refKey = (ref: { readonly key_id: number; readonly chunk: number }): string => `${ref.key_id}/${ref.chunk}`

/** The cache of one store; `stamp` is its StoreSql.chunkStamp. */
export const make = (stamp: string, maxBytes = MAX_BYTES) => {
  const kept = new Map<string, { readonly stamp: string; readonly bytes: number; readonly value: unknown }>()
  let bytes = 0

  const keep = (key: string, rowStamp: string | null, value: unknown, size: number): void => {
    if (rowStamp === null) return
    const old = kept.get(key)
    if (old !== undefined) (kept.delete(key), (bytes -= old.bytes))
    kept.set(key, { stamp: rowStamp, bytes: size, value })
    bytes += size
    for (const [oldest, entry] of kept) {
      if (bytes <= maxBytes) break
      kept.delete(oldest)
      bytes -= entry.bytes
    }
  }

  /** What is kept of `ref` as `kind` at its stamp (most recently used now), or undefined. */
  const lookup = <A>(kind: string, runPk: number, ref: ChunkRef): A | undefined => {
    if (ref.stamp === null) return undefined
    const key = `${kind}/${runPk}/${refKey(ref)}`
    const entry = kept.get(key)
    if (entry === undefined || entry.stamp !== ref.stamp) return undefined
    kept.delete(key)
    kept.set(key, entry)
    return entry.value as A
  }

  /**
   * `refs`' values as `kind`: the kept ones, and the others read (their rows among those of
   * `where`, `key_id IN … AND chunk IN …` of the missing ones: exactly those when, as with a live
   * run, they are the top chunks of some keys) and kept. A chunk gone since `refs` were read (its
   * run deleted) has no value.
   */
  const get = <A>(
    kind: string,
    runPk: number,
    refs: ReadonlyArray<ChunkRef>,
    read: (where: string) => Effect.Effect<ReadonlyArray<{ readonly key_id: number; readonly chunk: number; readonly stamp: string | null; readonly value: A; readonly bytes: number }>, any>
  ) =>
    Effect.gen(function* () {
      const found = new Map<string, A>()
      const missing: Array<ChunkRef> = []
      for (const ref of refs) {
        const value = lookup<A>(kind, runPk, ref)
        if (value === undefined) missing.push(ref)
        else found.set(refKey(ref), value)
      }
      if (missing.length === 0) return found
      const wanted = new Set(missing.map(refKey))
      const keys = [...new Set(missing.map((ref) => ref.key_id))].join(",")
      const chunks = [...new Set(missing.map((ref) => ref.chunk))].join(",")
      for (const row of yield* read(`h.run_pk = ${runPk} AND h.key_id IN (${keys}) AND h.chunk IN (${chunks})`)) {
        const key = refKey(row)
        if (!wanted.has(key)) continue
        found.set(key, row.value)
        keep(`${kind}/${runPk}/${key}`, row.stamp, row.value, row.bytes)
      }
      return found
    })

  return {
    /** The SQL of a chunk row's stamp, for the read's first statement (over `withFrames`). */
    stamp,
    /** The block summaries of `refs`, by `refKey`. */
    summaries: (run: Run, runPk: number, refs: ReadonlyArray<ChunkRef>) =>
      get<Chunk.BlockSummaries>("summaries", runPk, refs, (where) =>
        Effect.map(
          run(`SELECT h.key_id, h.chunk, h.blocks, h.block_texts, ${stamp} AS stamp FROM ${withFrames} WHERE ${where}`),
          (rows) => rows.map((row) => ({ ...row, value: Chunk.summariesOf(row.blocks, row.block_texts), bytes: row.blocks.byteLength }))
        )),
    /** The entries of `refs`, by `refKey`: each chunk's frame read and unpacked once, not once a key (a join repeats it on every key's row). */
    entries: (run: Run, runPk: number, refs: ReadonlyArray<ChunkRef>) =>
      get<Chunk.Entries>("entries", runPk, refs, (where) =>
        Effect.gen(function* () {
          const rows = yield* run(`SELECT h.key_id, h.chunk, h.n, h.steps, h.ts, h.vals, h.texts, ${stamp} AS stamp FROM ${withFrames} WHERE ${where}`)
          const shared = [...new Set(rows.filter((row) => row.steps === null || row.ts === null).map((row) => row.chunk as number))]
          const frames = new Map<number, Chunk.SharedColumns>()
          if (shared.length > 0) {
            for (const frame of yield* run(`SELECT chunk, steps, ts FROM history_frames WHERE run_pk = ${runPk} AND chunk IN (${shared.join(",")})`)) {
              frames.set(frame.chunk, Chunk.sharedColumns(frame))
            }
          }
          return rows.map((row) => ({ ...row, value: Chunk.entriesOf(row, frames.get(row.chunk)), bytes: row.n * 24 + (row.texts?.length ?? 0) }))
        }))
  }
}

/** A store's cache of key chunks. */
export type ChunkCache = ReturnType<typeof make>
