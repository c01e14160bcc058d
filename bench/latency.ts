/**
 * How live an online run is: one row logged every 100 ms on average (as a training loop with a
 * few steps a second logs; each at a different point of its 100 ms slot), against a `steplog
 * server` (SQLite, a process of its own) on loopback, while a reader asks the history API for the
 * newest step every 5 ms; for each row, the time from its `log()` to the first read that returns
 * it (ms: p50, p90, p99, max), with the default 100 ms flush interval and with 1,000 ms. The
 * baseline, measured in the same run: the same rows offline, from `log()` to the journal on disk
 * growing past them (what the flush interval alone costs; the upload adds the rest). Left out: the
 * rows logged before the first row is readable (while the upload service starts: init()'s cost),
 * and gzip (loopback). At 100 ms, also: from `log()` to drawn on the run's dashboard page (headless
 * Chromium, see test/support/chromium.ts), which polls the server once a second.
 */
import * as Either from "effect/Either"
import * as path from "node:path"
import { init } from "steplog"
import { readJournal } from "../src/journal/JournalReader.js"
import { launchChromium, viewport } from "../test/support/chromium.js"
import { quantile, report, startServerProcess, tempDir } from "./fixtures.js"

const ROWS = Number(process.env["LATENCY_ROWS"] ?? 200)
const EVERY_MS = 100
const READ_EVERY_MS = 5

/**
 * Where in its 100 ms slot each row is logged: spread evenly, in a fixed order (so that every
 * measurement logs on the same schedule), since a row logged on a fixed phase against the flush
 * interval would always wait the same part of it.
 */
const offsetInSlot = (step: number) => ((step * 0.618_034) % 1) * EVERY_MS

const dir = tempDir("latency")
const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, "config") }
const server = await startServerProcess(dir, env)
const { baseUrl, apiKey } = server
const runs = path.join(dir, "runs")
const browser = await launchChromium()

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
/** Milliseconds since the epoch, to the microsecond: comparable with the browser's clock. */
const now = () => performance.timeOrigin + performance.now()

/** A run page open in the browser, following the run live as a person watching it would. */
interface RunPage {
  /** When the loss chart first drew each step (ms since the epoch), once it has drawn step `last`. */
  readonly drawnUpTo: (last: number) => Promise<ReadonlyArray<number>>
}

/** Run in the page before its own scripts: `window.steplogDrawn[step]`, when the loss chart first drew `step`. */
const DRAWN_HOOK = `
  const drawn = (window.steplogDrawn = [])
  new MutationObserver((mutations) => {
    const at = performance.timeOrigin + performance.now()
    for (const { target } of mutations) {
      if (target.getAttribute("data-metric") !== "loss") continue
      const points = Number(target.getAttribute("data-points"))
      for (let step = drawn.length; step < points; step++) drawn[step] = at
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-points"] })
`

/**
 * Opens the run's page, signed in, with a hook that notes when its loss chart first draws each step
 * (its `data-points`, the x values drawn, grows as the live view appends rows: step n is drawn
 * once it holds n + 1).
 */
const openRunPage = async (runId: string): Promise<RunPage> => {
  const context = await browser.newContext({ viewport })
  await context.addInitScript({ content: DRAWN_HOOK })
  const page = await context.newPage()
  const link = new URL(server.signInUrl)
  link.pathname = `/projects/default/runs/${runId}`
  await page.goto(link.href)
  return {
    drawnUpTo: async (last) => {
      // Functions, not strings: the dashboard's CSP forbids eval.
      await page.waitForFunction((step) => (globalThis as unknown as { steplogDrawn: Array<number> }).steplogDrawn.length > step, last, { timeout: 30_000 })
      const drawn = await page.evaluate(() => (globalThis as unknown as { steplogDrawn: Array<number> }).steplogDrawn)
      await context.close()
      return drawn
    }
  }
}

/** Latencies in ms, sorted: from each row's log() to when it was seen. */
const latencies = (loggedAt: ReadonlyArray<number>, seenAt: ReadonlyArray<number>, from: number) =>
  Float64Array.from(loggedAt.slice(from), (at, i) => seenAt[from + i]! - at).sort()

