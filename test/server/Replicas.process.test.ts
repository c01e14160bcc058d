/**
 * steplog as a team runs it: three `steplog server` processes on one PostgreSQL (the test run's
 * embedded cluster) behind haproxy, round-robin (Debian's package: the tests skip with one line
 * when it is missing, and fail under CI=true). Online runs upload through the balancer while one
 * replica is SIGKILLed and another SIGTERMed and started again: every row arrives exactly once and
 * `finish()` says uploaded. A browser signed in through the balancer stays signed in while every
 * replica, the one that signed it in among them, is restarted.
 */
import * as fs from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { credentialsPath } from "../../src/actors/Credentials.js"
import { useBrowser } from "../support/browser.js"
import { killChildren, type Child } from "../support/child.js"
import { startHaproxy, type Balancer } from "../support/haproxy.js"
import { poll } from "../support/poll.js"
import { freshDatabase } from "../support/postgres.js"
import { startServerProcess, type ServerProcess } from "../support/serverProcess.js"
import { journalRows, serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { systemBinary } from "../support/systemBinary.js"
import { useTempDir } from "../support/tempDir.js"

const haproxy = systemBinary("haproxy", "haproxy")
const temp = useTempDir("replicas")
const services = serviceTracker()
const browser = useBrowser()

const PROJECT = "team"
const ROWS = 30_000

let database = ""
let config = ""
let replicas: Array<ServerProcess> = []
let ports: Array<string> = []
let balancer: Balancer | undefined
let key = ""

/** A replica on `port` (0: any), over the shared database. */
const replica = (port: string) =>
  startServerProcess(["--database", database, "--port", port, "--grace-period", "3"], { XDG_CONFIG_HOME: config }, temp.dir())

/** GET `path` through the balancer with the key, as JSON. */
const get = async <A>(path: string): Promise<A> => {
  const response = await fetch(`${balancer!.url}${path}`, { headers: { authorization: `Bearer ${key}` } })
  expect(response.status, path).toBe(200)
  return (await response.json()) as A
}

/** Stops replica `i` with `signal` and, unless it was killed for good, starts it again on its port. */
const restart = async (i: number, signal: NodeJS.Signals) => {
  replicas[i]!.child.process.kill(signal)
  expect(await replicas[i]!.child.exited(15_000)).toEqual(signal === "SIGKILL" ? { code: null, signal } : { code: 0, signal: null })
  replicas[i] = await replica(ports[i]!)
}

beforeAll(async () => {
  if (haproxy === undefined) return
  database = await freshDatabase("replicas")
  config = temp.file("config")
  replicas = await Promise.all([0, 1, 2].map(() => replica("0")))
  ports = replicas.map((server) => new URL(server.baseUrl).port)
  balancer = await startHaproxy(haproxy, ports.map(Number), temp.dir())
  // One of the three made the "local" key at its first start, and stored it for its own URL.
  key = Object.values((JSON.parse(fs.readFileSync(credentialsPath({ XDG_CONFIG_HOME: config }), "utf8")) as { keys: { [url: string]: string } }).keys)[0]!
})

// The replicas live across the tests; the trainers end by themselves.
afterAll(async () => {
  await killChildren()
  services.killAll()
  await balancer?.stop()
})

describe.skipIf(haproxy === undefined)("three replicas behind haproxy", () => {
  it("take three online runs while one replica is killed and another restarted: every row once, every finish() uploaded", async () => {
    const trainers: Array<Child> = [0, 1, 2].map((n) =>
      trainOnline(
        { baseUrl: balancer!.url, key, config: temp.file(`trainer-config-${n}`), workDir: temp.dir() },
        { STEPLOG_PROJECT: PROJECT, STEPLOG_RUN_NAME: `trainer-${n}`, ROWS: String(ROWS), PER_TICK: "200", TICK_MS: "20", LIFETIME_MS: "120000" }
      )
    )
    const started = await Promise.all(trainers.map(startedRun))
    for (const { runDir } of started) services.pids(runDir)
    await poll("rows of every run on the server", async () => {
      const runs = await Promise.all(started.map(({ runId }) => get<{ historyRows: number }>(`/api/v1/projects/${PROJECT}/runs/${runId}`).catch(() => ({ historyRows: 0 }))))
      return runs.every((run) => run.historyRows > 0) ? true : undefined
    })

    // Mid-upload: one replica dies as a crash kills it, another is stopped as a deploy stops it.
    replicas[0]!.child.process.kill("SIGKILL")
    await restart(1, "SIGTERM")

    for (const [n, trainer] of trainers.entries()) {
      const line = await trainer.waitForLine((text) => text.startsWith("finished "), 90_000)
      const result = JSON.parse(line.slice("finished ".length)) as { uploaded: boolean; records: number }
      const { runId, runDir } = started[n]!
      services.pids(runDir)
      const journal = journalRows(runDir)
      expect(result).toMatchObject({ uploaded: true, records: journal.records })
      expect(await get(`/api/v1/projects/${PROJECT}/runs/${runId}`)).toMatchObject({ state: "finished", records: journal.records, historyRows: ROWS })
      const steps: Array<number> = []
      for (let next: number | null = 0; next !== null;) {
        const page: { rows: Array<{ step: number }>; next: number | null } = await get(`/api/v1/projects/${PROJECT}/runs/${runId}/history?keys=i&minStep=${next}`)
        steps.push(...page.rows.map((row) => row.step))
        next = page.next
      }
      expect(steps).toEqual(Array.from({ length: ROWS }, (_, i) => i))
    }
  }, 180_000)

  it("keep a browser signed in through the balancer while every replica restarts", async () => {
    // The link replica 2 printed: its token lives in the shared store, so any replica redeems it.
    const printed = replicas[2]!.child.lines.find((line) => line.includes("dashboard at "))!
    const link = new URL(printed.slice(printed.indexOf("http")))
    const { page, problems } = await browser.open()
    await page.goto(`${balancer!.url}/${link.search}`)
    await page.locator(`[data-testid=projects-table] tr[data-project=${PROJECT}]`).waitFor()

    for (const i of [0, 1, 2]) {
      if (replicas[i]!.child.process.exitCode === null && replicas[i]!.child.process.signalCode === null) await restart(i, "SIGTERM")
      else replicas[i] = await replica(ports[i]!)
    }
    const again = await page.reload()
    expect(again?.status()).toBe(200)
    await page.locator(`[data-testid=projects-table] tr[data-project=${PROJECT}]`).waitFor()
    expect(problems).toEqual([])
  }, 120_000)
})
