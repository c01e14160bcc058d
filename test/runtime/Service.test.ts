/**
 * Online runs end to end with real processes: a server in this process (127.0.0.1, a free port,
 * an in-memory store, ingests it can hold back), training processes running
 * test/fixtures/onlineRun.mjs against it, and the upload service they share (the first starts it,
 * the next find it listening). The oracle is the journal on disk: what the server holds must be
 * exactly the history the journal holds, row for row, whatever was killed on the way.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { killChildren, type Child } from "../support/child.js"
import { poll } from "../support/poll.js"
import { alive, journalRows, serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"
import { useTestServer } from "../support/testServer.js"

const temp = useTempDir("service")
/** The training processes' config folder (their credentials file), one for the file: they share one service. */
let configDir: string | undefined
const config = () => (configDir ??= temp.file("xdg"))
const server = useTestServer(config)

const services = serviceTracker()

afterEach(async () => {
  await killChildren()
  services.killAll()
})

/** Where a training fixture uploads, working in `workDir`. */
const target = (workDir = temp.dir()) => ({ baseUrl: server.baseUrl, key: server.key, config: config(), workDir })
/** Starts the training fixture online against the test server, in a folder of its own. */
const train = (env: { readonly [key: string]: string }): Child => trainOnline(target(), env)
/** Whether the server has the run yet. */
const onServer = async (runId: string) => (await fetch(`${server.baseUrl}/api/v1/projects/svc/runs/${runId}`, { headers: { authorization: `Bearer ${server.key}` } })).status === 200

const started = startedRun

const servicePids = services.pids

const get = async (url: string) => {
  const response = await fetch(`${server.baseUrl}${url}`, { headers: { authorization: `Bearer ${server.key}` } })
  expect(response.status).toBe(200)
  return response.json()
}

const serverRows = async (runId: string): Promise<Array<{ step: number; values: unknown }>> => {
  const history = (await get(`/api/v1/projects/svc/runs/${runId}/history`)) as { rows: Array<{ step: number; values: unknown }> }
  return history.rows.map(({ step, values }) => ({ step, values }))
}

describe("an online run", () => {
  it("reaches the server row for row, and finish() reports every record uploaded", async () => {
    const child = train({ ROWS: "500", PER_TICK: "500" })
    const { runId, runDir } = await started(child)
    const line = await child.waitForLine((l) => l.startsWith("finished "))
    const result = JSON.parse(line.slice("finished ".length))
    const expected = Array.from({ length: 500 }, (_, i) => ({ step: i, values: { i, loss: 1 / (i + 1) } }))
    // run + 500 rows + summary + exit
    expect(result).toEqual({ uploaded: true, records: 503, written: 503, dropped: 0 })
    expect(journalRows(runDir).rows).toEqual(expected)
    expect(await serverRows(runId)).toEqual(expected)
    const detail = (await get(`/api/v1/projects/svc/runs/${runId}`)) as { state: string; records: number; exitCode: number }
    expect(detail).toMatchObject({ state: "finished", records: 503, exitCode: 0 })
    expect((await child.exited()).code).toBe(0)
    // With its parent gone and everything uploaded, the service ends by itself.
    const [pid] = servicePids(runDir)
    expect(pid).toBeDefined()
    await poll("the service to exit", () => (alive(pid!) ? undefined : true))
  })
})

describe("SIGKILL of the training process", () => {
  it("uploads every record flushed before the kill exactly once, marks the run crashed, and the service exits", async () => {
    const child = train({ ROWS: "0", PER_TICK: "20", TICK_MS: "2" })
    const { runId, runDir } = await started(child)
    await child.waitForLine((l) => l.startsWith("logged ") && Number(l.split(" ")[1]) >= 1500)
    const pid = await poll("the service to start", () => servicePids(runDir)[0])
    child.process.kill("SIGKILL")
    await child.exited()
    await poll("the service to exit", () => (alive(pid) ? undefined : true))
    const { rows } = journalRows(runDir)
    expect(rows.length).toBeGreaterThan(0)
    expect(await serverRows(runId)).toEqual(rows)
    const detail = (await get(`/api/v1/projects/svc/runs/${runId}`)) as { state: string; historyRows: number }
    expect(detail).toMatchObject({ state: "crashed", historyRows: rows.length })
  })
})

