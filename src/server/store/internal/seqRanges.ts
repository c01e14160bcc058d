/**
 * The seqs of a run held so far, as sorted, disjoint, non-adjacent [lo, hi] ranges (inclusive):
 * how an ingest tells which records of a batch are new. Taking a range gives back the parts of it
 * not held yet and holds all of it, so a block of many rows costs one step, not one a row, and a
 * run uploaded in order stays a single range that each batch extends.
 */

/** A range of seqs, both ends included. */
export type SeqRange = [lo: number, hi: number]

/** Held seqs; `ranges` starts as the held ranges read from the store and grows as a batch is taken. */
export class SeqRanges {
  constructor(readonly ranges: Array<SeqRange>) {}

  /** The parts of [lo, hi] not held, ascending; [lo, hi] is held afterwards. */
  take(lo: number, hi: number): Array<SeqRange> {
    const ranges = this.ranges
    // The first range that overlaps [lo, hi] or touches it from below.
    let first = 0
    let last = ranges.length
    while (first < last) {
      const middle = (first + last) >> 1
      if (ranges[middle]![1] < lo - 1) first = middle + 1
      else last = middle
    }
    const fresh: Array<SeqRange> = []
    let next = lo
    let end = first
    for (; end < ranges.length && ranges[end]![0] <= hi + 1; end++) {
      const [l, h] = ranges[end]!
      if (l > next) fresh.push([next, Math.min(l - 1, hi)])
      next = Math.max(next, h + 1)
    }
    if (next <= hi) fresh.push([next, hi])
    const merged: SeqRange = end > first ? [Math.min(lo, ranges[first]![0]), Math.max(hi, ranges[end - 1]![1])] : [lo, hi]
    ranges.splice(first, end - first, merged)
    return fresh
  }
}
