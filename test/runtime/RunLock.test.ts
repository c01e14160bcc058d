/**
 * Two processes never write one journal: a run held by a live process is refused to any other,
 * naming the holder; a run that exists is refused without `resume`; and the lock of a process
 * that died without releasing it is taken over. The holder is a real child process.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { init } from "../../src/index.js"
import { RunExists } from "../../src/runtime/InitError.js"
import * as RunDir from "../../src/runtime/RunDir.js"
import { RunLocked } from "../../src/runtime/RunDir.js"
import type { RunRecord } from "../../src/schemas/Record.js"
import { killChildren, startFixture, type Child } from "../support/child.js"
import { poll } from "../support/poll.js"
import { expectContiguous, journalOf, runDirOf } from "../support/runJournal.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("run-lock")
afterEach(killChildren)

const ID = "locked"
const ROWS = 50

const newRoot = (): string => {
  const root = temp.file("runs")
  fs.mkdirSync(root)
  return root
}

/** Starts a child that logs ROWS rows to run ID under `root`, then ends as `end` says. */
const holder = (root: string, end: string, env: { readonly [key: string]: string } = {}) =>
  startFixture("logRows.mjs", { STEPLOG_DIR: root, STEPLOG_RUN_ID: ID, ROWS: String(ROWS), END: end, ...env }, root)

/** What `init()` rejected with; fails the test if it resolved. */
const rejection = async (opening: Promise<unknown>): Promise<unknown> => {
  const outcome = await opening.then(
    (run) => ({ run }),
    (error: unknown) => ({ error })
  )
  if ("run" in outcome) throw new Error("init() opened the run; it should have refused")
  return outcome.error
}

describe("the run lock", () => {
  it("refuses a second process a run that a live process holds, naming that process, and leaves its journal whole", async () => {
    const root = newRoot()
    const child = holder(root, "idle")
    await child.waitForLine((line) => line === `logged ${ROWS}`)

    const error = await rejection(init({ dir: root, id: ID, mode: "offline", resume: "allow" }))
    expect(error).toBeInstanceOf(RunLocked)
    expect((error as RunLocked).pid).toBe(child.pid)
    expect((error as RunLocked).message).toContain(`process ${child.pid}`)
    expect((error as RunLocked).message).toContain("two processes may not write one run")

    // The holder was not disturbed: it ends normally and its journal is whole.
    child.process.kill("SIGTERM")
    expect(await child.exited()).toEqual({ code: null, signal: "SIGTERM" })
    const { scan } = journalOf(root, ID)
    expect(scan.damage).toEqual([])
    expect(expectContiguous(scan.records)).toHaveLength(ROWS)
    expect(scan.records.filter((record) => record.kind === "run")).toHaveLength(1)
    expect(scan.records.at(-1)).toMatchObject({ kind: "exit", signal: "SIGTERM" })
  })

  it("refuses init({ id }) of a run that exists, without resume, and changes nothing", async () => {
    const root = newRoot()
    const child = holder(root, "finish")
    expect(await child.exited()).toEqual({ code: 0, signal: null })
    const { path: journal } = journalOf(root, ID)
    const before = fs.readFileSync(journal)

    const error = await rejection(init({ dir: root, id: ID, mode: "offline" }))
    expect(error).toBeInstanceOf(RunExists)
    expect((error as RunExists).message).toContain(`run ${ID} already exists`)
    expect((error as RunExists).message).toContain(`resume: "allow"`)
    expect(fs.readFileSync(journal).equals(before)).toBe(true)
    expect(fs.existsSync(path.join(runDirOf(root, ID).path, "lock"))).toBe(false)
  })

  it("takes over the lock of a process that was killed holding it, and appends after its last record", async () => {
    const root = newRoot()
    const child = holder(root, "idle", { STEPLOG_DURABILITY: "sync" })
    await child.waitForLine((line) => line === `logged ${ROWS}`)
    child.process.kill("SIGKILL")
    expect(await child.exited()).toEqual({ code: null, signal: "SIGKILL" })
    const lock = path.join(runDirOf(root, ID).path, "lock")
    expect(fs.readFileSync(lock, "utf8")).toBe(String(child.pid))

    const run = await init({ dir: root, id: ID, mode: "offline", resume: "allow" })
    run.log({ i: 0 })
    await run.finish()

    const { scan } = journalOf(root, ID)
    expect(scan.damage).toEqual([])
    expect(expectContiguous(scan.records)).toEqual([...Array.from({ length: ROWS }, (_, i) => i), 0])
    const runs = scan.records.filter((record): record is RunRecord => record.kind === "run")
    expect(runs.map((record) => [record.pid, record.resumed])).toEqual([[child.pid, false], [process.pid, true]])
    expect(fs.existsSync(lock)).toBe(false)
  })

  it("lets exactly one of several processes that resume one run at the same moment hold it", async () => {
    const root = newRoot()
    expect(await holder(root, "finish").exited()).toEqual({ code: 0, signal: null })
    const contenders = Array.from({ length: 3 }, () => holder(root, "idle", { STEPLOG_RESUME: "allow" }))
    // Each either holds the run (says so, then idles) or is refused (init() rejects: exit 1).
    const outcome = async (child: Child): Promise<string> => {
      try {
        await child.waitForLine((line) => line === `logged ${ROWS}`)
        return "holds"
      } catch {
        const ended = await child.exited()
        const refused = ended.code === 1 && child.stderr().includes("two processes may not write one run")
        return refused ? "refused" : `ended ${JSON.stringify(ended)}: ${child.stderr()}`
      }
    }
    const outcomes = await Promise.all(contenders.map(outcome))
    expect([...outcomes].sort()).toEqual(["holds", "refused", "refused"])

    const winner = contenders[outcomes.indexOf("holds")]!
    winner.process.kill("SIGTERM")
    expect(await winner.exited()).toEqual({ code: null, signal: "SIGTERM" })
    const { scan } = journalOf(root, ID)
    expect(scan.damage).toEqual([])
    expect(expectContiguous(scan.records)).toHaveLength(2 * ROWS)
    const runs = scan.records.filter((record): record is RunRecord => record.kind === "run")
    expect(runs.map((record) => record.pid).at(-1)).toBe(winner.pid)
    expect(scan.records.at(-1)).toMatchObject({ kind: "exit", signal: "SIGTERM" })
  })

  it("counts a lock whose process is a zombie (exited, not yet reaped) as held by no one", async () => {
    // `sleep 0` exits at once; its parent, the shell, then becomes `sleep 5`, which never reaps it.
    const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 5"], { stdio: ["ignore", "pipe", "ignore"] })
    try {
      const zombie = Number(await new Promise<string>((resolve) => parent.stdout!.once("data", (chunk: Buffer) => resolve(chunk.toString()))))
      await poll("the zombie", () => {
        const stat = fs.readFileSync(`/proc/${zombie}/stat`, "utf8")
        return stat[stat.lastIndexOf(")") + 2] === "Z" ? true : undefined
      })
      const dir = temp.file("zombie-held")
      fs.mkdirSync(dir)
      fs.writeFileSync(path.join(dir, "lock"), String(zombie))
      expect(RunDir.holder(dir)).toBeNull()
      fs.writeFileSync(path.join(dir, "lock"), String(parent.pid))
      expect(RunDir.holder(dir)).toBe(parent.pid)
    } finally {
      parent.kill("SIGKILL")
    }
  })
})
