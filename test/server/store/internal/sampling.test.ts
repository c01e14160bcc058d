/**
 * A sampled read over statements answered by this test: as PostgreSQL answers them when an upload
 * commits between them (each statement reads its own snapshot), the chunks the first statement saw
 * bound the buckets, and a chunk read afterwards at another stamp, grown past them, adds nothing
 * past those steps; and a read again of a grown run makes again only the buckets over chunks
 * written since.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { describe, expect, it } from "vitest"
import * as HistoryCache from "../../../../src/server/store/internal/historyCache.js"
import { BLOCK, CHUNK_STEPS } from "../../../../src/server/store/internal/historyChunk.js"
import { sampled } from "../../../../src/server/store/internal/sampling.js"
import type { Run } from "../../../../src/server/store/internal/sql.js"
import type { RunId } from "../../../../src/schemas/Record.js"
import type { ProjectName } from "../../../../src/schemas/Wire.js"

/** Steps first…last of one key, each valued at its step, as a chunk's block summaries (min, max, last step, last ts, last value a block). */
const summaries = (chunk: number, last: number) => {
  const floats = new Float64Array((CHUNK_STEPS / BLOCK) * 5).fill(NaN)
  for (let b = 0; b < CHUNK_STEPS / BLOCK; b++) {
    const from = chunk * CHUNK_STEPS + b * BLOCK
    const to = Math.min(from + BLOCK - 1, last)
    if (to < from) continue
    floats.set([from, to, to, to, to], b * 5)
  }
  return Buffer.from(floats.buffer)
}
const project = "p" as ProjectName
const runId = "a" as RunId
const column = (from: number, to: number) => Buffer.from(Float64Array.from({ length: to - from + 1 }, (_, i) => from + i).buffer)

describe("a sampled read", () => {
  it("folds a chunk written since its first statement from its entries, up to the last step that statement saw", () => {
    // The run is at step 3,999 when the read starts; an upload then takes it to 4,095 (the top chunk's end).
    const seen = 3_999
    const grown = 4_095
    const top = Math.floor(seen / CHUNK_STEPS)
    const run: Run = (text) =>
      Effect.sync(() => {
        const chunks = Array.from({ length: top + 1 }, (_, chunk) => chunk)
        const lastOf = (chunk: number, now: number) => Math.min(now, (chunk + 1) * CHUNK_STEPS - 1)
        if (text.includes("h.first_step")) {
          return chunks.map((chunk) => ({ run_pk: 1, key_id: 0, name: "loss", chunk, first_step: chunk * CHUNK_STEPS, last_step: lastOf(chunk, seen), stamp: `s${chunk}` }))
        }
        if (text.includes("h.blocks")) {
          return chunks.map((chunk) => ({ key_id: 0, chunk, blocks: summaries(chunk, lastOf(chunk, grown)), block_texts: null, stamp: chunk === top ? "later" : `s${chunk}` }))
        }
        if (text.includes("h.vals")) {
          const n = grown - top * CHUNK_STEPS + 1
          const steps = column(top * CHUNK_STEPS, grown)
          return [{ key_id: 0, chunk: top, n, steps, ts: steps, vals: steps, texts: null, stamp: "later" }]
        }
        throw new Error(`a statement this test does not answer: ${text}`)
      })
    const rows = Option.getOrThrow(Effect.runSync(sampled(run, HistoryCache.make("h.stamp", false), project, runId, undefined, { from: 0, to: Number.MAX_SAFE_INTEGER }, 10)))
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.at(-1)).toMatchObject({ step: seen, values: { loss: seen }, max: { loss: seen } })
    expect(Math.max(...rows.map((row) => row.step))).toBe(seen)
  })

  it("reads again only the chunks written since, and answers the other buckets' rows as the same objects", () => {
    // One key, each step valued at its step plus 10,000 a version of its chunk; chunk `c`'s stamp is `v<its version>`.
    let last = 3_499
    const versions = [0, 0, 0, 0, 0]
    const read: Array<ReadonlyArray<number>> = []
    const lastOf = (chunk: number) => Math.min(last, (chunk + 1) * CHUNK_STEPS - 1)
    const run: Run = (text) =>
      Effect.sync(() => {
        const chunks = Array.from({ length: Math.floor(last / CHUNK_STEPS) + 1 }, (_, chunk) => chunk)
        if (text.includes("h.first_step")) {
          return chunks.map((chunk) => ({ run_pk: 1, key_id: 0, name: "loss", chunk, first_step: chunk * CHUNK_STEPS, last_step: lastOf(chunk), stamp: `v${versions[chunk]}` }))
        }
        if (text.includes("h.vals")) {
          const asked = /h\.chunk IN \(([^)]*)\)/.exec(text)![1]!.split(",").map(Number)
          read.push(asked)
          return asked.map((chunk) => {
            const steps = column(chunk * CHUNK_STEPS, lastOf(chunk))
            const vals = Buffer.from(Float64Array.from(new Float64Array(steps.buffer, steps.byteOffset, steps.byteLength / 8), (step) => step + 10_000 * versions[chunk]!).buffer)
            return { key_id: 0, chunk, n: steps.byteLength / 8, steps, ts: steps, vals, texts: null, stamp: `v${versions[chunk]}` }
          })
        }
        throw new Error(`a statement this test does not answer: ${text}`)
      })
    const cache = HistoryCache.make("h.stamp", false)
    // Up to 4,000 steps in at most 1,000 buckets: 4 steps wide.
    const sample = () => Option.getOrThrow(Effect.runSync(sampled(run, cache, project, runId, undefined, { from: 0, to: Number.MAX_SAFE_INTEGER }, 1_000)))
    const first = sample()
    expect(read).toEqual([[0, 1, 2, 3]])
    expect(first).toHaveLength(875)
    // An upload adds steps 3,500 to 3,989 to the top chunk: only it is read and folded again.
    last = 3_989
    versions[3]!++
    const second = sample()
    expect(read.at(-1)).toEqual([3])
    expect(second).toHaveLength(998)
    expect(second.slice(0, 768).every((row, i) => row === first[i])).toBe(true)
    expect(second.slice(768).map((row) => [row.step, row.min?.["loss"], row.max?.["loss"]])).toEqual(
      Array.from({ length: 230 }, (_, i) => [Math.min(3_072 + i * 4 + 3, 3_989), 13_072 + i * 4, 10_000 + Math.min(3_072 + i * 4 + 3, 3_989)])
    )
    // A late row rewrites chunk 1: its buckets are made again, from what it holds now.
    versions[1]!++
    const third = sample()
    expect(read.at(-1)).toEqual([1])
    const remade = third.flatMap((row, i) => (row === second[i] ? [] : [[row.step, row.values["loss"], row.min?.["loss"]]]))
    expect(remade).toEqual(Array.from({ length: 256 }, (_, i) => [1_024 + i * 4 + 3, 11_024 + i * 4 + 3, 11_024 + i * 4]))
    // Nothing changed: nothing is read.
    const reads = read.length
    expect(sample()).toEqual(third)
    expect(read.length).toBe(reads)
  })
})