describe("SIGKILL of the service process", () => {
  it("three times during a run: every record arrives exactly once and finish() reports uploaded", async () => {
    const ROWS = 3000
    const child = train({ ROWS: String(ROWS), PER_TICK: "10", TICK_MS: "5" })
    const { runId, runDir } = await started(child)
    for (let kill = 0; kill < 3; kill++) {
      const pid = await poll(`service number ${kill + 1}`, () => servicePids(runDir)[kill])
      // Let it upload a little before it dies.
      await poll("an upload to begin", () => (fs.existsSync(path.join(runDir, "upload.cursor")) ? true : undefined))
      process.kill(pid, "SIGKILL")
    }
    const line = await child.waitForLine((l) => l.startsWith("finished "), 60_000)
    expect(JSON.parse(line.slice("finished ".length))).toEqual({ uploaded: true, records: ROWS + 3, written: ROWS + 3, dropped: 0 })
    expect(servicePids(runDir).length).toBeGreaterThanOrEqual(4)
    const expected = Array.from({ length: ROWS }, (_, i) => ({ step: i, values: { i, loss: 1 / (i + 1) } }))
    expect(await serverRows(runId)).toEqual(expected)
    expect((await child.exited()).code).toBe(0)
  })
})

describe("two training processes at once", () => {
  it("share one upload service; SIGKILL of one: its run is uploaded and marked crashed, the other's upload goes on, and the service exits after both", async () => {
    const first = train({ ROWS: "0", PER_TICK: "10", TICK_MS: "5" })
    const one = await started(first)
    const pid = await poll("the first process to start the service", () => servicePids(one.runDir)[0])
    await poll("the first run to reach the server", async () => ((await onServer(one.runId)) ? true : undefined))
    const second = train({ ROWS: "3000", PER_TICK: "10", TICK_MS: "2" })
    const two = await started(second)
    await poll("the second process to find the service", () => (servicePids(two.runDir).length > 0 ? true : undefined))
    expect(servicePids(two.runDir)).toEqual([pid])
    expect(fs.readFileSync(path.join(two.runDir, "debug.log"), "utf8")).toContain(`upload service ${pid} takes this run`)

    await second.waitForLine((l) => l.startsWith("logged ") && Number(l.split(" ")[1]) >= 500)
    first.process.kill("SIGKILL")
    await first.exited()
    const result = JSON.parse((await second.waitForLine((l) => l.startsWith("finished "), 60_000)).slice("finished ".length))
    expect(result).toEqual({ uploaded: true, records: 3003, written: 3003, dropped: 0 })
    expect((await second.exited()).code).toBe(0)
    await poll("the service to exit", () => (alive(pid) ? undefined : true))

    const killed = journalRows(one.runDir).rows
    expect(await serverRows(one.runId)).toEqual(killed)
    expect(await get(`/api/v1/projects/svc/runs/${one.runId}`)).toMatchObject({ state: "crashed", historyRows: killed.length })
    expect(await serverRows(two.runId)).toEqual(journalRows(two.runDir).rows)
    expect(await get(`/api/v1/projects/svc/runs/${two.runId}`)).toMatchObject({ state: "finished", historyRows: 3000 })
  })
})

