/**
 * `steplog login`, `steplog runs` (and `runs delete`) and `steplog export` against a real server on 127.0.0.1 (in this process, over
 * an in-memory store), run as the built CLI, as a person would.
 */
import { Packr } from "msgpackr"
import * as fs from "node:fs"
import * as zlib from "node:zlib"
import { beforeAll, describe, expect, it } from "vitest"
import { credentialsPath, storedKey } from "../../src/actors/Credentials.js"
import { HISTORY_PAGE_ROWS, MAX_BATCH_RECORDS } from "../../src/schemas/Limits.js"
import type { HistoryRecord, Record, UploadRecord } from "../../src/schemas/Record.js"
import { blockOf } from "../support/historyBlock.js"
import { useTempDir } from "../support/tempDir.js"
import { steplogCli, useTestServer } from "../support/testServer.js"

const temp = useTempDir("runs-export")
const server = useTestServer(temp.dir)

/** The built CLI, with the test server's key. */
const steplog = (args: ReadonlyArray<string>, env: { readonly [name: string]: string } = {}) =>
  steplogCli(args, { STEPLOG_API_KEY: server.key, ...env })

const runRecord = (runId: string, name: string, ts: number): Record => ({
  kind: "run", seq: 0, ts, runId: runId as never, project: "moons", name, config: { lr: 0.3 }, tags: ["mlp"],
  notes: null, group: null, jobType: null, host: "test-host", pid: 1, argv: [], gitCommit: null, sdkVersion: "0.1.0", resumed: false
})

