/**
 * The dashboard in three browser languages (headless Chromium against a steplog test server on
 * 127.0.0.1): `en-US@posix`, what the packaged Chromium says under LANG=C.UTF-8 and a tag `Intl`
 * refuses (uPlot would throw on it as it loads; set by an init script too, since Debian's Chromium
 * says `en-US` there), `de-DE` (comma decimals) and `ar-EG` (Arabic-Indic digits). In
 * each, the runs table and a run's chart are drawn, no script fails, and summary values are written
 * in that locale (en-US for the refused tag).
 */
import { init } from "steplog"
import { startTestServer, type TestServer } from "steplog/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { chartCounts, chartsDrawn, signInTo, useBrowser } from "../support/browser.js"

// The browser's own language comes from its environment: C.UTF-8, and nothing set to override it.
const { LANGUAGE: _language, LC_ALL: _all, LC_MESSAGES: _messages, ...inherited } = process.env
const browser = useBrowser({ env: { ...inherited, LANG: "C.UTF-8" } })
let server: TestServer

const project = "locales"
const STEPS = 10
let runId = ""

beforeAll(async () => {
  server = await startTestServer()
  const run = await init({ ...server.initOptions, project, name: "locale-run" })
  for (let step = 0; step < STEPS; step++) run.log({ loss: 1 / (1 + step) })
  run.summary.set({ acc: 0.5, score: 1234.5 })
  expect(await run.finish()).toMatchObject({ uploaded: true })
  runId = run.id
})

afterAll(async () => {
  await server?.close()
})

describe.each([
  { language: "en-US@posix", locale: undefined, forced: "en-US@posix", acc: "0.5", score: "1,234.5" },
  { language: "de-DE", locale: "de-DE", forced: undefined, acc: "0,5", score: "1.234,5" },
  { language: "ar-EG", locale: "ar-EG", forced: undefined, acc: "٠٫٥", score: "١٬٢٣٤٫٥" }
])("a browser whose language is $language", ({ language, locale, forced, acc, score }) => {
  it("draws the runs table and the run's chart, with the summary in its locale", async () => {
    const { page, problems } = await browser.open({ ...(locale === undefined ? {} : { locale }), ...(forced === undefined ? {} : { language: forced }) })
    await page.goto("data:text/html,<p>language</p>")
    expect(await page.evaluate("navigator.language")).toBe(language)

    await page.goto(signInTo(await server.signInUrl(), `/projects/${project}`))
    const row = page.locator(`[data-testid=runs-table] tr[data-run-id="${runId}"]`)
    await row.waitFor()
    expect(await row.locator("td.num").allTextContents()).toEqual(expect.arrayContaining([acc, score]))

    await row.locator("td.name-cell a").click()
    await chartsDrawn(page)
    expect(await chartCounts(page)).toEqual({ loss: { points: STEPS, series: 1 } })
    const summary = page.locator("[data-testid=summary] tr")
    const shown = Object.fromEntries(await Promise.all((await summary.all()).map(async (tr) => [await tr.locator("th").textContent(), await tr.locator("td").textContent()])))
    expect(shown).toMatchObject({ acc, score })
    expect(problems).toEqual([])
  })
})
