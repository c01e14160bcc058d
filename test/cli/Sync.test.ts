/**
 * `steplog sync`, run as the built CLI, against a real server on 127.0.0.1 (in this process, over
 * an in-memory store whose ingest calls are counted), uploading runs written by the real runtime
 * in offline mode.
 */
import * as Either from "effect/Either"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { init } from "../../src/index.js"
import { readJournal, walk } from "../../src/journal/JournalReader.js"
import { killChildren } from "../support/child.js"
import { poll } from "../support/poll.js"
import { progressFrames } from "../support/progressFrames.js"
import { useTempDir } from "../support/tempDir.js"
import { steplogCli, steplogInTerminal, useTestServer } from "../support/testServer.js"

const temp = useTempDir("sync")
const server = useTestServer(temp.dir)
const otherServer = useTestServer(temp.dir)

afterEach(killChildren)

/** The built CLI, pointed at the test server. */
const steplog = (args: ReadonlyArray<string>, env: { readonly [name: string]: string } = {}) =>
  steplogCli(args, { STEPLOG_API_KEY: server.key, STEPLOG_BASE_URL: server.baseUrl, ...env })

const journalRecords = (runDir: string) => Either.getOrThrow(readJournal(path.join(runDir, "journal.slog"))).records

/** Writes an offline run of `rows` rows with config and summary under `root`. */
const offlineRun = async (root: string, rows: number, options: { readonly finish?: boolean } = {}) => {
  const run = await init({ mode: "offline", dir: root, project: "sync-test", config: { lr: 0.01, optimizer: "adam" }, durability: "sync" })
  for (let i = 0; i < rows; i++) run.log({ loss: 1 / (i + 1), acc: i / rows })
  run.summary.set({ best: 0.97 })
  if (options.finish !== false) await run.finish()
  return run
}

const get = async <A>(url: string): Promise<A> => {
  const response = await fetch(`${server.baseUrl}/api/v1/projects/sync-test/runs/${url}`, { headers: { authorization: `Bearer ${server.key}` } })
  return (await response.json()) as A
}

/** A port nothing listens on: bound, then closed. */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(port))
    })
  })

describe("steplog sync", () => {
  it("uploads an offline run row for row, shows it finished, and a second sync sends nothing", async () => {
    const run = await offlineRun(temp.file("runs"), 300)
    const first = await steplog(["sync", run.dir])
    expect(first.stderr).toBe("")
    expect(first.status).toBe(0)
    const journal = Either.getOrThrow(readJournal(path.join(run.dir, "journal.slog")))
    expect(first.stdout.trim()).toBe(`synced sync-test/${run.id} (${run.name}): ${journal.records.length} records`)
    const rows = await get<{ rows: unknown }>(`${run.id}/history`)
    expect(rows.rows).toEqual(journal.records.flatMap((r) => (r.kind === "history" ? [{ step: r.step, ts: r.ts, values: r.values }] : [])))
    expect(rows.rows).toHaveLength(300)
    expect(await get(run.id)).toMatchObject({ state: "finished", exitCode: 0, summary: { best: 0.97 }, config: { lr: 0.01, optimizer: "adam" } })

    const before = server.ingests
    const second = await steplog(["sync", run.dir])
    expect(second.status).toBe(0)
    expect(second.stdout).toMatch(/: 0 records; all were already on the server/)
    expect(server.ingests).toBe(before)
  })

  it("sends a run synced to one server whole to another: the cursor names the server it counts for", async () => {
    const run = await offlineRun(temp.file("runs"), 120)
    expect((await steplog(["sync", run.dir])).status).toBe(0)
    const before = otherServer.ingests
    const other = await steplog(["sync", run.dir], { STEPLOG_API_KEY: otherServer.key, STEPLOG_BASE_URL: otherServer.baseUrl })
    expect(other.status).toBe(0)
    const records = journalRecords(run.dir).length
    expect(other.stdout.trim()).toBe(`synced sync-test/${run.id} (${run.name}): ${records} records`)
    expect(otherServer.ingests).toBeGreaterThan(before)
    const response = await fetch(`${otherServer.baseUrl}/api/v1/projects/sync-test/runs/${run.id}/history`, {
      headers: { authorization: `Bearer ${otherServer.key}` }
    })
    expect(((await response.json()) as { rows: Array<unknown> }).rows).toHaveLength(120)
  })

  it("skips a corrupt frame in the middle of a journal, uploads the rest, and names the damage in its line", async () => {
    const run = await offlineRun(temp.file("runs"), 60)
    // Durability "sync": one frame a record. Break the frame of row 30.
    const journalPath = path.join(run.dir, "journal.slog")
    const frames = [...walk(journalPath).to(fs.statSync(journalPath).size, true)].flatMap((entry) => (entry._tag === "Frame" ? [entry] : []))
    const broken = frames.find((frame) => frame.records[0]?.kind === "history" && frame.records[0].step === 30)!
    const bytes = fs.readFileSync(journalPath)
    bytes[broken.offset + 12] = bytes[broken.offset + 12]! ^ 0xff
    fs.writeFileSync(journalPath, bytes)
    const result = await steplog(["sync", run.dir])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain(`skipped damage at byte ${broken.offset} of its journal (${broken.end - broken.offset} bytes, corrupt-frame): its records are lost`)
    expect(result.stderr).toContain(`at byte ${broken.offset}`)
    const rows = await get<{ rows: Array<{ step: number }> }>(`${run.id}/history`)
    expect(rows.rows.map((row) => row.step)).toEqual(Array.from({ length: 60 }, (_, i) => i).filter((step) => step !== 30))
    expect(await get(run.id)).toMatchObject({ state: "finished" })
  })

  it("marks a run crashed when its journal has no exit record and its writer is gone", async () => {
    const run = await offlineRun(temp.file("runs"), 40, { finish: false })
    // While this process writes it, sync leaves it alone.
    const live = await steplog(["sync", run.dir])
    expect(live.status).toBe(0)
    expect(live.stdout).toMatch(new RegExp(`skipped .*: process ${process.pid} is writing it`))
    // The same journal in a directory whose lock names a process that is gone.
    const copy = path.join(temp.file("crashed"), path.basename(run.dir))
    fs.mkdirSync(copy, { recursive: true })
    fs.copyFileSync(path.join(run.dir, "journal.slog"), path.join(copy, "journal.slog"))
    fs.writeFileSync(path.join(copy, "lock"), String(spawnSync(process.execPath, ["-e", "0"]).pid))
    const synced = await steplog(["sync", copy])
    expect(synced.status).toBe(0)
    expect(synced.stdout).toMatch(/synced sync-test\/.*: 42 records; marked crashed/)
    expect(await get(run.id)).toMatchObject({ state: "crashed", exitCode: null })
    expect((await get<{ rows: Array<unknown> }>(`${run.id}/history`)).rows).toHaveLength(40)
    await run.finish()
  })

  it("says no server answers, with exit status 2, and a later sync succeeds", async () => {
    const run = await offlineRun(temp.file("runs"), 20)
    const down = await steplog(["sync", run.dir, "--base-url", `http://127.0.0.1:${await closedPort()}`])
    expect(down.status).toBe(2)
    expect(down.stderr).toMatch(/failed .*: no steplog server answers at http:\/\/127\.0\.0\.1:\d+/)
    expect(down.stderr).toMatch(/1 of 1 run could not be synced/)
    const up = await steplog(["sync", run.dir])
    expect(up.status).toBe(0)
    expect(up.stdout).toMatch(/: 2[0-9] records$/m)
    expect((await get<{ rows: Array<unknown> }>(`${run.id}/history`)).rows).toHaveLength(20)
  })

  it("finds every run under --dir with --all", async () => {
    const root = temp.file("all")
    const runs = [await offlineRun(root, 10), await offlineRun(root, 11), await offlineRun(root, 12)]
    const { status, stdout } = await steplog(["sync", "--all", "--dir", root])
    expect(status).toBe(0)
    const lines = stdout.trim().split("\n")
    expect(lines).toHaveLength(3)
    for (const run of runs) {
      expect(lines.some((line) => line.startsWith(`synced sync-test/${run.id} (${run.name}):`))).toBe(true)
    }
    const held = await Promise.all(runs.map((run) => get<{ rows: Array<unknown> }>(`${run.id}/history`)))
    expect(held.map((h) => h.rows.length)).toEqual([10, 11, 12])
  })

  it("asks for run directories or --all when given neither, with exit status 2", async () => {
    const { status, stderr } = await steplog(["sync"])
    expect(status).toBe(2)
    expect(stderr).toMatch(/name the run directories to sync, or pass --all/)
  })

  it("describes itself in --help", async () => {
    const { status, stdout } = await steplog(["sync", "--help"])
    expect(status).toBe(0)
    expect(stdout).toMatch(/--all/)
    expect(stdout).toMatch(/--base-url/)
    expect(stdout).toMatch(/Resumable/)
  })
})

