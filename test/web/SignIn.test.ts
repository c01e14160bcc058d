/**
 * Signing in to the dashboard in a real browser (headless Chromium) against a steplog test server
 * on 127.0.0.1: by the one-time link `steplog server` prints, which works once, and by an API key
 * typed into the sign-in form (the form's POST passes the server's same-origin check as a browser
 * sends it).
 */
import { init } from "steplog"
import { startTestServer, type TestServer } from "steplog/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { useBrowser } from "../support/browser.js"

const browser = useBrowser()
let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
  // Something that only a signed-in browser sees: the project "signin".
  const run = await init({ ...server.initOptions, project: "signin" })
  run.log({ loss: 1 })
  expect(await run.finish()).toMatchObject({ uploaded: true })
})
afterAll(async () => {
  await server?.close()
})

const projectsTable = "[data-testid=projects-table] tr[data-project=signin]"
const keyField = "form[action='/auth/session'] input[name=key]"

describe("signing in", () => {
  it("by the sign-in link: the dashboard at once, the token gone from the address; the same link refused a second time", async () => {
    const link = await server.signInUrl()
    const first = await browser.open()
    await first.page.goto(link)
    await first.page.locator(projectsTable).waitFor()
    expect(first.page.url()).toBe(`${server.baseUrl}/`)

    // Another browser (no cookie) with the same link: the sign-in page, answered 401.
    const second = await browser.open()
    const again = await second.page.goto(link)
    expect(again?.status()).toBe(401)
    expect(await second.page.locator(keyField).count()).toBe(1)
    expect(await second.page.locator(projectsTable).count()).toBe(0)
    expect([...first.problems, ...second.problems]).toEqual([])
  })

  it("by an API key on the sign-in form; a wrong key is refused with a notice", async () => {
    const { page, problems } = await browser.open()
    const signInPage = await page.goto(`${server.baseUrl}/`)
    expect(signInPage?.status()).toBe(401)
    const refused = page.locator("#refused")
    expect(await refused.isVisible()).toBe(false)

    await page.fill(keyField, "slk_not-a-key")
    await page.click("button[type=submit]")
    await refused.waitFor()
    expect(new URL(page.url()).search).toBe("?error=key")
    expect(await refused.textContent()).toContain("that key was not accepted")

    await page.fill(keyField, server.apiKey)
    await page.click("button[type=submit]")
    await page.locator(projectsTable).waitFor()
    expect(page.url()).toBe(`${server.baseUrl}/`)
    expect(problems).toEqual([])
  })
})
