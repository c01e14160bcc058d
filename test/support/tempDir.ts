/** A temporary directory per test file: made before its tests, removed with everything in it after. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"

/** Registers the hooks; `file(name)` gives a fresh path inside the directory on each call. */
export const useTempDir = (prefix: string) => {
  let dir = ""
  let count = 0
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `steplog-${prefix}-`))
  })
  afterAll(() => {
    if (dir !== "") fs.rmSync(dir, { recursive: true, force: true })
  })
  return {
    /** The directory itself (only valid inside tests and hooks). */
    dir: () => dir,
    /** A path in the directory that nothing has used yet. */
    file: (name: string) => path.join(dir, `${count++}-${name}`)
  }
}
