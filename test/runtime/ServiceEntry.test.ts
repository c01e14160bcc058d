/**
 * The service entry (dist/runtime/ServiceEntry.cjs) turns on Node's compile cache where Node has
 * one (≥ 22.1), before any module loads, and starts as before where it has none. Each test starts
 * the entry as ServiceLink does (the socket as its argument, a pipe as its stdin) and closes the
 * pipe at once, as a training process that died right after: the service loads, finds nothing to
 * upload and exits.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { cachedFiles, envWithTmp, nodeHasCompileCache } from "../support/compileCache.js"
import { useTempDir } from "../support/tempDir.js"

const entry = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/runtime/ServiceEntry.cjs")
const temp = useTempDir("service-entry")

/** Starts the service with `tmp` as its temp folder, closes its stdin at once, and resolves with how it exited. */
const orphanedService = (tmp: string): Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }> => {
  fs.mkdirSync(tmp)
  const child = spawn(process.execPath, [entry, path.join(tmp, "service.sock")], { env: envWithTmp(tmp), stdio: ["pipe", "ignore", "ignore"] })
  child.stdin.end()
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })))
}

describe(`the service entry on Node ${process.version}`, () => {
  it.runIf(nodeHasCompileCache)("fills the compile cache as it loads the service", async () => {
    const tmp = temp.file("tmp")
    expect(await orphanedService(tmp)).toEqual({ code: 0, signal: null })
    expect(cachedFiles(tmp)).toBeGreaterThan(100)
  })

  it.skipIf(nodeHasCompileCache)("starts and exits without a compile cache where Node has none", async () => {
    const tmp = temp.file("tmp")
    expect(await orphanedService(tmp)).toEqual({ code: 0, signal: null })
    expect(cachedFiles(tmp)).toBe(0)
  })
})
