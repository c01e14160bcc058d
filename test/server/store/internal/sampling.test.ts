/**
 * A sampled read over statements answered by this test, as PostgreSQL answers them when an upload
 * commits between them (each statement reads its own snapshot): the chunks the first statement saw
 * bound the buckets, and a chunk read afterwards at another stamp, grown past them, adds nothing
 * past those steps.
 */
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import * as ChunkCache from "../../../../src/server/store/internal/chunkCache.js"
import { BLOCK, CHUNK_STEPS } from "../../../../src/server/store/internal/historyChunk.js"
import { sampled } from "../../../../src/server/store/internal/sampling.js"
import type { Run } from "../../../../src/server/store/internal/sql.js"

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
          return chunks.map((chunk) => ({ key_id: 0, chunk, first_step: chunk * CHUNK_STEPS, last_step: lastOf(chunk, seen), stamp: `s${chunk}` }))
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
    const rows = Effect.runSync(sampled(run, 1, "0", new Map([[0, "loss"]]), { from: 0, to: Number.MAX_SAFE_INTEGER }, 10, ChunkCache.make("h.stamp")))
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.at(-1)).toMatchObject({ step: seen, values: { loss: seen }, max: { loss: seen } })
    expect(Math.max(...rows.map((row) => row.step))).toBe(seen)
  })
})
