/**
 * What sampled history reads keep of a store between reads: each key chunk's entries and (where
 * blobs cross a wire: StoreSql.blobsInProcess) its block summaries, unpacked, under the stamp its
 * row had when they were read (StoreSql.chunkStamp), and
 * the answers they made (sampling.ts keeps its rows). A dashboard following a live run reads its
 * history every few hundred ms, while each upload rewrites only the top chunk of each key: the
 * others are taken from here, not moved, unpacked and folded again. On PostgreSQL a blob crosses
 * the wire as hex, twice its size, so a sampled read of a 25k-step run of ten keys cost ~13 ms of
 * the database's CPU and ~8 ms of the server's to move its chunks (bench/concurrent.ts,
 * profiled), as much as its fold and answer.
 *
 * A stamp names one committed version of a row, so another server process's write (PostgreSQL
 * replicas) is a miss like any other. Entries are kept by run id, not run_pk, which SQLite gives
 * a new run once the newest run is deleted (and with it versions that count from 0 again). A run
 * id comes back only through `steplog server migrate`, which copies a run again under its id into
 * PostgreSQL, whose stamps hold xmin: a row written anew never has the old stamp.
 *
 * Chunks and answers share one budget: at most MAX_BYTES are kept, the least recently used
 * dropped first, and nothing larger than a MAX_SHARE of it (an answer of hundreds of keys would
 * otherwise push out every run's chunks, then itself).
 */
import * as Effect from "effect/Effect"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "./historyChunk.js"
import type { Run } from "./sql.js"

/** Bytes of unpacked columns kept at most: 64 MiB, some 2,700 key chunks of a thousand steps. */
export const MAX_BYTES = 64 * 2 ** 20

/** The part of the budget one entry may take at most. */
const MAX_SHARE = 1 / 8

/** What an entry costs beyond its columns (its key, its Map slot, the objects around the columns), in bytes. */
const ENTRY_OVERHEAD = 256

/** The run a read is of: its row's key, for statements, and its id, for what is kept. */
export interface RunOf {
  readonly pk: number
  readonly id: string
}

