/** SeqRanges against the plainest model of it, a set of seqs: what is fresh, and what is held after. */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { type SeqRange, SeqRanges } from "../../../../src/server/store/internal/seqRanges.js"

/** Sorted disjoint ranges as the seqs they hold. */
const seqsOf = (ranges: ReadonlyArray<SeqRange>) => ranges.flatMap(([lo, hi]) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i))

describe("SeqRanges", () => {
  it("gives back exactly the seqs of a range not held yet, and keeps the held ones as sorted, disjoint, non-adjacent ranges", () => {
    const take = fc.tuple(fc.nat(60), fc.nat(12)).map(([lo, length]): SeqRange => [lo, lo + length])
    fc.assert(
      fc.property(fc.array(take, { maxLength: 30 }), (takes) => {
        const ranges = new SeqRanges([])
        const model = new Set<number>()
        for (const [lo, hi] of takes) {
          const fresh = seqsOf(ranges.take(lo, hi))
          expect(fresh).toEqual(seqsOf([[lo, hi]]).filter((seq) => !model.has(seq)))
          for (const seq of fresh) model.add(seq)
          expect(seqsOf(ranges.ranges)).toEqual([...model].sort((a, b) => a - b))
          ranges.ranges.forEach(([l, h], i) => {
            expect(l).toBeLessThanOrEqual(h)
            if (i > 0) expect(l).toBeGreaterThan(ranges.ranges[i - 1]![1] + 1)
          })
        }
      }),
      { numRuns: 300 }
    )
  })

  it("extends the one range of a run uploaded in order", () => {
    const ranges = new SeqRanges([[0, 99]])
    expect(ranges.take(100, 199)).toEqual([[100, 199]])
    expect(ranges.take(150, 250)).toEqual([[200, 250]])
    expect(ranges.ranges).toEqual([[0, 250]])
  })
})