describe("a run resumed by a new process after SIGKILL, while its upload still runs", () => {
  it("is uploaded whole: the killed process's rows and the new one's, each once, and finish() reports it", async () => {
    const both = target()
    // A short upload deadline: the killed process's upload would be given up on while the new
    // process still logs, were the new process's run still that upload.
    const run = { STEPLOG_RUN_ID: "resumed-after-kill", STEPLOG_UPLOAD_DEADLINE_MS: "1500" }
    const first = trainOnline(both, { ...run, ROWS: "0", PER_TICK: "10", TICK_MS: "5" })
    const { runId, runDir } = await started(first)
    await poll("the run to reach the server", async () => ((await onServer(runId)) ? true : undefined))
    // The server holds the uploads back: the killed process's run is still uploading when the new process opens it.
    server.ingestGate.close()
    await first.waitForLine((l) => l.startsWith("logged ") && Number(l.split(" ")[1]) >= 300)
    await poll("an upload to be held", () => (server.ingestGate.waiting() > 0 ? true : undefined))
    first.process.kill("SIGKILL")
    await first.exited()

    const killedAt = Date.now()
    const second = trainOnline(both, { ...run, STEPLOG_RESUME: "allow", ROWS: "500", PER_TICK: "50", TICK_MS: "5" })
    expect((await started(second)).runDir).toBe(runDir)
    await second.waitForLine((l) => l.startsWith("logged 500 "))
    await poll("the killed process's upload deadline to pass", () => (Date.now() - killedAt > 2500 ? true : undefined))
    server.ingestGate.open()
    const result = JSON.parse((await second.waitForLine((l) => l.startsWith("finished "), 60_000)).slice("finished ".length))
    expect(result).toMatchObject({ uploaded: true })
    expect((await second.exited()).code).toBe(0)
    const { rows } = journalRows(runDir)
    expect(rows.length).toBeGreaterThan(800)
    expect(await serverRows(runId)).toEqual(rows)
    expect(await get(`/api/v1/projects/svc/runs/${runId}`)).toMatchObject({ state: "finished", historyRows: rows.length })
  })
})

describe("a run deleted on the server while it trains", () => {
  it("stops uploading with one warning, goes on logging to disk, never comes back on the server, and finish() says why", async () => {
    const stopFile = temp.file("stop")
    const child = train({ ROWS: "0", PER_TICK: "10", TICK_MS: "5", STOP_FILE: stopFile })
    const { runId, runDir } = await started(child)
    const runUrl = `${server.baseUrl}/api/v1/projects/svc/runs/${runId}`
    const headers = { authorization: `Bearer ${server.key}` }
    const held = async () => {
      const response = await fetch(runUrl, { headers })
      return response.status === 200 && ((await response.json()) as { records: number }).records > 0 ? true : undefined
    }
    await poll("records of the run to reach the server", held)
    expect((await fetch(runUrl, { method: "DELETE", headers })).status).toBe(200)

    await poll("the warning", () => (child.stderr().includes("was deleted on the server") ? true : undefined))
    const loggedThen = Number(child.lines.filter((l) => l.startsWith("logged ")).at(-1)!.split(" ")[1])
    await child.waitForLine((l) => l.startsWith("logged ") && Number(l.split(" ")[1]) >= loggedThen + 200)
    fs.writeFileSync(stopFile, "")
    const result = JSON.parse((await child.waitForLine((l) => l.startsWith("finished "))).slice("finished ".length))
    expect(result.uploaded).toBe(false)
    expect(result.hint).toMatch(/^the run was deleted on the server \(.*run_deleted.*\); the run is on disk in \S+$/)
    // What the server acknowledged before the delete is not pending: the upload cursor says how far it got.
    const cursor = JSON.parse(fs.readFileSync(path.join(runDir, "upload.cursor"), "utf8")) as { ackSeq: number }
    expect(cursor.ackSeq).toBeGreaterThan(0)
    expect(result.pending).toBe(result.records - cursor.ackSeq)
    expect(child.stderr().match(/was deleted on the server/g)).toHaveLength(1)
    expect(child.stderr()).toContain(`run ${runId} was deleted on the server, so its upload stopped`)
    expect((await child.exited()).code).toBe(0)
    // Logging went on to disk; the server holds nothing of the run, then or later.
    expect(journalRows(runDir).rows.length).toBeGreaterThan(loggedThen)
    expect((await fetch(runUrl, { headers })).status).toBe(404)
  })
})