const post = async (runId: string, records: ReadonlyArray<UploadRecord>) => {
  const response = await fetch(`${server.baseUrl}/api/v1/projects/moons/runs/${runId}/records`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.key}`, "content-encoding": "gzip", "content-type": "application/msgpack" },
    body: zlib.gzipSync(new Packr({ useRecords: true }).pack(records))
  })
  expect(response.status).toBe(200)
}

beforeAll(async () => {
  await post("run-a", [
    runRecord("run-a", "brisk-comet-1", 1_764_000_000_000),
    { kind: "history", seq: 1, ts: 1_764_000_001_000, step: 0, values: { loss: 0.5, note: "a, \"quoted\" text" } },
    { kind: "history", seq: 2, ts: 1_764_000_002_000, step: 1, values: { loss: 0.25, acc: 0.9 } },
    { kind: "summary", seq: 3, ts: 1_764_000_003_000, patch: { loss: 0.25, acc: 0.9 } },
    { kind: "exit", seq: 4, ts: 1_764_000_003_000, exitCode: 0, signal: null, durationMs: 3000 }
  ])
  await post("run-b", [runRecord("run-b", "calm-river-2", 1_764_000_100_000)])
})


describe("steplog runs", () => {
  it("lists every run newest first, with state, steps and summary", async () => {
    const { status, stdout } = await steplog(["runs", "--base-url", server.baseUrl])
    expect(status).toBe(0)
    const lines = stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^PROJECT\s+RUN\s+NAME\s+STATE\s+STEPS/)
    expect(lines[1]).toMatch(/^moons\s+run-b\s+calm-river-2\s+running\s+0/)
    expect(lines[2]).toMatch(/^moons\s+run-a\s+brisk-comet-1\s+finished\s+2\s+.*\bloss=0\.25\b/)
  })

  it("prints one JSON line a run with --json", async () => {
    const { status, stdout } = await steplog(["runs", "--project", "moons", "--json", "--base-url", server.baseUrl])
    expect(status).toBe(0)
    const runs = stdout.trim().split("\n").map((line) => JSON.parse(line))
    expect(runs.map((run) => [run.runId, run.state, run.historyRows])).toEqual([["run-b", "running", 0], ["run-a", "finished", 2]])
  })

  it("keeps, orders and cuts runs on the server with --filter, --sort and --limit", async () => {
    const listed = async (...args: Array<string>) => {
      const { status, stdout, stderr } = await steplog(["runs", "--project", "moons", "--json", "--base-url", server.baseUrl, ...args])
      expect(status, stderr).toBe(0)
      return stdout.trim() === "" ? [] : stdout.trim().split("\n").map((line) => (JSON.parse(line) as { runId: string }).runId)
    }
    expect(await listed("--filter", "state = finished and summary.loss < 0.3")).toEqual(["run-a"])
    expect(await listed("--filter", "config.lr > 1")).toEqual([])
    expect(await listed("--sort", "startedAt", "--limit", "1")).toEqual(["run-a"])
    expect(await listed("--sort", "-startedAt")).toEqual(["run-b", "run-a"])

    const badFilter = await steplog(["runs", "--project", "moons", "--filter", "config.lr <<", "--base-url", server.baseUrl])
    expect(badFilter.status).toBe(2)
    expect(badFilter.stdout + badFilter.stderr).toMatch(/a filter that parses: a value .* at character 12/)
    const noProject = await steplog(["runs", "--sort", "name", "--base-url", server.baseUrl])
    expect([noProject.status, noProject.stderr.trim()]).toEqual([2, "steplog runs: --sort and --limit order and cut one project's runs: pass --project too"])
  })

  it("says how to reach a server when none answers, with exit status 2", async () => {
    const { status, stderr } = await steplog(["runs", "--base-url", "http://127.0.0.1:1"])
    expect(status).toBe(2)
    expect(stderr).toMatch(/no steplog server answers at http:\/\/127\.0\.0\.1:1.*steplog server/)
  })

  it("says the key was refused, with exit status 2", async () => {
    const { status, stderr } = await steplog(["runs", "--base-url", server.baseUrl], { STEPLOG_API_KEY: "slk_wrong" })
    expect(status).toBe(2)
    expect(stderr).toMatch(/refused the API key.*steplog login/)
  })
})

describe("steplog runs delete", () => {
  it("deletes nothing without --yes when stdin is not a terminal, then deletes with --yes; a second delete says it is gone", async () => {
    await post("run-doomed", [runRecord("run-doomed", "short-lived-3", 1_764_000_200_000)])
    const asked = await steplog(["runs", "delete", "moons/run-doomed", "--base-url", server.baseUrl])
    expect(asked.status).toBe(2)
    expect(asked.stderr).toContain("moons/run-doomed was not deleted: stdin is not a terminal to ask on; pass --yes")
    expect((await steplog(["runs", "--project", "moons", "--json", "--base-url", server.baseUrl])).stdout).toContain("run-doomed")

    const deleted = await steplog(["runs", "delete", "moons/run-doomed", "--yes", "--base-url", server.baseUrl])
    expect([deleted.status, deleted.stdout.trim()]).toEqual([0, `deleted moons/run-doomed ("short-lived-3"): 1 records, 0 of them history rows`])
    expect((await steplog(["runs", "--project", "moons", "--json", "--base-url", server.baseUrl])).stdout).not.toContain("run-doomed")
    const again = await steplog(["runs", "delete", "moons/run-doomed", "--yes", "--base-url", server.baseUrl])
    expect(again.status).toBe(2)
    expect(again.stderr).toMatch(/HTTP 404: not_found: no run "run-doomed"/)
  })
})

describe("steplog export", () => {
  it("prints a run's history as JSON lines in step order", async () => {
    const { status, stdout } = await steplog(["export", "moons/run-a", "--base-url", server.baseUrl])
    expect(status).toBe(0)
    const rows = stdout.trim().split("\n").map((line) => JSON.parse(line))
    expect(rows).toEqual([
      { step: 0, ts: 1_764_000_001_000, values: { loss: 0.5, note: "a, \"quoted\" text" } },
      { step: 1, ts: 1_764_000_002_000, values: { loss: 0.25, acc: 0.9 } }
    ])
  })

  it("prints CSV with a column per key of the run (sorted), quoting text that needs it", async () => {
    const { status, stdout } = await steplog(["export", "moons/run-a", "--format", "csv", "--base-url", server.baseUrl])
    expect(status).toBe(0)
    expect(stdout.trim().split("\n")).toEqual([
      "step,ts,acc,loss,note",
      `0,1764000001000,,0.5,"a, ""quoted"" text"`,
      "1,1764000002000,0.9,0.25,"
    ])
  })

  it("prints CSV with the columns --keys names, in that order", async () => {
    const { status, stdout } = await steplog(["export", "moons/run-a", "--format", "csv", "--keys", "note,loss", "--base-url", server.baseUrl])
    expect(status).toBe(0)
    expect(stdout.trim().split("\n")).toEqual(["step,ts,note,loss", `0,1764000001000,"a, ""quoted"" text",0.5`, "1,1764000002000,,0.25"])
  })

  it("prints a run longer than one page of history whole, page after page", async () => {
    const ROWS = HISTORY_PAGE_ROWS * 2 + 17
    const rows = Array.from({ length: ROWS }, (_, i): HistoryRecord => ({ kind: "history", seq: 1 + i, ts: 1_764_000_000_000 + i, step: i, values: { loss: 1 / (i + 1) } }))
    await post("run-long", [runRecord("run-long", "long-road-3", 1_764_000_200_000)])
    // In blocks under the server's cap on the records (a block's rows) of one batch.
    for (let from = 0; from < ROWS; from += MAX_BATCH_RECORDS) await post("run-long", [blockOf(rows.slice(from, from + MAX_BATCH_RECORDS))])
    const { status, stdout } = await steplog(["export", "moons/run-long", "--base-url", server.baseUrl])
    expect(status).toBe(0)
    const steps = stdout.trim().split("\n").map((line) => (JSON.parse(line) as { step: number }).step)
    expect(steps).toEqual(rows.map((row) => row.step))
  })

  it("refuses a run named without its project, with exit status 2", async () => {
    const { status, stderr } = await steplog(["export", "run-a", "--base-url", server.baseUrl])
    expect(status).toBe(2)
    expect(stderr).toMatch(/PROJECT\/RUN_ID/)
  })
})

describe("steplog login", () => {
  it("checks the key with the server and stores it for that server, readable by the owner only", async () => {
    const config = temp.file("config")
    const { status, stdout } = await steplog(["login", "--base-url", server.baseUrl, server.key], { XDG_CONFIG_HOME: config })
    expect(status).toBe(0)
    expect(stdout).toMatch(/logged in to .* as "local" \(every project\)/)
    const env = { XDG_CONFIG_HOME: config }
    expect(storedKey(server.baseUrl, env)).toBe(server.key)
    expect(fs.statSync(credentialsPath(env)).mode & 0o777).toBe(0o600)
  })

  it("stores nothing when the server refuses the key, with exit status 2", async () => {
    const config = temp.file("config")
    const { status, stderr } = await steplog(["login", "--base-url", server.baseUrl, "slk_not-a-key"], { XDG_CONFIG_HOME: config })
    expect(status).toBe(2)
    expect(stderr).toMatch(/refused the API key/)
    expect(fs.existsSync(credentialsPath({ XDG_CONFIG_HOME: config }))).toBe(false)
  })
})
