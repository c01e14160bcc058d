/**
 * The chunk cache of sampled history reads over a table held in this test: what it reads, what it
 * answers from memory, when a row's stamp says it changed, and what it drops past its bytes.
 */
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import * as ChunkCache from "../../../../src/server/store/internal/chunkCache.js"
import type { Run } from "../../../../src/server/store/internal/sql.js"

/** A key chunk's summaries row: 16 blocks of 5 floats, the first float `mark`. */
interface Row {
  key_id: number
  chunk: number
  stamp: string | null
  mark: number
}

/** A `run` over `rows` that answers the summaries statement (the rows of the IN lists) and counts the statements. */
const table = (rows: Array<Row>) => {
  const statements: Array<string> = []
  const run: Run = (text) =>
    Effect.sync(() => {
      statements.push(text)
      const keys = new Set(/key_id IN \(([^)]*)\)/.exec(text)![1]!.split(",").map(Number))
      const chunks = new Set(/chunk IN \(([^)]*)\)/.exec(text)![1]!.split(",").map(Number))
      return rows
        .filter((row) => keys.has(row.key_id) && chunks.has(row.chunk))
        .map((row) => {
          const floats = new Float64Array(80)
          floats[0] = row.mark
          return { key_id: row.key_id, chunk: row.chunk, stamp: row.stamp, blocks: Buffer.from(floats.buffer), block_texts: null }
        })
    })
  return { run, statements }
}

const refs = (rows: ReadonlyArray<Row>) => rows.map(({ key_id, chunk, stamp }) => ({ key_id, chunk, stamp }))
/** The first float of each chunk's summaries, by key/chunk. */
const marksOf = (asked: ReadonlyArray<Row>, found: ChunkCache.Found<{ readonly floats: Float64Array }>) =>
  Object.fromEntries(asked.map((row, i) => [`${row.key_id}/${row.chunk}`, found.values[i]?.floats[0]]))

describe("the chunk cache", () => {
  it("reads a chunk once while its stamp stays, again once it changes, and always when it has none", () => {
    const rows: Array<Row> = [
      { key_id: 0, chunk: 0, stamp: "a", mark: 1 },
      { key_id: 1, chunk: 0, stamp: "b", mark: 2 },
      { key_id: 0, chunk: 1, stamp: null, mark: 3 }
    ]
    const { run, statements } = table(rows)
    const cache = ChunkCache.make("stamp")
    expect(marksOf(rows, Effect.runSync(cache.summaries(run, 7, refs(rows))))).toEqual({ "0/0": 1, "1/0": 2, "0/1": 3 })
    expect(statements).toHaveLength(1)
    // The stamped chunks are kept; the one without a stamp is read again, alone.
    expect(marksOf(rows, Effect.runSync(cache.summaries(run, 7, refs(rows))))).toEqual({ "0/0": 1, "1/0": 2, "0/1": 3 })
    expect(statements).toHaveLength(2)
    expect(statements[1]).toMatch(/key_id IN \(0\) AND h\.chunk IN \(1\)/)
    // A write gives key 1's chunk another stamp: it is read again, and kept as it is now.
    rows[1] = { key_id: 1, chunk: 0, stamp: "c", mark: 5 }
    expect(marksOf(rows.slice(0, 2), Effect.runSync(cache.summaries(run, 7, refs(rows.slice(0, 2)))))).toEqual({ "0/0": 1, "1/0": 5 })
    expect(statements).toHaveLength(3)
    expect(marksOf(rows.slice(0, 2), Effect.runSync(cache.summaries(run, 7, refs(rows.slice(0, 2)))))).toEqual({ "0/0": 1, "1/0": 5 })
    expect(statements).toHaveLength(3)
    // Another run's chunk of the same key and number is another chunk.
    Effect.runSync(cache.summaries(run, 8, refs(rows.slice(0, 1))))
    expect(statements).toHaveLength(4)
  })

  it("says which chunks were read at another stamp than the first statement saw", () => {
    const rows: Array<Row> = [{ key_id: 0, chunk: 0, stamp: "new", mark: 1 }]
    const { run } = table(rows)
    const found = Effect.runSync(ChunkCache.make("stamp").summaries(run, 7, [{ key_id: 0, chunk: 0, stamp: "old" }]))
    expect([marksOf(rows, found), found.changed]).toEqual([{ "0/0": 1 }, [true]])
  })

  it("keeps at most its bytes, dropping the least recently used first", () => {
    const rows: Array<Row> = Array.from({ length: 10 }, (_, key_id) => ({ key_id, chunk: 0, stamp: "s", mark: key_id }))
    const { run, statements } = table(rows)
    // Room for three summaries (640 bytes and some overhead each).
    const cache = ChunkCache.make("stamp", 3 * 1000)
    const read = (keys: ReadonlyArray<number>) => Effect.runSync(cache.summaries(run, 7, refs(keys.map((key) => rows[key]!))))
    read([0, 1, 2])
    read([0]) // 0 is now the most recently used
    read([3]) // drops 1, the least recently used
    const before = statements.length
    read([0, 2, 3])
    expect(statements.length).toBe(before)
    read([1])
    expect(statements.length).toBe(before + 1)
  })
})
