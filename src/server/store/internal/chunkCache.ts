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
 * A stamp names one committed version of a row and of its chunk's frame (whose steps and ts a key
 * chunk may share), so another server process's write (PostgreSQL replicas) is a miss like any
 * other. At most MAX_BYTES are kept, the least recently used dropped first.
 */
import * as Effect from "effect/Effect"
import type { SqlError } from "@effect/sql/SqlError"
import { withFrames } from "./chunks.js"
import * as Chunk from "./historyChunk.js"
import type { Run } from "./sql.js"

/** Bytes of unpacked columns kept at most: 64 MiB, some 2,700 key chunks of a thousand steps. */
export const MAX_BYTES = 64 * 2 ** 20

/** What an entry costs beyond its columns (its key, its Map slot, the objects around the columns), in bytes. */
const ENTRY_OVERHEAD = 256

/** A key chunk of a run, as the read's first statement (`firstColumns`) found it. */
export interface ChunkRef {
  readonly key_id: number
  readonly chunk: number
  /** Its row's stamp (StoreSql.chunkStamp); null: not kept. */
  readonly stamp: string | null
  /** Without a stamp, its block summaries (the cache has none to keep, so the first statement reads them). */
  readonly blocks?: Uint8Array
  readonly block_texts?: string | null
}

/** What `summaries` and `entries` answer, by the index of each ref. */
export interface Found<A> {
  /** Undefined for a chunk gone since its ref was read (its run deleted). */
  readonly values: ReadonlyArray<A | undefined>
  /**
   * Chunks written since their ref was read (PostgreSQL reads each statement at its own
   * snapshot): what was read of them may hold steps past those the ref showed.
   */
  readonly changed: ReadonlyArray<boolean>
}

const refKey = (ref: { readonly key_id: number; readonly chunk: number }): string => `${ref.key_id}/${ref.chunk}`

/** A row read for the cache: its chunk, its stamp, and what it is kept as. */
interface Read<A> {
  readonly key_id: number
  readonly chunk: number
  readonly stamp: string | null
  readonly value: A
  readonly bytes: number
}

/** The cache of one store; `stamp` is its StoreSql.chunkStamp. */
export const make = (stamp: string | null, maxBytes = MAX_BYTES) => {
  const kept = new Map<string, { readonly stamp: string; readonly bytes: number; readonly value: unknown }>()
  let bytes = 0
  const firstColumns = stamp === null ? "NULL AS stamp, h.blocks, h.block_texts" : `${stamp} AS stamp`
  // The frames are joined only for their stamp.
  const source = stamp === null ? "history_chunks h" : withFrames

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
   * `refs`' values as `kind`: the kept ones, and the others read and kept. `read` gets the rows of
   * `where` (`key_id IN … AND chunk IN …` of the missing ones, a superset of them but for the top
   * chunks of a live run) and makes values of those `wanted`.
   */
  const get = <A>(
    kind: string,
    runPk: number,
    refs: ReadonlyArray<ChunkRef>,
    read: (where: string, params: ReadonlyArray<unknown>, wanted: (row: { readonly key_id: number; readonly chunk: number }) => boolean) => Effect.Effect<ReadonlyArray<Read<A>>, SqlError>
  ): Effect.Effect<Found<A>, SqlError> =>
    Effect.gen(function* () {
      const values = new Array<A | undefined>(refs.length)
      const changed = new Array<boolean>(refs.length).fill(false)
      // key_id/chunk → index in refs, of the refs not kept
      const missing = new Map<string, number>()
      refs.forEach((ref, i) => {
        values[i] = lookup<A>(kind, runPk, ref)
        if (values[i] === undefined) missing.set(refKey(ref), i)
      })
      if (missing.size === 0) return { values, changed }
      const keys = [...new Set([...missing.values()].map((i) => refs[i]!.key_id))].join(",")
      const chunks = [...new Set([...missing.values()].map((i) => refs[i]!.chunk))].join(",")
      const rows = yield* read(`h.run_pk = ? AND h.key_id IN (${keys}) AND h.chunk IN (${chunks})`, [runPk], (row) => missing.has(refKey(row)))
      for (const row of rows) {
        const i = missing.get(refKey(row))!
        values[i] = row.value
        changed[i] = row.stamp !== refs[i]!.stamp
        keep(`${kind}/${runPk}/${refKey(row)}`, row.stamp, row.value, row.bytes + ENTRY_OVERHEAD)
      }
      return { values, changed }
    })

  return {
    /** The columns of a ChunkRef but its key and chunk, and the table (`h`), for the read's first statement. */
    firstColumns,
    source,
    /** The block summaries of `refs`. */
    summaries: (run: Run, runPk: number, refs: ReadonlyArray<ChunkRef>): Effect.Effect<Found<Chunk.BlockSummaries>, SqlError> =>
      stamp === null
        ? Effect.sync(() => ({ values: refs.map((ref) => Chunk.summariesOf(ref.blocks!, ref.block_texts ?? null)), changed: refs.map(() => false) }))
        : get<Chunk.BlockSummaries>("summaries", runPk, refs, (where, params, wanted) =>
        Effect.map(run(`SELECT h.key_id, h.chunk, h.blocks, h.block_texts, ${stamp} AS stamp FROM ${source} WHERE ${where}`, params), (rows) =>
          rows.filter(wanted).map((row) => ({
            key_id: row.key_id,
            chunk: row.chunk,
            stamp: row.stamp,
            value: Chunk.summariesOf(row.blocks, row.block_texts),
            bytes: row.blocks.byteLength + (row.block_texts?.length ?? 0)
          })))),
    /** The entries of `refs`: each chunk's frame read and unpacked once, not once a key (a join repeats it on every key's row). */
    entries: (run: Run, runPk: number, refs: ReadonlyArray<ChunkRef>) =>
      get<Chunk.Entries>("entries", runPk, refs, (where, params, wanted) =>
        Effect.gen(function* () {
          const rows = (yield* run(`SELECT h.key_id, h.chunk, h.n, h.steps, h.ts, h.vals, h.texts, ${stamp ?? "NULL"} AS stamp FROM ${source} WHERE ${where}`, params)).filter(wanted)
          const shared = [...new Set(rows.filter((row) => row.steps === null || row.ts === null).map((row) => row.chunk as number))]
          const frames = new Map<number, Chunk.SharedColumns>()
          if (shared.length > 0) {
            for (const frame of yield* run(`SELECT chunk, steps, ts FROM history_frames WHERE run_pk = ? AND chunk IN (${shared.join(",")})`, params)) {
              frames.set(frame.chunk, Chunk.sharedColumns(frame))
            }
          }
          return rows.map((row) => {
            const entries = Chunk.entriesOf(row, frames.get(row.chunk))
            // A key with few of its frame's entries (a metric logged now and then) keeps copies of them, not the whole frame.
            const own = (column: Float64Array) => (column.length * 2 < column.buffer.byteLength / 8 ? column.slice() : column)
            return {
              key_id: row.key_id,
              chunk: row.chunk,
              stamp: row.stamp,
              value: { ...entries, steps: own(entries.steps), ts: own(entries.ts) },
              bytes: row.n * 24 + (row.texts?.length ?? 0)
            }
          })
        }))
  }
}

/** A store's cache of key chunks. */
export type ChunkCache = ReturnType<typeof make>
