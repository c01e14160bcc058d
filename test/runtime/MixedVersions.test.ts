/**
 * An SDK meeting an older server, with real processes: the server (in this process, over a SQLite
 * file) stores every kind of record but one, as a server from before that kind would. The run's
 * service keeps those records on disk with one warning, uploads the rest, and `finish()` says what
 * was kept and how to send it; once the server stores the kind (restarted as a newer one on the
 * same file and address), `steplog sync` sends them, and the server holds the whole run.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as fs from "node:fs"
import { afterEach, describe, expect, it } from "vitest"
import { storedKey } from "../../src/actors/Credentials.js"
import type { RecordKind } from "../../src/schemas/Record.js"
import * as Server from "../../src/server/Server.js"
import * as SqliteStore from "../../src/server/store/sqlite/SqliteStore.js"
import { killChildren } from "../support/child.js"
import { freePort } from "../support/freePort.js"
import { serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"
import { steplogCli } from "../support/testServer.js"

const temp = useTempDir("mixed-versions")
const services = serviceTracker()
afterEach(async () => {
  await killChildren()
  services.killAll()
})

/** A server on `port` over the SQLite file `filename`, refusing `refuseKinds`. */
const startServer = async (port: number, filename: string, config: string, refuseKinds: ReadonlyArray<RecordKind>) => {
  const runtime = ManagedRuntime.make(
    Server.layerWith({ port, env: { XDG_CONFIG_HOME: config }, say: () => Effect.void, refuseKinds }).pipe(Layer.provideMerge(SqliteStore.layer({ filename })))
  )
  const { baseUrl } = await runtime.runPromise(Server.ServerInfo)
  return { baseUrl, close: () => runtime.dispose() }
}

describe("a server that does not store a kind of record", () => {
  it("gets the rest of the run; the SDK keeps those on disk with one warning, and sync sends them once the server stores them", async () => {
    const config = temp.file("config")
    const filename = temp.file("steplog.db")
    const port = await freePort()
    const older = await startServer(port, filename, config, ["summary"])
    const key = storedKey(older.baseUrl, { XDG_CONFIG_HOME: config })!
    const get = async (at: string) => (await fetch(`${older.baseUrl}${at}`, { headers: { authorization: `Bearer ${key}` } })).json()

    const who = (await get("/api/v1/whoami")) as { server: { protocol: number; kinds: Array<string>; routes: Array<string> } }
    expect(who.server.protocol).toBe(2)
    expect(who.server.kinds).not.toContain("summary")
    expect(who.server.kinds).toContain("history")
    expect(who.server.routes).toContain("GET /api/v1/projects/:project/runs")
    expect(who.server.routes).toContain("DELETE /api/v1/projects/:project/runs/:runId")

    const ROWS = 300
    const trainer = trainOnline({ baseUrl: older.baseUrl, key, config, workDir: fs.mkdirSync(temp.file("work"), { recursive: true })! }, { ROWS: String(ROWS), PER_TICK: "50" })
    const { runId, runDir } = await startedRun(trainer)
    services.pids(runDir)
    const finished = JSON.parse((await trainer.waitForLine((line) => line.startsWith("finished "))).slice("finished ".length))
    expect(finished).toMatchObject({ uploaded: false, pending: 1, records: ROWS + 3 })
    expect(finished.hint).toBe(`1 records were kept back: the server does not store "summary" records; the run is on disk in ${runDir}: \`steplog sync ${runDir}\` uploads what is left`)
    expect(trainer.stderr().match(/does not store "summary" records/g)).toHaveLength(1)
    const held = (await get(`/api/v1/projects/svc/runs/${runId}`)) as { records: number; historyRows: number; state: string }
    expect(held).toMatchObject({ records: ROWS + 2, historyRows: ROWS, state: "finished" })
    await trainer.exited()

    // The server upgraded: every kind, the same store and address. sync sends what was kept.
    await older.close()
    const newer = await startServer(port, filename, config, [])
    const synced = await steplogCli(["sync", runDir, "--base-url", newer.baseUrl], { STEPLOG_API_KEY: key, XDG_CONFIG_HOME: config })
    expect(synced.status, synced.stderr).toBe(0)
    expect(synced.stdout).toMatch(new RegExp(`^synced svc/${runId} \\(.*\\): \\d+ records?\\n$`))
    const whole = (await (await fetch(`${newer.baseUrl}/api/v1/projects/svc/runs/${runId}`, { headers: { authorization: `Bearer ${key}` } })).json()) as { records: number }
    expect(whole.records).toBe(ROWS + 3)
    const again = await steplogCli(["sync", runDir, "--base-url", newer.baseUrl], { STEPLOG_API_KEY: key, XDG_CONFIG_HOME: config })
    expect(again.stdout).toContain("all were already on the server")
    await newer.close()
  })
})
