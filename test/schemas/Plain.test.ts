/**
 * The plain-code twins of Record.ts's schemas agree with the schemas: the same values accepted,
 * decoded to the same copies, on JSON and on everything JavaScript can pass where JSON is expected.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeJsonPatch, NotJson } from "../../src/schemas/Plain.js"
import { JsonPatch } from "../../src/schemas/Record.js"

const decodeWithSchema = Schema.decodeUnknownEither(JsonPatch)

/** Anything a caller may pass: class instances, Dates, Maps, typed arrays, sparse arrays, bigints, null prototypes, … */
const anything = fc.anything({
  maxDepth: 3,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withNullPrototype: true,
  withObjectString: true,
  withSet: true,
  withSparseArray: true,
  withTypedArray: true
})

/** Objects whose prototype has keys of its own (inherited keys are not the object's). */
const inheriting = fc
  .tuple(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1, maxKeys: 3 }), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }))
  .map(([proto, own]) => Object.assign(Object.create(proto) as object, own))

/** JSON with one value that is not JSON (a function, undefined, a bigint, a symbol) somewhere inside. */
const { nested } = fc.letrec<{ nested: unknown }>((tie) => ({
  nested: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom(() => 1, undefined, 1n, Symbol("s")),
    fc.jsonValue(),
    fc.array(tie("nested"), { maxLength: 3 }),
    fc.dictionary(fc.string(), tie("nested"), { maxKeys: 3 })
  )
}))

describe("decodeJsonPatch", () => {
  it("accepts what JsonPatch accepts and returns the same copy", () => {
    fc.assert(
      fc.property(fc.oneof(anything, nested, inheriting, fc.dictionary(fc.string(), fc.oneof(anything, nested, inheriting), { maxKeys: 4 })), (value) => {
        const plain = decodeJsonPatch(value)
        const schema = decodeWithSchema(value)
        expect(Either.isRight(plain)).toBe(Either.isRight(schema))
        if (Either.isRight(plain) && Either.isRight(schema)) expect(plain.right).toStrictEqual(schema.right)
      }),
      { numRuns: 2000 }
    )
  })

  it("copies, so that changing the object passed in later changes nothing recorded", () => {
    const patch = { optimizer: { name: "adam", betas: [0.9, 0.999] } }
    const decoded = Either.getOrThrow(decodeJsonPatch(patch))
    patch.optimizer.betas.push(1)
    patch.optimizer.name = "sgd"
    expect(decoded).toEqual({ optimizer: { name: "adam", betas: [0.9, 0.999] } })
  })

  it.each([
    { value: { lr: 0.1, callback: () => 1 }, message: `["callback"] is a function (callback)` },
    { value: { optimizer: { betas: [0.9, undefined] } }, message: `["optimizer"]["betas"][1] is undefined` },
    { value: { seed: 1n }, message: `["seed"] is 1n` },
    { value: 5, message: "the patch is 5" },
    { value: "lr=0.1", message: `the patch is "lr=0.1"` },
    { value: [1, 2], message: "the patch is an array" },
    { value: null, message: "the patch is null" }
  ])("says where a patch is not JSON and what is there: $message", ({ value, message }) => {
    const decoded = decodeJsonPatch(value)
    expect(Either.isLeft(decoded) && decoded.left).toBeInstanceOf(NotJson)
    expect(Either.isLeft(decoded) && decoded.left.message).toBe(message)
  })
})
