/**
 * The runs table of a project too large to read whole (more than the 500 runs it reads at once),
 * in a real browser against a test server: the server filters and sorts (the requests carry the
 * filter and sort texts), the table shows the first 500 runs of that order, and more on request.
 */
import { Packr } from "msgpackr"
import { startTestServer, type TestServer } from "steplog/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { useBrowser } from "../support/browser.js"
import { poll } from "../support/poll.js"

const browser = useBrowser()
let server: TestServer
const project = "huge"
const RUNS = 620
const packr = new Packr({ useRecords: true })

/** Run i: named run-iiii, val/acc = i / RUNS, every third one crashed-free finished, the rest running. */
const postRun = async (i: number) => {
  const runId = `run-${String(i).padStart(4, "0")}`
  const records = [
    {
      kind: "run", seq: 0, ts: 1_764_000_000_000 + i, runId, project, name: runId, config: { lr: i / 1000 }, tags: i % 2 === 0 ? ["even"] : [],
      notes: null, group: null, jobType: null, host: "h", pid: 1, argv: [], gitCommit: null, sdkVersion: "0.1.0", resumed: false
    },
    { kind: "summary", seq: 1, ts: 1_764_000_000_000 + i, patch: { "val/acc": i / RUNS } },
    ...(i % 3 === 0 ? [{ kind: "exit", seq: 2, ts: 1_764_000_000_000 + i, exitCode: 0, signal: null, durationMs: 1 }] : [])
  ]
  const response = await fetch(`${server.baseUrl}/api/v1/projects/${project}/runs/${runId}/records`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.apiKey}`, "content-type": "application/msgpack" },
    body: packr.pack(records)
  })
  expect(response.status).toBe(200)
}

beforeAll(async () => {
  server = await startTestServer()
  for (let i = 0; i < RUNS; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => postRun(i + k)))
})

afterAll(async () => {
  await server?.close()
})

describe("a project of more runs than the table reads whole", () => {
  it("is filtered and sorted by the server, 500 runs at a time", async () => {
    const { page, problems } = await browser.openSignedIn(await server.signInUrl(), `/projects/${project}`)
    const listings: Array<URLSearchParams> = []
    page.on("request", (request) => {
      const url = new URL(request.url())
      if (url.pathname === `/api/v1/projects/${project}/runs`) listings.push(url.searchParams)
    })
    const rows = page.locator("[data-testid=runs-table] tbody tr")
    const ids = () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-run-id")))
    await poll("the first 500 runs", async () => ((await rows.count()) === 500 ? true : undefined))
    // Newest first: the last run posted starts latest.
    expect((await ids()).slice(0, 2)).toEqual(["run-0619", "run-0618"])
    expect(await page.locator(".count-label").textContent()).toBe("first 500 matching runs (more on the server)")

    await page.locator("[data-testid=more-runs]").click()
    await poll("all 620 runs", async () => ((await rows.count()) === RUNS ? true : undefined))
    expect(await page.locator("[data-testid=more-runs]").isHidden()).toBe(true)

    await page.getByLabel("Filter by state").selectOption("finished")
    await page.getByLabel("Search runs by name, id, tag or notes").fill("run-03")
    await poll("the finished runs named run-03…", async () => ((await rows.count()) === 34 ? true : undefined))
    expect((await ids()).every((id) => id !== null && id.startsWith("run-03") && Number(id.slice(4)) % 3 === 0)).toBe(true)
    const filtered = listings.at(-1)!
    expect(filtered.get("filter")).toBe(`text ~ "run-03" and state = finished`)

    // Sorted by the summary metric, best first, on the server.
    await page.locator('button[title="Sort by val/acc"]').click()
    await poll("the best run first", async () => ((await ids())[0] === "run-0399" ? true : undefined))
    expect(listings.at(-1)!.get("sort")).toBe(`-summary["val/acc"]`)
    expect(problems).toEqual([])
  })
})
