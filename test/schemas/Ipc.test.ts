/**
 * The training process's check of the upload service's messages (schemas/Ipc.ts, plain code)
 * against their schemas (schemas/IpcSchema.ts): the two accept the same lines and refuse the same.
 */
import * as Either from "effect/Either"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeFromService } from "../../src/schemas/Ipc.js"
import * as IpcSchema from "../../src/schemas/IpcSchema.js"
import { STOP_REASONS } from "../../src/schemas/StopReason.js"
import { UploadStopped } from "../../src/schemas/UploadStopped.js"

/** Any JSON value a line may hold, numbers at the edges of each check included. */
const anyValue = fc.oneof(
  fc.jsonValue(),
  // `{ toString: {} }` as a tag made Effect's Union decoder throw (schemas/Decode.ts).
  fc.constantFrom(-1, -0, 0, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, "", "deleted", "another-reason", [], ["a", 1], {}, { toString: {} })
)

/** A field's value: mostly what FromService asks of it, at times anything; absent at times. */
const field = (good: fc.Arbitrary<unknown>) => fc.option(fc.oneof({ arbitrary: good, weight: 4 }, { arbitrary: anyValue, weight: 1 }), { nil: undefined, freq: 6 })

const message = fc
  .record({
    _tag: fc.oneof({ arbitrary: fc.constantFrom("Welcome", "Progress", "UploadNotice", "UploadStopped"), weight: 9 }, { arbitrary: anyValue, weight: 1 }),
    pid: field(fc.integer()),
    runId: field(fc.string()),
    ackSeq: field(fc.nat()),
    records: field(fc.nat()),
    done: field(fc.boolean()),
    kept: field(fc.nat()),
    keptKinds: field(fc.array(fc.string())),
    message: field(fc.string()),
    reason: field(fc.constantFrom(...STOP_REASONS)),
    detail: field(fc.string()),
    extra: field(anyValue)
  })
  // As a JSON line reads back: no field holds undefined.
  .map((fields) => Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)))

describe("the training process's check of the service's messages", () => {
  it("accepts what FromService accepts and refuses what it refuses", () => {
    const seen = { accepted: 0, refused: 0 }
    fc.assert(
      fc.property(fc.oneof({ arbitrary: message, weight: 9 }, { arbitrary: anyValue, weight: 1 }), (raw) => {
        const schema = Either.isRight(IpcSchema.decodeFromService(raw))
        expect(decodeFromService(raw) !== null, JSON.stringify(raw)).toBe(schema)
        seen[schema ? "accepted" : "refused"]++
      }),
      { numRuns: 5000 }
    )
    // Both sides of the boundary were tried, many times.
    expect(seen.accepted).toBeGreaterThan(500)
    expect(seen.refused).toBeGreaterThan(500)
  })

  it("reads what the service writes", () => {
    const written = [
      new IpcSchema.Welcome({ pid: 4242 }),
      new IpcSchema.Progress({ runId: "r1", ackSeq: 10, records: 12, done: false }),
      new IpcSchema.Progress({ runId: "r1", ackSeq: 12, records: 12, done: true, kept: 2, keptKinds: ["summary"] }),
      new IpcSchema.UploadNotice({ runId: "r1", message: "kept back" }),
      new UploadStopped({ runId: "r1", reason: "deleted", detail: "410 Gone" })
    ]
    for (const sent of written) {
      const line = JSON.parse(JSON.stringify(IpcSchema.encodeFromService(sent)))
      expect(decodeFromService(line)).toEqual(line)
    }
  })
})
