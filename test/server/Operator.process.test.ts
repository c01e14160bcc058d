/**
 * What an operator sees of a `steplog server` process: an access log line for each request at the
 * level `--log-level` sets, with no key or token in it; and, when the store's disk fills up, one
 * line per refused write (no stack trace), a 507 that the uploading run retries, and every row
 * stored once space returns. The disk is a real small tmpfs (support/tmpfs.ts: root only).
 */
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { storedKey } from "../../src/actors/Credentials.js"
import { killChildren } from "../support/child.js"
import { poll } from "../support/poll.js"
import { startServerProcess } from "../support/serverProcess.js"
import { startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"
import { resize, tmpfs, tmpfsUnavailable } from "../support/tmpfs.js"

const temp = useTempDir("server-operator")
afterEach(killChildren)

/** A fresh server process on SQLite in `data`; `config` holds the key its first start stored. */
const freshServer = async (data: string, args: ReadonlyArray<string> = []) => {
  const config = temp.file("config")
  const server = await startServerProcess(["--port", "0", "--data", data, ...args], { XDG_CONFIG_HOME: config }, temp.dir())
  return { ...server, config, key: storedKey(server.baseUrl, { XDG_CONFIG_HOME: config }) ?? "" }
}

/** An access log line: method, path, status, ms, bytes in and out. */
const ACCESS = /^\[[0-9:.]+\] INFO \(#\d+\): (GET|POST|PUT) (\S+) (\d{3}) \d+\.\d ms [\d,]+ B in [\d,]+ B out$/

describe("the access log", () => {
  it("has one line per request at info (the default), without the query, a key or a token; --log-level warn prints none", async () => {
    const server = await freshServer(temp.file("data"))
    const token = new URL(await server.child.waitForLine((line) => line.includes("dashboard at ")).then((line) => line.split(" ").at(-1)!)).searchParams.get("token")!
    const bearer = { authorization: `Bearer ${server.key}` }
    expect((await fetch(`${server.baseUrl}/api/v1/projects/ops/runs`, { headers: bearer })).status).toBe(200)
    expect((await fetch(`${server.baseUrl}/api/v1/projects/ops/runs/nope`, { headers: bearer })).status).toBe(404)
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200)
    // A sign-in link as a browser opens it (answered with a redirect).
    const page = (await fetch(`${server.baseUrl}/?token=${token}`, { redirect: "manual" })).status

    const lines = await poll("four access lines", () => {
      const access = server.child.lines.filter((line) => ACCESS.test(line))
      return access.length >= 4 ? access : undefined
    })
    expect(lines.map((line) => ACCESS.exec(line)!.slice(1, 4))).toEqual([
      ["GET", "/api/v1/projects/ops/runs", "200"],
      ["GET", "/api/v1/projects/ops/runs/nope", "404"],
      ["GET", "/healthz", "200"],
      ["GET", "/", String(page)]
    ])
    // The start-up sign-in link carries a token by design; no line after it may.
    const afterStart = server.child.lines.slice(server.child.lines.findIndex((line) => line.includes("dashboard at ")) + 1).join("\n") + server.child.stderr()
    expect(afterStart).not.toContain(server.key)
    expect(afterStart).not.toContain(token)

    const quiet = await freshServer(temp.file("quiet"), ["--log-level", "warn"])
    expect((await fetch(`${quiet.baseUrl}/api/v1/projects/ops/runs`, { headers: { authorization: `Bearer ${quiet.key}` } })).status).toBe(200)
    quiet.child.process.kill("SIGTERM")
    await quiet.child.exited()
    expect(quiet.child.lines.filter((line) => line.includes(" INFO "))).toEqual([])
  })
})

const unavailable = tmpfsUnavailable("test/server/Operator.process.test.ts")

describe.skipIf(unavailable !== undefined)("a server whose disk fills up", () => {
  it("refuses each write with 507 and one log line, no stack trace; the run retries, and every row is stored once space returns", async () => {
    const disk = Either.getOrThrow(tmpfs(4))
    const server = await freshServer(path.join(disk, "server"))
    const rows = 300_000
    const run = trainOnline({ baseUrl: server.baseUrl, key: server.key, config: server.config, workDir: fs.mkdirSync(temp.file("trainer"), { recursive: true })! }, {
      ROWS: String(rows),
      PER_TICK: "1000",
      STEPLOG_PROJECT: "full"
    })
    const { runId } = await startedRun(run)
    const refused = await server.child.waitForLine((line) => line.includes("(SQLITE_FULL); answered 507"), 60_000)
    expect(refused).toMatch(/^\[[0-9:.]+\] WARN \(#\d+\): steplog server: storage failed during ingest: .*database or disk is full \(SQLITE_FULL\); answered 507, nothing was stored/)
    await server.child.waitForLine((line) => / POST \S+\/records 507 /.test(line))

    resize(disk, 64)
    const finished = JSON.parse((await run.waitForLine((line) => line.startsWith("finished "), 60_000)).slice("finished ".length))
    expect(finished).toMatchObject({ uploaded: true, records: rows + 3, dropped: 0 })
    const detail = await (await fetch(`${server.baseUrl}/api/v1/projects/full/runs/${runId}`, { headers: { authorization: `Bearer ${server.key}` } })).json()
    expect(detail).toMatchObject({ records: rows + 3, historyRows: rows, state: "finished" })

    const printed = (server.child.stdout() + server.child.stderr()).split("\n")
    expect(printed.filter((line) => /^\s+at /.test(line))).toEqual([])
    expect(printed.filter((line) => / (ERROR|FATAL) /.test(line) || line.includes("defect"))).toEqual([])
  })
})
