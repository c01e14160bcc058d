/**
 * Moving and keeping a server's data, with real processes: `steplog server backup` of a SQLite
 * server while a run uploads to it, and `steplog server migrate` of that server into a real
 * PostgreSQL, after which a server on PostgreSQL answers every read of every run byte for byte as
 * the SQLite server did, takes the same API keys, and still refuses the deleted run. A second
 * migrate copies nothing; one after the SQLite server took more of a run and deleted another copies
 * that run again and removes the other.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { storedKey } from "../../src/actors/Credentials.js"
import { killChildren } from "../support/child.js"
import { poll } from "../support/poll.js"
import { freshDatabase } from "../support/postgres.js"
import { startServerProcess, type ServerProcess } from "../support/serverProcess.js"
import { startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"
import { steplogCli } from "../support/testServer.js"

const temp = useTempDir("server-migrate")
afterEach(killChildren)

/** Every read the API offers of each run, as the server answers it (status and body text). */
const reads = async (server: ServerProcess, key: string, project: string, runIds: ReadonlyArray<string>, listings = true) => {
  const paths = listings ? [`/api/v1/projects`, `/api/v1/projects/${project}/runs`] : []
  for (const runId of runIds) {
    const run = `/api/v1/projects/${project}/runs/${runId}`
    paths.push(run, `${run}/history`, `${run}/history?samples=50`, `${run}/history?keys=loss&minStep=100&maxStep=300`, `${run}/output`)
  }
  const answers: Array<string> = []
  for (const at of paths) {
    const response = await fetch(`${server.baseUrl}${at}`, { headers: { authorization: `Bearer ${key}` } })
    answers.push(`${at} ${response.status} ${await response.text()}`)
  }
  return answers
}

const stop = async (server: ServerProcess) => {
  server.child.process.kill("SIGTERM")
  expect((await server.child.exited()).code).toBe(0)
}

