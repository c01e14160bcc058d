/**
 * The dashboard's run page for a run of a million steps and 20 metrics, against a `steplog server`
 * on SQLite in a process of its own, opened in headless Chromium (signed in): the time from the
 * start of navigation until all 20 charts have drawn (every chart has `data-points`), median of
 * LOADS page loads (after a warm-up, taken in turn with the baseline's); and, over HTTP, one
 * metric's history read with samples=1000 (median of 20), what each chart asks for. The baseline,
 * in the same run and server: the same page for a run of 1,000 steps. Target: under 1 s, a million
 * steps drawn about as fast as a thousand. Writing the runs into the server's database (through its
 * store, before the server starts) is not counted, and neither is starting Chromium.
 */
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as fs from "node:fs"
import * as path from "node:path"
import type { HistoryRecord, Record, RunId } from "../src/schemas/Record.js"
import type { ProjectName } from "../src/schemas/Wire.js"
import { RecordStore } from "../src/server/store/RecordStore.js"
import * as Server from "../src/server/Server.js"
import * as SqliteStore from "../src/server/store/sqlite/SqliteStore.js"
import { launchChromium, viewport } from "../test/support/chromium.js"
import { quantile, report, startServerProcess, tempDir } from "./fixtures.js"

const STEPS = Number(process.env["DASHBOARD_STEPS"] ?? 1_000_000)
const BASELINE_STEPS = 1_000
const METRICS = 20
const LOADS = 7
const READS = 20
const BATCH = 2_000
const project = "bench" as ProjectName
const startedAt = 1_764_000_000_000

const metrics = Array.from({ length: METRICS }, (_, i) => `${["train", "val", "opt", "sys"][i % 4]}/metric_${String(i).padStart(2, "0")}`)

const dir = tempDir("dashboard")
const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, "config") }

/** Writes a finished run of `steps` steps of every metric into the store, as its upload would have. */
const seed = async (runtime: ManagedRuntime.ManagedRuntime<RecordStore, unknown>, runId: RunId, steps: number) => {
  const store = await runtime.runPromise(RecordStore)
  const runRecord: Record = {
    kind: "run", seq: 0, ts: startedAt, runId, project, name: runId, config: { lr: 0.001, batch: 64 }, tags: ["bench"], notes: null,
    group: null, jobType: null, host: "bench", pid: 1, argv: [], gitCommit: null, sdkVersion: "0.1.0", resumed: false
  }
  await runtime.runPromise(store.ingest(project, runId, [runRecord]))
  for (let from = 0; from < steps; from += BATCH) {
    const batch: Array<HistoryRecord> = []
    for (let step = from; step < Math.min(steps, from + BATCH); step++) {
      const values: { [key: string]: number } = {}
      for (const metric of metrics) values[metric] = Math.random()
      batch.push({ kind: "history", seq: step + 1, ts: startedAt + step, step, values })
    }
    await runtime.runPromise(store.ingest(project, runId, batch))
  }
  const exit: Record = { kind: "exit", seq: steps + 1, ts: startedAt + steps, exitCode: 0, signal: null, durationMs: steps }
  await runtime.runPromise(store.ingest(project, runId, [exit]))
}

const runs = [
  { runId: "million-steps" as RunId, steps: STEPS },
  { runId: "thousand-steps" as RunId, steps: BASELINE_STEPS }
]
const dataDir = path.join(dir, "server")
fs.mkdirSync(dataDir, { recursive: true })
const seeding = ManagedRuntime.make(SqliteStore.layer({ filename: Server.databasePath(dataDir) }))
for (const run of runs) await seed(seeding, run.runId, run.steps)
await seeding.dispose()

const server = await startServerProcess(dir, env)
const browser = await launchChromium()
const context = await browser.newContext({ viewport })
const signIn = await context.request.post(`${server.baseUrl}/auth/session`, { data: { key: server.apiKey } })
if (signIn.status() !== 204) throw new Error(`signing in answered ${signIn.status()}`)
const page = await context.newPage()
// In the page, before its own scripts: notes the time (ms since navigation start) when the page
// first shows METRICS charts that have all drawn.
await page.addInitScript(`{
  const observer = new MutationObserver(() => {
    const charts = document.querySelectorAll("[data-testid=chart]")
    if (charts.length >= ${METRICS} && [...charts].every((chart) => chart.hasAttribute("data-points"))) {
      window.__chartsDrawn = performance.now()
      observer.disconnect()
    }
  })
  observer.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-points"] })
}`)

/** One load of the run's page: ms until every chart drew, and its history requests (count, slowest ms). */
const load = async (runId: string) => {
  await page.goto(`${server.baseUrl}/projects/${project}/runs/${runId}`, { waitUntil: "commit" })
  // Functions, not strings: the page's CSP allows no eval.
  await page.waitForFunction(() => (globalThis as { __chartsDrawn?: number }).__chartsDrawn !== undefined, null, { timeout: 60_000 })
  return page.evaluate(() => ({
    drawn: (globalThis as { __chartsDrawn?: number }).__chartsDrawn!,
    reads: performance.getEntriesByType("resource").filter((entry) => entry.name.includes("/history")).map((entry) => entry.duration)
  }))
}

/** One metric with samples=1000 over HTTP, as a chart asks for it: median ms of READS. */
const readOneMetric = async (runId: string) => {
  const url = `${server.baseUrl}/api/v1/projects/${project}/runs/${runId}/history?keys=${encodeURIComponent(metrics[0]!)}&samples=1000`
  const times: Array<number> = []
  for (let i = 0; i < READS; i++) {
    const start = performance.now()
    const response = await fetch(url, { headers: { authorization: `Bearer ${server.apiKey}` } })
    await response.arrayBuffer()
    times.push(performance.now() - start)
  }
  return quantile(times.sort((a, b) => a - b), 0.5)
}

// One warm-up load of each page, then the two pages in turn, so that both see the same machine.
const loads = runs.map(() => [] as Array<{ drawn: number; reads: Array<number> }>)
for (const run of runs) await load(run.runId)
for (let i = 0; i < LOADS; i++) for (const [r, run] of runs.entries()) loads[r]!.push(await load(run.runId))

const ms = (x: number) => x.toFixed(1)
const rows = []
for (const [r, run] of runs.entries()) {
  const drawn = loads[r]!.map((l) => l.drawn).sort((a, b) => a - b)
  const slowestRead = loads[r]!.map((l) => Math.max(...l.reads)).sort((a, b) => a - b)
  rows.push({
    run: `${run.steps.toLocaleString("en")} steps${run.steps === BASELINE_STEPS ? " (baseline)" : ""}`,
    charts: METRICS,
    "history requests": loads[r]![0]!.reads.length,
    "all charts drawn, median ms": ms(quantile(drawn, 0.5)),
    "slowest load ms": ms(drawn.at(-1)!),
    "slowest history request, median ms": ms(quantile(slowestRead, 0.5)),
    "one metric samples=1000 over HTTP, median ms": ms(await readOneMetric(run.runId))
  })
}
await browser.close()
server.stop()

report(
  `dashboard: a run page with ${METRICS} charts in headless Chromium, navigation start → every chart drawn, median of ${LOADS} loads (target < 1 s)`,
  rows
)
