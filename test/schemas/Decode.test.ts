/**
 * schemas/Decode.ts: decoding that refuses what Effect's own decoder throws on, and otherwise
 * answers as it does.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeUnknownEither } from "../../src/schemas/Decode.js"
import { UploadRecord } from "../../src/schemas/Record.js"

const effectDecode = Schema.decodeUnknownEither(UploadRecord)
const decode = decodeUnknownEither(UploadRecord)
/** What a decoder answered, as text: "accepted", or why not. */
const why = (result: Either.Either<unknown, ParseResult.ParseError>) =>
  Either.isLeft(result) ? ParseResult.TreeFormatter.formatErrorSync(result.left) : "accepted"

describe("decodeUnknownEither", () => {
  it("refuses a tag that is an object String() cannot print, naming the field, where Effect's decoder throws", () => {
    for (const kind of [{ toString: 0 }, { toString: {} }, { toString: null, valueOf: 1 }]) {
      const input = { kind, seq: 0, ts: 1 }
      expect(() => effectDecode(input)).toThrow(TypeError)
      expect(why(decode(input))).toBe('cannot be read: "kind" holds an object that cannot be turned into text')
    }
  })

  it("answers as Effect's decoder does for anything it does not throw on", () => {
    const kind = fc.oneof(fc.constantFrom("history", "run", "summary", "output", "historyBlock"), fc.jsonValue())
    const record = fc.record({ kind, seq: fc.jsonValue(), ts: fc.jsonValue(), step: fc.jsonValue(), values: fc.jsonValue() }, { requiredKeys: ["kind"] })
    fc.assert(
      fc.property(fc.oneof(record, fc.jsonValue()), (input) => {
        let expected: string
        try {
          expected = why(effectDecode(input))
        } catch {
          return
        }
        expect(why(decode(input))).toBe(expected)
      }),
      { numRuns: 2000 }
    )
  })
})
