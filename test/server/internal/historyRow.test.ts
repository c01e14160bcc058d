import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Record } from "../../../src/schemas/Record.js"
import { asHistoryRecord } from "../../../src/server/internal/historyRow.js"
import { record } from "../../journal/arbitraries.js"

const decode = Schema.decodeUnknownEither(Record)

/** Inputs near a history row: valid ones, and each field broken in a way the schema refuses or not. */
const nearHistory = fc.record({
  kind: fc.constantFrom<unknown>("history", "stats", undefined, 1),
  seq: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.constant<unknown>("1")),
  ts: fc.oneof(fc.double(), fc.constant<unknown>(null), fc.constant<unknown>("1")),
  step: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.constant<unknown>(undefined)),
  values: fc.oneof(
    fc.dictionary(fc.string(), fc.oneof(fc.double(), fc.string(), fc.boolean(), fc.constant(null))),
    fc.dictionary(fc.string(), fc.anything()),
    fc.constant<unknown>([1, 2]),
    fc.constant<unknown>(null)
  )
}, { requiredKeys: ["kind", "seq", "ts", "step"] }).chain((row) =>
  fc.oneof(fc.constant<unknown>(row), fc.constant<unknown>({ ...row, extra: 1 }), fc.constant<unknown>(new Map(Object.entries(row))))
)

describe("asHistoryRecord", () => {
  it("accepts only what the Record schema accepts, unchanged", () => {
    fc.assert(
      fc.property(fc.oneof(record, nearHistory, fc.anything()), (input) => {
        const fast = asHistoryRecord(input)
        if (fast !== null) expect(decode(fast)).toEqual(Either.right(fast))
      }),
      { numRuns: 2000 }
    )
  })

  it("recognises a plain history row of numbers, strings, booleans and nulls", () => {
    const row = { kind: "history", seq: 3, ts: 1.5, step: 7, values: { loss: NaN, tag: "a", ok: true, none: null } }
    expect(asHistoryRecord(row)).toBe(row)
  })

  it("leaves to the schema a row with another key, a negative or fractional step, or a nested value", () => {
    const row = { kind: "history", seq: 3, ts: 1.5, step: 7, values: { loss: 1 } }
    expect(asHistoryRecord({ ...row, extra: 1 })).toBeNull()
    expect(asHistoryRecord({ ...row, step: -1 })).toBeNull()
    expect(asHistoryRecord({ ...row, step: 1.5 })).toBeNull()
    expect(asHistoryRecord({ ...row, values: { loss: { nested: 1 } } })).toBeNull()
    expect(asHistoryRecord({ ...row, kind: "stats" })).toBeNull()
  })
})
