/**
 * The bin (dist/cli/main.js) turns on Node's compile cache before it loads the command, where Node
 * has one (≥ 22.1), and runs as before where it has none (Node 20).
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { cachedFiles, envWithTmp, nodeHasCompileCache } from "../support/compileCache.js"
import { useTempDir } from "../support/tempDir.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const bin = path.join(root, "dist/cli/main.js")
const { version } = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }
const temp = useTempDir("cli-main")

const versionIn = (tmp: string): Promise<{ readonly error: Error | null; readonly stdout: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, [bin, "--version"], { env: envWithTmp(tmp), encoding: "utf8" }, (error, stdout) => resolve({ error, stdout }))
  })

describe(`the steplog bin on Node ${process.version}`, () => {
  it.runIf(nodeHasCompileCache)("fills the compile cache, so that later commands load faster", async () => {
    const tmp = temp.file("tmp")
    fs.mkdirSync(tmp)
    const ran = await versionIn(tmp)
    expect(ran).toEqual({ error: null, stdout: expect.stringContaining(version) })
    expect(cachedFiles(tmp)).toBeGreaterThan(100)
  })

  it.skipIf(nodeHasCompileCache)("runs without a compile cache where Node has none", async () => {
    const tmp = temp.file("tmp")
    fs.mkdirSync(tmp)
    const ran = await versionIn(tmp)
    expect(ran).toEqual({ error: null, stdout: expect.stringContaining(version) })
    expect(cachedFiles(tmp)).toBe(0)
  })
})