/** A key chunk of a run, as the read's first statement (`firstColumns`) found it. */
export interface ChunkRef {
  readonly key_id: number
  readonly chunk: number
  /** Its row's stamp (StoreSql.chunkStamp). */
  readonly stamp: string
  /** Its block summaries, when reads take blobs in-process (StoreSql.blobsInProcess): not kept here, then. */
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

/** The key_id of a frame's row among the key chunks' rows of an entries read. */
const FRAME_ROW = -1

const refKey = (ref: { readonly key_id: number; readonly chunk: number }): string => `${ref.key_id}/${ref.chunk}`

/** A row read for the cache: its chunk, its stamp, and what it is kept as. */
interface Read<A> {
  readonly key_id: number
  readonly chunk: number
  readonly stamp: string
  readonly value: A
  readonly bytes: number
}

/** The cache of one store; `stamp` is its StoreSql.chunkStamp, `blobsInProcess` its StoreSql.blobsInProcess. */
export const make = (stamp: string, blobsInProcess: boolean, maxBytes = MAX_BYTES) => {
  const kept = new Map<string, { readonly stamp: string; readonly bytes: number; readonly value: unknown }>()
  let bytes = 0
  const firstColumns = blobsInProcess ? `${stamp} AS stamp, h.blocks, h.block_texts` : `${stamp} AS stamp`

  const keep = (key: string, rowStamp: string, value: unknown, size: number): void => {
    const old = kept.get(key)
    if (old !== undefined) (kept.delete(key), (bytes -= old.bytes))
    if (size > maxBytes * MAX_SHARE) return
    kept.set(key, { stamp: rowStamp, bytes: size, value })
    bytes += size
    for (const [oldest, entry] of kept) {
      if (bytes <= maxBytes) break
      kept.delete(oldest)
      bytes -= entry.bytes
    }
  }

  /** What is kept under `key`, at stamp `at` when given (most recently used now), or undefined. */
  const lookup = <A>(key: string, at?: string): A | undefined => {
    const entry = kept.get(key)
    if (entry === undefined || (at !== undefined && entry.stamp !== at)) return undefined
    kept.delete(key)
    kept.set(key, entry)
    return entry.value as A
  }

  /**
   * `refs`' values as `kind`: the kept ones, and the others read and kept. `read` gets the rows of
   * `keys` and `chunks` (`key_id IN (keys) AND chunk IN (chunks)` of the missing ones,
   * a superset of them but for the top chunks of a live run) and makes values of those `wanted`.
   */
  const get = <A>(
    kind: string,
    owner: RunOf,
    refs: ReadonlyArray<ChunkRef>,
    read: (keys: string, chunks: string, wanted: (row: { readonly key_id: number; readonly chunk: number }) => boolean) => Effect.Effect<ReadonlyArray<Read<A>>, SqlError>
  ): Effect.Effect<Found<A>, SqlError> =>
    Effect.gen(function* () {
      const values = new Array<A | undefined>(refs.length)
      const changed = new Array<boolean>(refs.length).fill(false)
      // key_id/chunk → index in refs, of the refs not kept
      const missing = new Map<string, number>()
      refs.forEach((ref, i) => {
        values[i] = lookup<A>(`${kind}/${owner.id}/${refKey(ref)}`, ref.stamp)
        if (values[i] === undefined) missing.set(refKey(ref), i)
      })
      if (missing.size === 0) return { values, changed }
      const keys = [...new Set([...missing.values()].map((i) => refs[i]!.key_id))].join(",")
      const chunks = [...new Set([...missing.values()].map((i) => refs[i]!.chunk))].join(",")
      const rows = yield* read(keys, chunks, (row) => missing.has(refKey(row)))
      for (const row of rows) {
        const i = missing.get(refKey(row))!
        values[i] = row.value
        changed[i] = row.stamp !== refs[i]!.stamp
        keep(`${kind}/${owner.id}/${refKey(row)}`, row.stamp, row.value, row.bytes + ENTRY_OVERHEAD)
      }
      return { values, changed }
    })

  return {
    /** The columns of a ChunkRef but its key and chunk, from `history_chunks h`, for the read's first statement. */
    firstColumns,
    /** The block summaries of `refs`. */
    summaries: (run: Run, owner: RunOf, refs: ReadonlyArray<ChunkRef>): Effect.Effect<Found<Chunk.BlockSummaries>, SqlError> =>
      blobsInProcess
        // Unpacked as they came: views of the blobs, as cheap as a look in here.
        ? Effect.sync(() => ({ values: refs.map((ref) => Chunk.summariesOf(ref.blocks!, ref.block_texts ?? null)), changed: refs.map(() => false) }))
        : get<Chunk.BlockSummaries>("summaries", owner, refs, (keys, chunks, wanted) =>
          Effect.map(run(`SELECT h.key_id, h.chunk, h.blocks, h.block_texts, ${stamp} AS stamp FROM history_chunks h
               WHERE h.run_pk = ? AND h.key_id IN (${keys}) AND h.chunk IN (${chunks})`, [owner.pk]), (rows) =>
            rows.filter(wanted).map((row) => ({
              key_id: row.key_id,
              chunk: row.chunk,
              stamp: row.stamp,
              value: Chunk.summariesOf(row.blocks, row.block_texts),
              bytes: row.blocks.byteLength + (row.block_texts?.length ?? 0)
            })))),
    /** What a read of `owner` kept as `what` (sampling.ts: an answer's rows), if it is still kept. */
    recall: <A>(owner: RunOf, what: string): A | undefined => lookup<A>(`answer/${owner.id}/${what}`),
    /** Keeps `value`, of about `size` bytes, as `what` of `owner`, in place of what was. */
    remember: (owner: RunOf, what: string, value: unknown, size: number): void => keep(`answer/${owner.id}/${what}`, "", value, size + ENTRY_OVERHEAD),
    /**
     * The entries of `refs`: each chunk's frame read once, not once a key (a join repeats it on
     * every key's row), in the same statement (a row of key -1): a round trip less on PostgreSQL.
     * A frame no key shares (keys logged at different steps, a chunk a late row re-ordered) comes
     * for nothing then, which is rare; the frame of a live run's top chunk is always shared.
     */
    entries: (run: Run, owner: RunOf, refs: ReadonlyArray<ChunkRef>) =>
      get<Chunk.Entries>("entries", owner, refs, (keys, chunks, wanted) =>
        Effect.gen(function* () {
          const read = yield* run(
            `SELECT h.key_id, h.chunk, h.n, h.steps, h.ts, h.vals, h.texts, ${stamp} AS stamp FROM history_chunks h
               WHERE h.run_pk = ? AND h.key_id IN (${keys}) AND h.chunk IN (${chunks})
             UNION ALL SELECT ${FRAME_ROW}, f.chunk, f.n, f.steps, f.ts, NULL, NULL, NULL FROM history_frames f WHERE f.run_pk = ? AND f.chunk IN (${chunks})`,
            [owner.pk, owner.pk]
          )
          const frames = new Map<number, { readonly steps: Uint8Array; readonly ts: Uint8Array }>()
          for (const row of read) if (row.key_id === FRAME_ROW) frames.set(row.chunk, row)
          // Unpacked once a chunk, when a key shares them.
          const shared = new Map<number, Chunk.SharedColumns>()
          const sharedOf = (chunk: number): Chunk.SharedColumns | undefined => {
            const frame = frames.get(chunk)
            if (frame !== undefined && !shared.has(chunk)) shared.set(chunk, Chunk.sharedColumns(frame))
            return shared.get(chunk)
          }
          const rows = read.filter((row) => row.key_id !== FRAME_ROW && wanted(row))
          return rows.map((row) => {
            const entries = Chunk.entriesOf(row, row.steps === null || row.ts === null ? sharedOf(row.chunk) : undefined)
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
export type HistoryCache = ReturnType<typeof make>
