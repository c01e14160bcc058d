/**
 * The dashboard's runs table and run page in a real browser (headless Chromium) against a steplog
 * test server on 127.0.0.1, with runs logged by `init()` online (and one training process killed
 * mid-run): the table's names and states, charts drawing exactly what the history holds (every
 * step of a short run, at most the asked-for buckets of a long one), a running run followed live
 * without re-reading its history, a run name that is HTML shown as text, and a run deleted from its
 * page behind a confirmation.
 */
import { init, type Run } from "steplog"
import { startTestServer, type TestServer } from "steplog/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { chartCounts, chartsDrawn, signInTo, useBrowser } from "../support/browser.js"
import { killChildren } from "../support/child.js"
import { poll } from "../support/poll.js"
import { serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("web-run-pages")
const browser = useBrowser()
const services = serviceTracker()
let server: TestServer

const project = "vision"
const htmlName = "<img src=x onerror=alert(1)>"
const LONG_STEPS = 100_000
/** Runs by role, filled in by beforeAll. */
const runs = { short: "", long: "", html: "", running: "", killed: "" }
/** Runs this process opened: finished in afterAll (again, harmlessly, for those a test finished). */
const opened: Array<Run> = []

const loss = (step: number) => 2 / (1 + step / 10)

beforeAll(async () => {
  server = await startTestServer()
  const logged = async (name: string, steps: number, tags: Array<string> = []) => {
    const run = await init({ ...server.initOptions, project, name, tags })
    for (let step = 0; step < steps; step++) run.log({ loss: loss(step), acc: 1 - loss(step) / 2 })
    expect(await run.finish()).toMatchObject({ uploaded: true })
    return run.id
  }
  runs.short = await logged("short-run", 50)
  runs.long = await logged("long-run", LONG_STEPS)
  runs.html = await logged(htmlName, 5, ["<b>tag</b>"])

  const running = await init({ ...server.initOptions, project, name: "still-running" })
  opened.push(running)
  running.log({ loss: 1 })
  runs.running = running.id

  // A training process killed mid-run: its service uploads what it logged and marks it crashed.
  const child = trainOnline(
    { baseUrl: server.baseUrl, key: server.apiKey, config: temp.file("config"), workDir: temp.dir() },
    { STEPLOG_PROJECT: project, STEPLOG_RUN_NAME: "killed-run", ROWS: "0", TICK_MS: "20" }
  )
  const { runId, runDir } = await startedRun(child)
  await poll("the killed run's first rows on the server", async () => (((await server.run(project, runId))?.historyRows ?? 0) > 0 ? true : undefined))
  // Its service's pid, remembered so that afterAll can end it should it outlive the test.
  services.pids(runDir)
  child.process.kill("SIGKILL")
  await child.exited()
  runs.killed = runId
  await poll("the killed run marked crashed", async () => ((await server.run(project, runId))?.state === "crashed" ? true : undefined))
})

afterAll(async () => {
  await Promise.all(opened.map((run) => run.finish()))
  await killChildren()
  services.killAll()
  await server?.close()
})

/** A fresh page, signed in at `pathname`. */
const openSignedIn = async (pathname: string) => browser.openSignedIn(await server.signInUrl(), pathname)
const runPath = (projectName: string, runId: string) => `/projects/${projectName}/runs/${runId}`

describe("the runs table", () => {
  it("lists every run of the project with its name and state", async () => {
    const { page, problems } = await openSignedIn(`/projects/${project}`)
    const table = page.locator("[data-testid=runs-table]")
    await table.locator(`tr[data-run-id="${runs.killed}"]`).waitFor()
    const shown: Record<string, { name: string | null; state: string | null }> = {}
    for (const row of await table.locator("tbody tr").all()) {
      const id = (await row.getAttribute("data-run-id")) ?? ""
      shown[id] = { name: await row.locator("td.name-cell").textContent(), state: await row.locator("[data-testid=run-state]").getAttribute("data-state") }
    }
    expect(shown).toEqual({
      [runs.short]: { name: "short-run", state: "finished" },
      [runs.long]: { name: "long-run", state: "finished" },
      [runs.html]: { name: htmlName, state: "finished" },
      [runs.running]: { name: "still-running", state: "running" },
      [runs.killed]: { name: "killed-run", state: "crashed" }
    })
    expect(problems).toEqual([])
  })
})

describe("a run page", () => {
  it("draws a point for every step of a short run", async () => {
    const { page, problems } = await openSignedIn(runPath(project, runs.short))
    await chartsDrawn(page)
    expect(await page.locator("[data-testid=run-name]").textContent()).toBe("short-run")
    const rows = (await server.history(project, runs.short)).rows.length
    expect(rows).toBe(50)
    expect(await chartCounts(page)).toEqual({ acc: { points: rows, series: 1 }, loss: { points: rows, series: 1 } })
    expect(problems).toEqual([])
  })

  it("draws NaN and ±Infinity as gaps with a marker each, never as zero, and names them on hover", async () => {
    const run = await init({ ...server.initOptions, project, name: "odd-numbers" })
    opened.push(run)
    const values = [1, Number.NaN, 2, Number.POSITIVE_INFINITY, 3, Number.NEGATIVE_INFINITY, -0, 4]
    for (const loss of values) run.log({ loss })
    expect(await run.finish()).toMatchObject({ uploaded: true })
    const { page, problems } = await openSignedIn(runPath(project, run.id))
    await chartsDrawn(page)
    const chart = page.locator(`[data-testid=chart][data-metric="loss"]`)
    expect(await chart.getAttribute("data-points")).toBe(String(values.length))
    expect(await chart.getAttribute("data-nonfinite")).toBe("3")
    // The API carries them as stand-ins, so that they never read as null (or -0 as 0).
    const raw = await page.evaluate(async (path) => (await fetch(path)).text(), `/api/v1/projects/${project}/runs/${run.id}/history?keys=loss`)
    expect((JSON.parse(raw) as { rows: Array<{ values: { loss: unknown } }> }).rows.map((row) => row.values.loss)).toEqual([
      1, { number: "NaN" }, 2, { number: "Infinity" }, 3, { number: "-Infinity" }, { number: "-0" }, 4
    ])
    // Hovering step 1 (of steps 0…7 across the plot) reads NaN.
    const over = (await chart.locator(".u-over").boundingBox())!
    await page.mouse.move(over.x + over.width / 7, over.y + over.height / 2)
    await chart.locator(".u-legend .u-series").nth(1).locator(".u-value", { hasText: "NaN" }).waitFor()
    expect(problems).toEqual([])
  })

  it("draws a long run in as many buckets as the chart asked for, never more", async () => {
    const { page, problems } = await browser.open()
    const asked = page.waitForRequest((request) => request.url().includes("/history?") && new URL(request.url()).searchParams.get("keys") === "loss")
    await page.goto(signInTo(await server.signInUrl(), runPath(project, runs.long)))
    await chartsDrawn(page)
    const samples = Number(new URL((await asked).url()).searchParams.get("samples"))
    expect(samples).toBeGreaterThan(0)
    expect(samples).toBeLessThanOrEqual(1000)
    const buckets = (await server.history(project, runs.long, { keys: ["loss"], samples })).rows.length
    expect(buckets).toBeLessThanOrEqual(samples)
    expect(buckets).toBeGreaterThan(samples / 2)
    expect((await chartCounts(page))["loss"]).toEqual({ points: buckets, series: 1 })
    expect(problems).toEqual([])
  })

  it("follows a running run: new steps without a reload, the state turning finished, and no poll re-reading the history", async () => {
    const live = await init({ ...server.initOptions, project: "live", name: "live-run" })
    opened.push(live)
    const logSteps = (from: number, to: number) => {
      for (let step = from; step < to; step++) live.log({ loss: loss(step), acc: 1 - loss(step) / 2 })
    }
    logSteps(0, 20)
    await poll("20 rows on the server", async () => ((await server.history("live", live.id)).rows.length === 20 ? true : undefined))

    const { page, problems } = await browser.open()
    const historyReads: Array<URLSearchParams> = []
    page.on("request", (request) => {
      const url = new URL(request.url())
      if (url.pathname.endsWith("/history")) historyReads.push(url.searchParams)
    })
    await page.goto(signInTo(await server.signInUrl(), runPath("live", live.id)))
    await chartsDrawn(page)
    expect(await chartCounts(page)).toEqual({ acc: { points: 20, series: 1 }, loss: { points: 20, series: 1 } })
    expect(await page.locator("[data-testid=run-state]").getAttribute("data-state")).toBe("running")

    logSteps(20, 50)
    for (const metric of ["loss", "acc"]) await page.locator(`[data-testid=chart][data-metric="${metric}"][data-points="50"]`).waitFor()
    expect(await live.finish()).toMatchObject({ uploaded: true })
    await page.locator("[data-testid=run-state][data-state=finished]").waitFor()

    // Before following, the page reads the newest step (one bucket) and each chart's metric once;
    // everything after that asks only for the steps after the last one it has.
    const [unbounded, follows] = [historyReads.filter((q) => !q.has("minStep")), historyReads.filter((q) => q.has("minStep"))]
    expect(unbounded.map((q) => q.get("keys")).sort()).toEqual(["acc", "loss", null])
    expect(unbounded.every((q) => q.has("samples"))).toBe(true)
    expect(follows.length).toBeGreaterThan(0)
    const from = follows.map((q) => Number(q.get("minStep")))
    expect(from[0]).toBe(20)
    expect(from).toEqual([...from].sort((a, b) => a - b))
    expect(from.at(-1)).toBeLessThanOrEqual(50)
    expect(follows.every((q) => !q.has("samples") && !q.has("keys"))).toBe(true)
    expect(await chartCounts(page)).toEqual({ acc: { points: 50, series: 1 }, loss: { points: 50, series: 1 } })
    expect(problems).toEqual([])
  })

  it("follows a validation metric logged at steps the page has already read, reading only that key again", async () => {
    const live = await init({ ...server.initOptions, project: "live", name: "live-validation" })
    opened.push(live)
    const logSteps = (from: number, to: number) => {
      for (let step = from; step < to; step++) {
        live.log({ loss: loss(step) })
        if (step % 10 === 9) live.log({ val: { loss: loss(step) + 0.1 } }, { step })
      }
    }
    logSteps(0, 20)
    await poll("20 rows on the server", async () => ((await server.history("live", live.id)).rows.length === 20 ? true : undefined))

    const { page, problems } = await browser.open()
    const historyReads: Array<URLSearchParams> = []
    page.on("request", (request) => {
      const url = new URL(request.url())
      if (url.pathname.endsWith("/history")) historyReads.push(url.searchParams)
    })
    await page.goto(signInTo(await server.signInUrl(), runPath("live", live.id)))
    await chartsDrawn(page)
    expect(await chartCounts(page)).toEqual({ loss: { points: 20, series: 1 }, "val/loss": { points: 2, series: 1 } })

    // Step 39's row is on the page before its validation value is logged.
    for (let step = 20; step < 40; step++) live.log({ loss: loss(step) })
    await page.locator(`[data-testid=chart][data-metric="loss"][data-points="40"]`).waitFor()
    live.log({ val: { loss: 0.5 } }, { step: 39 })
    await page.locator(`[data-testid=chart][data-metric="val/loss"][data-points="3"]`).waitFor()
    expect(await live.finish()).toMatchObject({ uploaded: true })

    const again = historyReads.filter((q) => q.has("maxStep"))
    expect(again.map((q) => [q.get("keys"), q.get("minStep"), q.get("maxStep")])).toEqual([["val/loss", "20", "39"]])
    expect(problems).toEqual([])
  })

  it("shows a run name that is HTML as text, in the table and on its page, and runs none of it", async () => {
    const table = await openSignedIn(`/projects/${project}`)
    const cell = table.page.locator(`[data-testid=runs-table] tr[data-run-id="${runs.html}"] td.name-cell`)
    expect(await cell.textContent()).toBe(htmlName)
    expect(await table.page.locator("img").count()).toBe(0)

    const { page, problems } = await openSignedIn(runPath(project, runs.html))
    await chartsDrawn(page)
    expect(await page.locator("[data-testid=run-name]").textContent()).toBe(htmlName)
    expect(await page.locator(".tag").allTextContents()).toEqual(["<b>tag</b>"])
    expect(await page.locator("img, b").count()).toBe(0)
    expect([...table.problems, ...problems]).toEqual([])
  })
})

describe("deleting a run", () => {
  it("asks first (a dismissed question deletes nothing), then deletes the run and shows the project's runs without it", async () => {
    const doomed = await init({ ...server.initOptions, project, name: "doomed-run" })
    doomed.log({ loss: 1 })
    expect(await doomed.finish()).toMatchObject({ uploaded: true })
    const { page, problems } = await openSignedIn(runPath(project, doomed.id))
    const button = page.locator("[data-testid=delete-run]")
    // The confirmation is this test's to answer, not the watched page's (which dismisses any dialog as a problem).
    page.removeAllListeners("dialog")

    const questions: Array<string> = []
    page.once("dialog", (dialog) => void (questions.push(dialog.message()), dialog.dismiss()))
    await button.click()
    await poll("the question", () => (questions.length === 1 ? true : undefined))
    expect(questions[0]).toContain(`"doomed-run" (${doomed.id})`)
    expect((await server.run(project, doomed.id))?.name).toBe("doomed-run")

    page.once("dialog", (dialog) => void dialog.accept())
    await button.click()
    await page.waitForURL((url) => url.pathname === `/projects/${project}`)
    await page.locator(`[data-testid=runs-table] tr[data-run-id="${runs.short}"]`).waitFor()
    expect(await page.locator(`[data-testid=runs-table] tr[data-run-id="${doomed.id}"]`).count()).toBe(0)
    expect(await server.run(project, doomed.id)).toBeUndefined()
    expect(problems).toEqual([])
  })
})

