/**
 * The chunk cache of sampled history reads over a table held in this test: what it reads, what it
 * answers from memory, when a row's stamp says it changed, and what it drops past its bytes.
 */
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import * as HistoryCache from "../../../../src/server/store/internal/historyCache.js"
import type { Run } from "../../../../src/server/store/internal/sql.js"

/** A key chunk's summaries row: 16 blocks of 5 floats, the first float `mark`. */
interface Row {
  key_id: number
  chunk: number
  stamp: string
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

const runA = { pk: 7, id: "p/a" }
const refs = (rows: ReadonlyArray<Row>) => rows.map(({ key_id, chunk, stamp }) => ({ key_id, chunk, stamp }))
/** The first float of each chunk's summaries, by key/chunk. */
const marksOf = (asked: ReadonlyArray<Row>, found: HistoryCache.Found<{ readonly floats: Float64Array }>) =>
  Object.fromEntries(asked.map((row, i) => [`${row.key_id}/${row.chunk}`, found.values[i]?.floats[0]]))

describe("the chunk cache", () => {
  it("reads a chunk once while its stamp stays, and again once it changes", () => {
    const rows: Array<Row> = [
      { key_id: 0, chunk: 0, stamp: "a", mark: 1 },
      { key_id: 1, chunk: 0, stamp: "b", mark: 2 },
      { key_id: 0, chunk: 1, stamp: "c", mark: 3 }
    ]
    const { run, statements } = table(rows)
    const cache = HistoryCache.make("stamp", false)
    expect(marksOf(rows, Effect.runSync(cache.summaries(run, runA, refs(rows))))).toEqual({ "0/0": 1, "1/0": 2, "0/1": 3 })
    expect(statements).toHaveLength(1)
    expect(marksOf(rows, Effect.runSync(cache.summaries(run, runA, refs(rows))))).toEqual({ "0/0": 1, "1/0": 2, "0/1": 3 })
    expect(statements).toHaveLength(1)
    // A write gives key 1's chunk another stamp: it is read again, alone, and kept as it is now.
    rows[1] = { key_id: 1, chunk: 0, stamp: "d", mark: 5 }
    expect(marksOf(rows, Effect.runSync(cache.summaries(run, runA, refs(rows))))).toEqual({ "0/0": 1, "1/0": 5, "0/1": 3 })
    expect(statements).toHaveLength(2)
    expect(statements[1]).toMatch(/key_id IN \(1\) AND h\.chunk IN \(0\)/)
    expect(marksOf(rows, Effect.runSync(cache.summaries(run, runA, refs(rows))))).toEqual({ "0/0": 1, "1/0": 5, "0/1": 3 })
    expect(statements).toHaveLength(2)
    // Another run's chunk of the same key and number is another chunk, even under the same row key
    // (a SQLite run_pk passes to a new run once its run is deleted).
    Effect.runSync(cache.summaries(run, { pk: runA.pk, id: "p/b" }, refs(rows.slice(0, 1))))
    expect(statements).toHaveLength(3)
  })

  it("unpacks summaries a first statement carried (SQLite) as they came, reading nothing", () => {
    const rows: Array<Row> = [{ key_id: 0, chunk: 0, stamp: "a", mark: 1 }]
    const { run, statements } = table(rows)
    const cache = HistoryCache.make("stamp", true)
    const carried = (mark: number, stamp: string) => {
      const floats = new Float64Array(80)
      floats[0] = mark
      return [{ key_id: 0, chunk: 0, stamp, blocks: Buffer.from(floats.buffer), block_texts: null }]
    }
    expect(Effect.runSync(cache.summaries(run, runA, carried(1, "a"))).values[0]?.floats[0]).toBe(1)
    expect(Effect.runSync(cache.summaries(run, runA, carried(9, "a"))).values[0]?.floats[0]).toBe(9)
    expect(Effect.runSync(cache.summaries(run, runA, carried(2, "b"))).values[0]?.floats[0]).toBe(2)
    expect(statements).toHaveLength(0)
  })

  it("says which chunks were read at another stamp than the first statement saw", () => {
    const rows: Array<Row> = [{ key_id: 0, chunk: 0, stamp: "new", mark: 1 }]
    const { run } = table(rows)
    const found = Effect.runSync(HistoryCache.make("stamp", false).summaries(run, runA, [{ key_id: 0, chunk: 0, stamp: "old" }]))
    expect([marksOf(rows, found), found.changed]).toEqual([{ "0/0": 1 }, [true]])
  })

  it("keeps at most its bytes, dropping the least recently used first", () => {
    const rows: Array<Row> = Array.from({ length: 12 }, (_, key_id) => ({ key_id, chunk: 0, stamp: "s", mark: key_id }))
    const { run, statements } = table(rows)
    // Room for eight summaries (640 bytes and some overhead each), each within an eighth of it.
    const cache = HistoryCache.make("stamp", false, 8 * 1000)
    const read = (keys: ReadonlyArray<number>) => Effect.runSync(cache.summaries(run, runA, refs(keys.map((key) => rows[key]!))))
    read([0, 1, 2, 3, 4, 5, 6, 7])
    read([0]) // 0 is now the most recently used
    read([8]) // drops 1, the least recently used
    const before = statements.length
    read([0, 2, 3, 4, 5, 6, 7, 8])
    expect(statements.length).toBe(before)
    read([1])
    expect(statements.length).toBe(before + 1)
  })

  it("keeps nothing larger than an eighth of its bytes, and drops nothing for it", () => {
    const rows: Array<Row> = [{ key_id: 0, chunk: 0, stamp: "s", mark: 0 }]
    const { run, statements } = table(rows)
    const cache = HistoryCache.make("stamp", false, 8 * 1000)
    Effect.runSync(cache.summaries(run, runA, refs(rows)))
    cache.remember(runA, "wide", "an answer of many keys", 1_001)
    cache.remember(runA, "narrow", "an answer of one key", 100)
    expect([cache.recall(runA, "wide"), cache.recall(runA, "narrow")]).toEqual([undefined, "an answer of one key"])
    Effect.runSync(cache.summaries(run, runA, refs(rows)))
    expect(statements).toHaveLength(1)
  })
})
