/**
 * The dashboard showing what examples/train.ts logs (TensorFlow.js on handwritten digits), run as
 * its reader runs it, twice with other hyper-parameters, online against a steplog test server on
 * 127.0.0.1, in a real browser (headless Chromium): a run's page (a chart per metric drawing every
 * step, its summary, config and console output), and the two runs picked in the runs table and
 * compared (every chart overlays both, the legend names them).
 *
 * Screenshots of the run page and of the comparison go to test-results/web/. With
 * STEPLOG_SCREENSHOTS=<dir> (`npm run screenshots` sets docs/, the README's pictures) they go there
 * instead, and the example trains its full four epochs (320 steps) instead of one.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import type { Page } from "playwright-core"
import { startTestServer, type TestServer } from "steplog/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { chartCounts, chartsDrawn, useBrowser } from "../support/browser.js"
import { useTempDir } from "../support/tempDir.js"

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const screenshotDir = path.resolve(root, process.env["STEPLOG_SCREENSHOTS"] || path.join("test-results", "web"))
const epochs = process.env["STEPLOG_SCREENSHOTS"] ? "4" : "1"
const project = "digits"
const sweep = [
  ["--lr", "0.003", "--hidden", "64", "--seed", "1"],
  ["--lr", "0.03", "--hidden", "16", "--seed", "2"]
]

const temp = useTempDir("web-compare")
const browser = useBrowser()
let server: TestServer
/** The example's runs, as the server lists them (newest first). */
let runs: ReadonlyArray<{ readonly runId: string; readonly name: string }> = []

beforeAll(async () => {
  server = await startTestServer()
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("STEPLOG_")))
  const env = {
    ...inherited,
    XDG_CONFIG_HOME: temp.file("config"),
    STEPLOG_MODE: "online",
    STEPLOG_BASE_URL: server.baseUrl,
    STEPLOG_API_KEY: server.apiKey,
    STEPLOG_DIR: temp.file("runs")
  }
  await Promise.all(sweep.map((args) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", "examples/train.ts", "--epochs", epochs, ...args], { cwd: root, env, timeout: 120_000 })
  ))
  runs = await server.runs(project)
  expect(runs.map((run) => run.name).sort()).toEqual(["mlp-h16-lr0.03", "mlp-h64-lr0.003"])
}, 180_000)

afterAll(async () => {
  await server?.close()
})

/** A fresh page, signed in at `pathname`. */
const openSignedIn = async (pathname: string) => browser.openSignedIn(await server.signInUrl(), pathname)

/** The steps at which some run of `runIds` logged `metric`: a chart's x values. */
const stepsWith = async (runIds: ReadonlyArray<string>, metric: string): Promise<number> => {
  const steps = new Set<number>()
  for (const runId of runIds) {
    for (const row of (await server.history(project, runId, { keys: [metric] })).rows) if (metric in row.values) steps.add(row.step)
  }
  return steps.size
}

const screenshot = async (page: Page, name: string) => {
  fs.mkdirSync(screenshotDir, { recursive: true })
  // The pointer off the charts: no hover readout in the picture.
  await page.mouse.move(0, 0)
  await page.screenshot({ path: path.join(screenshotDir, name), fullPage: true })
}

const metrics = ["acc", "loss", "val/acc", "val/loss"]

describe("the example's runs", () => {
  it("each have a page with a chart per metric drawing every step, the summary, the config and what it printed", async () => {
    const run = runs.find((r) => r.name === "mlp-h64-lr0.003")!
    const { page, problems } = await openSignedIn(`/projects/${project}/runs/${run.runId}`)
    await chartsDrawn(page)
    const expected = Object.fromEntries(await Promise.all(metrics.map(async (metric) => [metric, { points: await stepsWith([run.runId], metric), series: 1 }])))
    expect(await chartCounts(page)).toEqual(expected)
    expect(expected["loss"]!.points).toBe(80 * Number(epochs))
    expect(await page.locator("[data-testid=run-name]").textContent()).toBe(run.name)
    expect(await page.locator("[data-testid=summary]").textContent()).toContain("best_val_acc")
    expect(await page.locator("[data-testid=config]").textContent()).toContain("hidden")
    // What the example printed (captured by the run): its per-epoch line, in the console panel.
    await page.locator("[data-testid=console]").filter({ hasText: `${run.name} epoch 1/${epochs}: val/loss` }).waitFor()
    await screenshot(page, "run-page.png")
    expect(problems).toEqual([])
  })

  it("picked in the runs table and compared: every chart overlays both, the legend names them", async () => {
    const { page, problems } = await openSignedIn(`/projects/${project}`)
    for (const run of runs) await page.locator(`[data-testid=runs-table] tr[data-run-id="${run.runId}"] [data-testid=select-run]`).check()
    await page.locator("[data-testid=compare]").click()
    await page.waitForURL(/\/compare\?runs=/)
    await chartsDrawn(page)
    const runIds = runs.map((run) => run.runId)
    const expected = Object.fromEntries(await Promise.all(metrics.map(async (metric) => [metric, { points: await stepsWith(runIds, metric), series: 2 }])))
    expect(await chartCounts(page)).toEqual(expected)
    const legend = await page.locator("[data-testid=compare-legend] li a").allTextContents()
    expect(legend.sort()).toEqual(runs.map((run) => run.name).sort())
    await screenshot(page, "compare.png")
    expect(problems).toEqual([])
  })
})
