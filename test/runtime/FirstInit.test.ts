/**
 * What a training process loads to reach its first `log()`: an offline run opens, logs, patches
 * its config and summary and finishes without effect/Schema (and the fast-check it imports), the
 * journal reader, or the service link; an online run loads the service link and still no
 * effect/Schema, also as its upload service reports back; a bad setting loads the schemas that
 * word its error. How long that takes is bench/first-init.ts's to measure; these tests check only
 * what is loaded, in a fresh process of the built package.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import { killChildren, startFixture } from "../support/child.js"
import { serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"
import { useTestServer } from "../support/testServer.js"

const temp = useTempDir("first-init")
const server = useTestServer(temp.dir)
const services = serviceTracker()
const moduleLog = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "moduleLog.mjs")
afterEach(async () => {
  await killChildren()
  services.killAll()
})

/** The modules process `pid` loaded, as test/fixtures/moduleLog.mjs wrote them to `log` (paths from the package root or node_modules). */
const modulesOf = (log: string, pid: number): Array<string> =>
  fs.readFileSync(log, "utf8").trim().split("\n").flatMap((line) => {
    const [loader, url] = line.split(" ")
    return Number(loader) === pid ? [url!.replace(/^.*?\/(dist|node_modules)\//, "$1/")] : []
  })

/** Runs test/fixtures/firstInit.mjs with `options`; its last line and the modules it loaded (paths from the package root or node_modules). */
const firstInit = async (options: object) => {
  const log = temp.file("modules.txt")
  const child = startFixture("firstInit.mjs", {
    OPTIONS: JSON.stringify({ dir: temp.file("runs"), ...options }),
    MODULE_LOG: log,
    NODE_OPTIONS: `--import=${moduleLog}`
  }, temp.dir())
  expect(await child.exited()).toEqual({ code: 0, signal: null })
  return { said: child.lines.at(-1), modules: modulesOf(log, child.pid) }
}

/** What only a bad setting or a resumed run needs (effect keeps a fast-check of its own in its node_modules). */
const lazy = ["/effect/dist/esm/Schema.js", "/fast-check/", "dist/schemas/SettingsSchema.js", "dist/journal/JournalReader.js"]

describe("the first init()", () => {
  it("opens an offline run, logs and finishes without loading effect/Schema, the journal reader or the service link", async () => {
    const { said, modules } = await firstInit({ mode: "offline", config: { lr: 0.001, layers: [64, 64] }, tags: ["mlp"] })
    expect(said).toBe("finished")
    expect(modules).toContain("dist/runtime/OpenRun.js")
    expect(modules).toContain("node_modules/effect/dist/esm/Effect.js")
    expect(modules.filter((module) => [...lazy, "dist/runtime/ServiceLink.js"].some((name) => module.includes(name)))).toEqual([])
  })

  it("opens an online run that uploads and finishes without loading effect/Schema, while its upload service does load it", async () => {
    const log = temp.file("online-modules.txt")
    const env = { MODULE_LOG: log, NODE_OPTIONS: `--import=${moduleLog}`, ROWS: "50" }
    const trainer = trainOnline({ baseUrl: server.baseUrl, key: server.key, config: temp.file("config"), workDir: temp.dir() }, env)
    const { runDir } = await startedRun(trainer)
    // 50 rows, and the run, summary and exit records.
    expect(JSON.parse((await trainer.waitForLine((line) => line.startsWith("finished "))).slice("finished ".length))).toMatchObject({ uploaded: true, records: 53 })
    expect(await trainer.exited()).toEqual({ code: 0, signal: null })
    const [service] = services.pids(runDir)

    const modules = modulesOf(log, trainer.pid)
    expect(modules).toContain("dist/runtime/ServiceLink.js")
    expect(modules.filter((module) => [...lazy, "dist/schemas/IpcSchema.js", "dist/journal/UploadCursor.js"].some((name) => module.includes(name)))).toEqual([])
    // The service decodes the same messages with the schemas.
    expect(modulesOf(log, service!)).toContain("dist/schemas/IpcSchema.js")
  })

  it("loads the schemas for a bad setting, and rejects with the InvalidSetting they word", async () => {
    const { said, modules } = await firstInit({ mode: "offline", flushIntervalMs: 2.5 })
    expect(said).toBe("failed InvalidSetting: steplog: invalid option flushIntervalMs: 2.5; expected a whole number of milliseconds, 0 or more")
    expect(modules).toContain("dist/schemas/SettingsSchema.js")
  })
})