describe("steplog sync's progress bar", () => {
  it("is drawn on a terminal's stderr while a run takes more than a second, then cleared for the run's line", async () => {
    const run = await offlineRun(temp.file("runs"), 300)
    const records = journalRecords(run.dir).length
    server.ingestGate.close()
    const sync = steplogInTerminal(["sync", run.dir], { STEPLOG_API_KEY: server.key, STEPLOG_BASE_URL: server.baseUrl })
    const label = `sync-test/${run.id}`
    // The server acknowledges nothing until the bar is up, which is a second into the run's upload.
    await poll("the progress bar", () => (progressFrames(sync.stdout(), label).length > 0 ? true : undefined))
    server.ingestGate.open()
    expect((await sync.exited()).code).toBe(0)

    const transcript = sync.stdout()
    const frames = progressFrames(transcript, label)
    expect(frames[0]).toMatchObject({ acknowledged: 0, total: records, exact: true })
    for (const [n, frame] of frames.entries()) {
      expect(frame).toMatchObject({ total: records, exact: true })
      expect(frame.acknowledged).toBeGreaterThanOrEqual(frames[n - 1]?.acknowledged ?? 0)
    }
    // The last frame is wiped off its line, and the run's line is written there.
    const afterLast = transcript.slice(frames.at(-1)!.at + 1)
    expect(afterLast).toBe(`${afterLast.slice(0, afterLast.indexOf("\r"))}\r\x1b[2Ksynced ${label} (${run.name}): ${records} records\r\n`)
    expect(sync.lines.filter((line) => line !== "")).toEqual([`synced ${label} (${run.name}): ${records} records`])
  })

  it("is not drawn when stderr is not a terminal, however long the upload takes", async () => {
    const run = await offlineRun(temp.file("runs"), 300)
    server.ingestGate.close()
    const sync = steplog(["sync", run.dir])
    await poll("the upload to be held", () => (server.ingestGate.waiting() > 0 ? true : undefined))
    // What is under test is the wait: the upload is held well past the bar's first second.
    const since = Date.now()
    await poll("the upload to have waited 2.5 s", () => (Date.now() - since >= 2500 ? true : undefined))
    server.ingestGate.open()
    const { status, stdout, stderr } = await sync
    expect(stderr).toBe("")
    expect(status).toBe(0)
    expect(stdout).toBe(`synced sync-test/${run.id} (${run.name}): ${journalRecords(run.dir).length} records\n`)
  })
})
