/**
 * `steplog server` stopped as a process manager or a rolling deploy stops it: SIGTERM (or SIGINT),
 * with real processes and real signals. Stopping never hangs: a request whose body never comes is
 * cut off at the end of the grace period; a request in flight is answered; the process exits 0.
 * Under a heavy online upload, SIGTERM at random moments, for about a minute, each time followed by
 * a new server on the same port and data: every row arrives exactly once.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { storedKey } from "../../src/actors/Credentials.js"
import { killChildren } from "../support/child.js"
import { poll } from "../support/poll.js"
import { startServerProcess } from "../support/serverProcess.js"
import { journalRows, serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("server-stop")
const services = serviceTracker()
afterEach(async () => {
  await killChildren()
  services.killAll()
})

/** How long the heavy-upload test goes on sending SIGTERMs. */
const ROUNDS_MS = Number(process.env["STOP_ROUNDS_MS"] ?? 60_000)

/** A fresh server on SQLite in its own data dir; `config` holds the key its first start stored. */
const freshServer = async (args: ReadonlyArray<string> = []) => {
  const data = temp.file("data")
  const config = temp.file("config")
  const server = await startServerProcess(["--port", "0", "--data", data, ...args], { XDG_CONFIG_HOME: config }, temp.dir())
  return { ...server, data, config, key: storedKey(server.baseUrl, { XDG_CONFIG_HOME: config }) ?? "" }
}

/** A raw connection to `baseUrl`, for requests a client library would not send (a body that stops). */
const connect = (baseUrl: string) =>
  new Promise<net.Socket>((resolve, reject) => {
    const url = new URL(baseUrl)
    const socket = net.connect(Number(url.port), url.hostname, () => resolve(socket))
    socket.once("error", reject)
  })

/** Resolves with everything read from `socket` once the server has closed it. */
const closedBy = (socket: net.Socket) =>
  new Promise<string>((resolve) => {
    let read = ""
    socket.setEncoding("utf8").on("data", (chunk: string) => (read += chunk))
    socket.once("close", () => resolve(read))
  })

const head = (baseUrl: string, key: string, length: number) =>
  `POST /api/v1/projects/stop/runs/r1/records HTTP/1.1\r\nHost: ${new URL(baseUrl).host}\r\nAuthorization: Bearer ${key}\r\n` +
  `Content-Type: application/msgpack\r\nContent-Length: ${length}\r\n\r\n`

describe("SIGTERM", () => {
  it("cuts off a request whose body never comes at the end of the grace period, and exits 0", async () => {
    const server = await freshServer(["--grace-period", "2"])
    const stalled = await connect(server.baseUrl)
    const closed = closedBy(stalled)
    // A thousand bytes promised, ten sent: the request waits for a body that never comes.
    stalled.write(head(server.baseUrl, server.key, 1000) + "x".repeat(10))
    // An answer on another connection: by then the server has read the stalled request's head.
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200)
    server.child.process.kill("SIGTERM")
    expect(await server.child.exited(15_000)).toEqual({ code: 0, signal: null })
    expect(await closed).not.toMatch(/^HTTP\/1\.1 200/)
    expect(server.child.lines).toContain("steplog server: stopped")
  })

  it("answers a request in flight when the signal comes, with Connection: close, then exits 0", async () => {
    const server = await freshServer(["--grace-period", "10"])
    const socket = await connect(server.baseUrl)
    const answer = closedBy(socket)
    // An empty msgpack array: a valid batch of no records, its one byte sent after the signal.
    socket.write(head(server.baseUrl, server.key, 1))
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200)
    server.child.process.kill("SIGTERM")
    await server.child.waitForLine((line) => line.startsWith("steplog server: stopping"))
    socket.write(Buffer.from([0x90]))
    const text = await answer
    expect(text).toMatch(/^HTTP\/1\.1 200 /)
    expect(text.toLowerCase()).toContain("connection: close")
    expect(text).toContain(`{"ackSeq":0}`)
    expect(await server.child.exited(15_000)).toEqual({ code: 0, signal: null })
  })

  it("at random moments of a heavy upload, for about a minute: each server is gone within its grace, and the run arrives whole, no row twice", async () => {
    let server = await freshServer(["--grace-period", "2"])
    const port = new URL(server.baseUrl).port
    const work = temp.file("work")
    fs.mkdirSync(work)
    const ROWS = 400_000
    const child = trainOnline(
      { baseUrl: server.baseUrl, key: server.key, config: server.config, workDir: work },
      { STEPLOG_PROJECT: "stop", ROWS: String(ROWS), PER_TICK: "2000", TICK_MS: "10", LIFETIME_MS: String(ROUNDS_MS + 120_000) }
    )
    const { runId, runDir } = await startedRun(child)
    services.pids(runDir)
    const started = Date.now()
    let rounds = 0
    while (Date.now() - started < ROUNDS_MS) {
      // Somewhere between a fifth of a second and two seconds into this server's life.
      const at = Date.now() + 200 + Math.random() * 1800
      await poll("the moment to stop the server", () => (Date.now() >= at ? true : undefined))
      server.child.process.kill("SIGTERM")
      expect(await server.child.exited(15_000), `round ${rounds}`).toEqual({ code: 0, signal: null })
      server = { ...server, ...(await startServerProcess(["--port", port, "--data", server.data], { XDG_CONFIG_HOME: server.config }, temp.dir())) }
      rounds++
    }
    const finished = JSON.parse((await child.waitForLine((line) => line.startsWith("finished "), 120_000)).slice("finished ".length)) as { uploaded: boolean; records: number }
    expect(finished).toMatchObject({ uploaded: true })
    services.pids(runDir)

    const journal = journalRows(runDir)
    expect(finished.records).toBe(journal.records)
    const detail = (await (await fetch(`${server.baseUrl}/api/v1/projects/stop/runs/${runId}`, { headers: { authorization: `Bearer ${server.key}` } })).json()) as { records: number; historyRows: number; state: string }
    expect(detail).toMatchObject({ records: journal.records, historyRows: ROWS, state: "finished" })
    // Every step once, read page after page.
    const steps: Array<number> = []
    for (let next: number | null = 0; next !== null;) {
      const page = (await (await fetch(`${server.baseUrl}/api/v1/projects/stop/runs/${runId}/history?keys=i&minStep=${next}`, { headers: { authorization: `Bearer ${server.key}` } })).json()) as { rows: Array<{ step: number; values: { i: number } }>; next: number | null }
      for (const row of page.rows) {
        if (row.values.i !== row.step) throw new Error(`step ${row.step} holds row ${row.values.i}`)
        steps.push(row.step)
      }
      next = page.next
    }
    expect(steps.length).toBe(ROWS)
    expect(steps.every((step, i) => step === i)).toBe(true)
    expect(rounds).toBeGreaterThan(5)
  }, ROUNDS_MS + 240_000)
})

describe("/healthz and /readyz", () => {
  it("answer 200 while the server runs and its store answers", async () => {
    const server = await freshServer()
    for (const route of ["/healthz", "/readyz"]) {
      const response = await fetch(`${server.baseUrl}${route}`)
      expect([route, response.status, response.headers.get("cache-control")]).toEqual([route, 200, "no-store"])
      expect(await response.json()).toMatchObject({ status: "ok" })
    }
    server.child.process.kill("SIGINT")
    expect(await server.child.exited(15_000)).toEqual({ code: 0, signal: null })
    expect(fs.existsSync(path.join(server.data, "steplog.db"))).toBe(true)
  })
})