/**
 * Logs rows, one every EVERY_MS on average, while `newest(runId, runDir, from)` is asked every
 * READ_EVERY_MS for the steps from `from` on that can be read, until ROWS rows past the warm-up
 * are read: the latency of each of those rows in ms, sorted. `dashboard`: also open the run's page
 * once the first row is readable, and measure the rows logged after it first drew.
 */
const measure = async (
  mode: "online" | "offline",
  flushIntervalMs: number,
  newest: (runId: string, runDir: string, from: number) => Promise<ReadonlyArray<number>> | ReadonlyArray<number>,
  dashboard = false
) => {
  const run = await init({ dir: runs, mode, baseUrl, apiKey, flushIntervalMs, name: `latency-${mode}-${flushIntervalMs}`, console: "off" })
  const loggedAt: Array<number> = []
  const seenAt: Array<number> = []
  let warmup = Infinity
  let page: Promise<RunPage> | undefined
  const reader = (async () => {
    while (seenAt.length < warmup + ROWS) {
      for (const step of await newest(run.id, run.dir, seenAt.length)) seenAt[step] ??= now()
      await sleep(READ_EVERY_MS)
    }
  })()
  const start = performance.now()
  for (let step = 0; step < warmup + ROWS; step++) {
    await sleep(start + step * EVERY_MS + offsetInSlot(step) - performance.now())
    // Rows logged before the first one is readable wait for the upload service to start: init()'s cost, left out.
    if (warmup === Infinity && seenAt[0] !== undefined) {
      warmup = step
      if (dashboard) page = openRunPage(run.id)
    }
    loggedAt.push(now())
    run.log({ loss: 1 / (step + 1) })
  }
  await reader
  const drawn = await page?.then((open) => open.drawnUpTo(loggedAt.length - 1))
  await run.finish()
  // On the page: the rows logged once it had drawn its first chart (it opens while rows go on).
  const onPage = drawn === undefined ? undefined : latencies(loggedAt, drawn, loggedAt.findIndex((at) => at > drawn[0]!))
  return { readable: latencies(loggedAt, seenAt, warmup), onPage }
}

/** The steps from `from` on that the server answers (the reader's GET). */
const onServer = async (runId: string, _dir: string, from: number): Promise<ReadonlyArray<number>> => {
  const response = await fetch(`${baseUrl}/api/v1/projects/default/runs/${runId}/history?minStep=${from}`, {
    headers: { authorization: `Bearer ${apiKey}` }
  })
  if (response.status === 404) return []
  const body = (await response.json()) as { rows: ReadonlyArray<{ step: number }> }
  return body.rows.map((row) => row.step)
}

/** The steps from `from` on that the run's journal holds (read whole: it is small here). */
const onDisk = (_runId: string, runDir: string, from: number): ReadonlyArray<number> => {
  const scan = readJournal(path.join(runDir, "journal.slog"))
  if (Either.isLeft(scan)) return []
  return scan.right.records.flatMap((record) => (record.kind === "history" && record.step >= from ? [record.step] : []))
}

const rows: Array<{ [column: string]: string | number }> = []
const row = (flushIntervalMs: number, what: string, sorted: Float64Array) =>
  rows.push({
    "flush interval ms": flushIntervalMs,
    path: what,
    rows: sorted.length,
    "p50 ms": +quantile(sorted, 0.5).toFixed(1),
    "p90 ms": +quantile(sorted, 0.9).toFixed(1),
    "p99 ms": +quantile(sorted, 0.99).toFixed(1),
    "max ms": +sorted[sorted.length - 1]!.toFixed(1)
  })
for (const flushIntervalMs of [100, 1000]) {
  const disk = await measure("offline", flushIntervalMs, onDisk)
  const online = await measure("online", flushIntervalMs, onServer, flushIntervalMs === 100)
  row(flushIntervalMs, "online: log() → readable on the server", online.readable)
  if (online.onPage !== undefined) row(flushIntervalMs, "online: log() → drawn on its dashboard page (a poll every second)", online.onPage)
  row(flushIntervalMs, "baseline, offline: log() → in the journal", disk.readable)
}
server.stop()
await browser.close()

report(`live latency: one row every ${EVERY_MS} ms, a reader on the history API every ${READ_EVERY_MS} ms (targets at the default 100 ms flush: p50 ≤ 100 ms, p99 ≤ 250 ms, on the dashboard ≤ 1,500 ms; at 1,000 ms: p50 ≤ 1,050 ms)`, rows)
