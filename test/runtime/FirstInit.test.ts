/**
 * What a training process loads to reach its first `log()`: an offline run opens, logs, patches
 * its config and summary and finishes without effect/Schema (and the fast-check it imports), the
 * journal reader, or the service link; a bad setting loads the schemas that word its error. How
 * long that takes is bench/first-init.ts's to measure; these tests check only what is loaded, in
 * a fresh process of the built package.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import { killChildren, startFixture } from "../support/child.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("first-init")
const moduleLog = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "moduleLog.mjs")
afterEach(killChildren)

/** Runs test/fixtures/firstInit.mjs with `options`; its last line and the modules it loaded (paths from the package root or node_modules). */
const firstInit = async (options: object) => {
  const log = temp.file("modules.txt")
  const child = startFixture("firstInit.mjs", {
    OPTIONS: JSON.stringify({ dir: temp.file("runs"), ...options }),
    MODULE_LOG: log,
    NODE_OPTIONS: `--import=${moduleLog}`
  }, temp.dir())
  expect(await child.exited()).toEqual({ code: 0, signal: null })
  const modules = fs.readFileSync(log, "utf8").trim().split("\n").map((url) => url.replace(/^.*?\/(dist|node_modules)\//, "$1/"))
  return { said: child.lines.at(-1), modules }
}

/** What only a bad setting, a resumed run or an online run needs (effect keeps a fast-check of its own in its node_modules). */
const lazy = ["/effect/dist/esm/Schema.js", "/fast-check/", "dist/schemas/SettingsSchema.js", "dist/journal/JournalReader.js", "dist/runtime/ServiceLink.js"]

describe("the first init()", () => {
  it("opens an offline run, logs and finishes without loading effect/Schema, the journal reader or the service link", async () => {
    const { said, modules } = await firstInit({ mode: "offline", config: { lr: 0.001, layers: [64, 64] }, tags: ["mlp"] })
    expect(said).toBe("finished")
    expect(modules).toContain("dist/runtime/OpenRun.js")
    expect(modules).toContain("node_modules/effect/dist/esm/Effect.js")
    expect(modules.filter((module) => lazy.some((name) => module.includes(name)))).toEqual([])
  })

  it("loads the schemas for a bad setting, and rejects with the InvalidSetting they word", async () => {
    const { said, modules } = await firstInit({ mode: "offline", flushIntervalMs: 2.5 })
    expect(said).toBe("failed InvalidSetting: steplog: invalid option flushIntervalMs: 2.5; expected a whole number of milliseconds, 0 or more")
    expect(modules).toContain("dist/schemas/SettingsSchema.js")
  })
})