describe("steplog server backup and migrate", () => {
  it("back up a live SQLite server, and copy it into PostgreSQL, which then answers alike", async () => {
    const data = temp.file("data")
    const config = temp.file("config")
    const env = { XDG_CONFIG_HOME: config }
    const sqlite = await startServerProcess(["--port", "0", "--data", data], env, temp.dir())
    const key = storedKey(sqlite.baseUrl, env)!
    const target = { baseUrl: sqlite.baseUrl, key, config, workDir: fs.mkdirSync(temp.file("runs"), { recursive: true })! }
    const runIds: Array<string> = []
    for (let i = 0; i < 3; i++) {
      const trainer = trainOnline(target, { STEPLOG_PROJECT: "moved", ROWS: String(500 * (i + 1)), PER_TICK: "100" })
      runIds.push((await startedRun(trainer)).runId)
      expect(await trainer.waitForLine((line) => line.startsWith("finished "))).toContain(`"uploaded":true`)
    }
    const scoped = (await steplogCli(["keys", "create", "--project", "moved", "--name", "moved-only", "--data", data], env)).stdout.trim()
    expect(scoped).toMatch(/^slk_/)
    const doomed = runIds.pop()!
    expect((await fetch(`${sqlite.baseUrl}/api/v1/projects/moved/runs/${doomed}`, { method: "DELETE", headers: { authorization: `Bearer ${key}` } })).status).toBe(200)

    // A backup while a run uploads: a whole, checked database with the runs done so far.
    const busy = trainOnline(target, { STEPLOG_PROJECT: "busy", ROWS: "0", PER_TICK: "50", TICK_MS: "5", STOP_FILE: temp.file("stop") })
    const busyRun = (await startedRun(busy)).runId
    // The service creates the run on the server after the trainer starts; the backup should hold it.
    await poll("the busy run on the server", async () => {
      const response = await fetch(`${sqlite.baseUrl}/api/v1/projects/busy/runs/${busyRun}`, { headers: { authorization: `Bearer ${key}` } })
      return response.status === 200 ? true : undefined
    })
    const copy = temp.file("backup.db")
    const backedUp = await steplogCli(["server", "backup", copy, "--data", data], env)
    expect(backedUp.status, backedUp.stderr).toBe(0)
    expect(backedUp.stdout).toMatch(/^backed up .*steplog\.db to .*backup\.db: 3 runs, [\d.]+ MB, checked, in [\d.]+ s\n$/)
    const twice = await steplogCli(["server", "backup", copy, "--data", data], env)
    expect([twice.status, twice.stdout + twice.stderr]).toEqual([2, expect.stringMatching(/backup\.db' must not exist/)])
    busy.process.kill("SIGKILL")
    const restored = temp.file("restored")
    fs.mkdirSync(restored)
    fs.copyFileSync(copy, path.join(restored, "steplog.db"))
    const fromBackup = await startServerProcess(["--port", "0", "--data", restored], env, temp.dir())
    // The runs that were done (the busy one has moved on since the copy).
    expect((await reads(fromBackup, key, "moved", runIds, false)).join("\n")).toEqual((await reads(sqlite, key, "moved", runIds, false)).join("\n"))
    await stop(fromBackup)

    // Migrate, then the PostgreSQL server answers as the SQLite one did.
    const before = await reads(sqlite, key, "moved", runIds)
    await stop(sqlite)
    const url = await freshDatabase("migrate")
    // Three runs: the two left of "moved", and the busy one.
    const migrated = await steplogCli(["server", "migrate", "--from", data, "--to", url], env)
    expect(migrated.status, migrated.stderr).toBe(0)
    expect(migrated.stdout).toMatch(/done in [\d.]+ s: 3 runs copied, 0 copied again, 0 already there, 0 removed; 2 keys, \d+ sessions and sign-in tokens, 1 deleted run ids; rows checked: runs 3, records \d+, held \d+/)
    const again = await steplogCli(["server", "migrate", "--from", data, "--to", url], env)
    expect(again.stdout).toMatch(/0 runs copied, 0 copied again, 3 already there, 0 removed; 0 keys/)

    const postgres = await startServerProcess(["--port", "0", "--database", url], env, temp.dir())
    const after = await reads(postgres, key, "moved", runIds)
    expect(after.join("\n")).toEqual(before.join("\n"))
    expect((await fetch(`${postgres.baseUrl}/api/v1/projects/moved/runs`, { headers: { authorization: `Bearer ${scoped}` } })).status).toBe(200)
    const gone = await fetch(`${postgres.baseUrl}/api/v1/projects/moved/runs/${doomed}`, { method: "DELETE", headers: { authorization: `Bearer ${key}` } })
    expect(gone.status).toBe(410)
    await stop(postgres)

    // The SQLite server takes more of one run; migrating again copies that run again, and only it.
    const resumed = await startServerProcess(["--port", "0", "--data", data], env, temp.dir())
    const more = await fetch(`${resumed.baseUrl}/api/v1/projects/moved/runs/${runIds[0]}/records`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/msgpack" },
      // A msgpack array holding one config record: {kind: "config", seq: 10000, ts: 1, patch: {extra: 1}}.
      body: Buffer.from([0x91, 0x84, 0xa4, ...Buffer.from("kind"), 0xa6, ...Buffer.from("config"), 0xa3, ...Buffer.from("seq"), 0xcd, 0x27, 0x10, 0xa2, ...Buffer.from("ts"), 0x01, 0xa5, ...Buffer.from("patch"), 0x81, 0xa5, ...Buffer.from("extra"), 0x01])
    })
    expect(more.status).toBe(200)
    // …and the other one is deleted there: the next migrate removes it from PostgreSQL too.
    const removed = runIds.pop()!
    expect((await fetch(`${resumed.baseUrl}/api/v1/projects/moved/runs/${removed}`, { method: "DELETE", headers: { authorization: `Bearer ${key}` } })).status).toBe(200)
    const updated = await reads(resumed, key, "moved", runIds)
    await stop(resumed)
    const third = await steplogCli(["server", "migrate", "--from", data, "--to", url], env)
    expect(third.stdout).toMatch(new RegExp(`copied run moved/${runIds[0]} again`))
    expect(third.stdout).toMatch(new RegExp(`removed run moved/${removed}: deleted at the source`))
    expect(third.stdout).toMatch(/0 runs copied, 1 copied again, 1 already there, 1 removed/)
    const postgresAgain = await startServerProcess(["--port", "0", "--database", url], env, temp.dir())
    expect((await reads(postgresAgain, key, "moved", runIds)).join("\n")).toEqual(updated.join("\n"))
    expect((await fetch(`${postgresAgain.baseUrl}/api/v1/projects/moved/runs/${removed}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404)
  })
})
