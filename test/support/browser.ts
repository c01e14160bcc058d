/**
 * A test file's browser (headless Chromium, see chromium.ts; the binary chromiumSetup.ts resolved for
 * this test run) and what the dashboard's browser tests ask of its pages: a fresh signed-out page
 * that records its script errors and dialogs, and the charts' test hooks (`data-points`, `data-series`).
 */
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, inject } from "vitest"
import { launchChromium, viewport } from "./chromium.js"

/** A page of a browser context of its own (its own cookies), and what went wrong on it. */
export interface WatchedPage {
  readonly page: Page
  /** Uncaught errors of the page's scripts and every dialog it opened (a test expects none). */
  readonly problems: Array<string>
}

/** A one-time sign-in link (`TestServer.signInUrl()`) aimed at `pathname`: it signs in and lands there. */
export const signInTo = (signInUrl: string, pathname: string): string => {
  const link = new URL(signInUrl)
  link.pathname = pathname
  return link.href
}

/** How a page opens: `locale` overrides the browser's language (else the one its environment gives it). */
export interface PageOptions {
  readonly locale?: string
  /**
   * What `navigator.language` says, set before any of the page's own scripts run, for a tag that
   * `locale` cannot set because Intl refuses it: the `en-US@posix` the packaged Chromium reports
   * under LANG=C.UTF-8 (Debian's reports `en-US` there), whichever Chromium runs the test.
   */
  readonly language?: string
}

/**
 * Registers the hooks of a test file's browser: launched (with `env` as its environment, else this
 * process's) before its first test, closed (with every page) after its last. `open()` makes a
 * fresh page; `openSignedIn()` one signed in at a path.
 */
export const useBrowser = (launch: { readonly env?: NodeJS.ProcessEnv } = {}) => {
  let browser: Browser | undefined
  beforeAll(async () => {
    const chromium = inject("chromium")
    if ("error" in chromium) throw new Error(chromium.error)
    browser = await launchChromium({ executablePath: chromium.path, ...launch })
  })
  afterAll(async () => {
    await browser?.close()
  })
  const open = async (options: PageOptions = {}): Promise<WatchedPage> => {
    if (browser === undefined) throw new Error("useBrowser: open() before the browser started; call it in a test")
    const { language, ...contextOptions } = options
    const context = await browser.newContext({ viewport, ...contextOptions })
    if (language !== undefined) {
      await context.addInitScript((tag: string) => {
        const prototype = Object.getPrototypeOf((globalThis as unknown as { navigator: object }).navigator) as object
        Object.defineProperty(prototype, "language", { get: () => tag, configurable: true })
        Object.defineProperty(prototype, "languages", { get: () => [tag], configurable: true })
      }, language)
    }
    const page = await context.newPage()
    const problems: Array<string> = []
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
    page.on("dialog", (dialog) => {
      problems.push(`dialog: ${dialog.type()} ${dialog.message()}`)
      void dialog.dismiss()
    })
    return { page, problems }
  }
  return {
    open,
    openSignedIn: async (signInUrl: string, pathname: string, options: PageOptions = {}): Promise<WatchedPage> => {
      const watched = await open(options)
      await watched.page.goto(signInTo(signInUrl, pathname))
      return watched
    }
  }
}

/** Waits until the page shows charts and every one of them has drawn (has `data-points`). */
export const chartsDrawn = async (page: Page): Promise<void> => {
  await page.locator("[data-testid=chart]").first().waitFor()
  await page.locator("[data-testid=chart]:not([data-points])").first().waitFor({ state: "detached" })
}

/** Each chart's metric and what it draws: `data-points` (x values) and `data-series` (runs). */
export const chartCounts = async (page: Page): Promise<Record<string, { readonly points: number; readonly series: number }>> => {
  const counts: Record<string, { points: number; series: number }> = {}
  for (const chart of await page.locator("[data-testid=chart]").all()) {
    const [metric, points, series] = await Promise.all(["data-metric", "data-points", "data-series"].map((name) => chart.getAttribute(name)))
    counts[metric ?? ""] = { points: Number(points), series: Number(series) }
  }
  return counts
}
