import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import { generateRunId } from "../../../src/runtime/internal/identity.js"
import { RunId } from "../../../src/schemas/Record.js"

describe("generateRunId", () => {
  it("makes RunIds (branded without a schema check, so each must match RunId's pattern)", () => {
    const ids = Array.from({ length: 2000 }, generateRunId)
    expect(ids.filter((id) => !Schema.is(RunId)(id))).toEqual([])
    expect(new Set(ids).size).toBe(ids.length)
  })
})
