/** The upload cursor file: written whole or not at all, read back, and harmless when corrupt. */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe } from "vitest"
import * as UploadCursor from "../../src/journal/UploadCursor.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("cursor")

const runDir = () => {
  const dir = temp.file("run")
  fs.mkdirSync(dir)
  return dir
}

const SERVER = "http://127.0.0.1:7077"

describe("UploadCursor", () => {
  it.effect("reads back what was written, in the run directory as upload.cursor, with no temporary file left", () =>
    Effect.gen(function* () {
      const dir = runDir()
      const file = UploadCursor.cursorPath(dir)
      expect(path.basename(file)).toBe("upload.cursor")
      yield* UploadCursor.write(file, { server: SERVER, ackSeq: 56 })
      expect(yield* UploadCursor.read(file, SERVER)).toEqual({ server: SERVER, ackSeq: 56 })
      yield* UploadCursor.write(file, { server: SERVER, ackSeq: 99 })
      expect(yield* UploadCursor.read(file, SERVER)).toEqual({ server: SERVER, ackSeq: 99 })
      expect(fs.readdirSync(dir)).toEqual(["upload.cursor"])
    }))

  it.effect("counts for the server it names only: for another, it is the start of the journal", () =>
    Effect.gen(function* () {
      const file = UploadCursor.cursorPath(runDir())
      yield* UploadCursor.write(file, { server: SERVER, ackSeq: 56 })
      expect(yield* UploadCursor.read(file, "https://steplog.example.com")).toEqual(UploadCursor.start("https://steplog.example.com"))
    }))

  it.effect("a missing cursor is the start of the journal", () =>
    Effect.gen(function* () {
      expect(yield* UploadCursor.read(UploadCursor.cursorPath(runDir()), SERVER)).toEqual(UploadCursor.start(SERVER))
      expect(UploadCursor.start(SERVER)).toEqual({ server: SERVER, ackSeq: 0 })
    }))

  it.effect.each([
    ["cut short", "{\"server\": \"http://127"],
    ["not JSON", "\u0000\u0000\u0000"],
    ["empty", ""],
    ["a negative ackSeq", `{"server": "${SERVER}", "ackSeq": -1}`],
    ["a fractional ackSeq", `{"server": "${SERVER}", "ackSeq": 2.5}`],
    ["missing ackSeq", `{"server": "${SERVER}"}`],
    ["of an older steplog (no server)", "{\"offset\": 8, \"ackSeq\": 3}"]
  ] as const)("a corrupt cursor (%s) is the start of the journal", ([, text]) =>
    Effect.gen(function* () {
      const file = UploadCursor.cursorPath(runDir())
      fs.writeFileSync(file, text)
      expect(yield* UploadCursor.read(file, SERVER)).toEqual(UploadCursor.start(SERVER))
    }))

  it.effect("a write that cannot be made fails with CursorWriteFailed and leaves the old cursor in place", () =>
    Effect.gen(function* () {
      const dir = runDir()
      const file = UploadCursor.cursorPath(dir)
      yield* UploadCursor.write(file, { server: SERVER, ackSeq: 1 })
      // A directory where the temporary file would go makes the write fail before the rename.
      fs.mkdirSync(`${file}.tmp-${process.pid}`)
      const error = yield* Effect.flip(UploadCursor.write(file, { server: SERVER, ackSeq: 2 }))
      expect(error._tag).toBe("CursorWriteFailed")
      expect(error.message).toContain(file)
      expect(yield* UploadCursor.read(file, SERVER)).toEqual({ server: SERVER, ackSeq: 1 })
    }))
})
