/**
 * The committed fixtures (made by fixtures/make-fixtures.ts) pin the on-disk format: a reader
 * that stops understanding these bytes, or reports their damage elsewhere, fails here.
 */
import * as Either from "effect/Either"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { readJournal } from "../../src/journal/JournalReader.js"
import { fixtureBatches } from "./fixtures/records.js"

const fixture = (name: string) => path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", name)
const [run, firstSteps, laterSteps, ending] = fixtureBatches

describe("journal fixtures", () => {
  it("torn-tail.slog gives back the first three flushes and reports the half-written fourth as a torn tail", () => {
    const scan = Either.getOrThrow(readJournal(fixture("torn-tail.slog")))
    expect(scan.records).toEqual([...run!, ...firstSteps!, ...laterSteps!])
    expect(scan.frames).toBe(3)
    expect(scan.damage).toEqual([
      { offset: 861, bytes: 72, kind: "torn-tail", detail: "payload of 136 bytes, 64 present" }
    ])
    expect(scan.end).toBe(861)
  })

  it("corrupt-frame.slog skips the second flush, whose CRC no longer matches, and reads the three around it", () => {
    const scan = Either.getOrThrow(readJournal(fixture("corrupt-frame.slog")))
    expect(scan.records).toEqual([...run!, ...laterSteps!, ...ending!])
    expect(scan.frames).toBe(3)
    expect(scan.damage).toEqual([
      { offset: 352, bytes: 254, kind: "corrupt-frame", detail: "CRC-32 does not match the payload" }
    ])
    expect(scan.end).toBe(1005)
  })
})
