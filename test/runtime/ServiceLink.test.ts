/**
 * The training process's side of the upload service: how it restarts a service that keeps dying
 * (`restartSchedule`, then a link forking test/fixtures/deadService.mjs), and the progress bar
 * `finish()` draws on a terminal while it waits (a real pseudo-terminal, `script`, and a server in
 * this process whose ingests a gate holds).
 */
import { it as effectIt } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import { openRun } from "../../src/runtime/OpenRun.js"
import * as ServiceLink from "../../src/runtime/ServiceLink.js"
import { killChildren, type Child } from "../support/child.js"
import { progressFrames } from "../support/progressFrames.js"
import { journalRows, poll, serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"
import { useTestServer } from "../support/testServer.js"
import { useSteplogWarnings } from "../support/warnings.js"

const temp = useTempDir("link")
const server = useTestServer(temp.dir)
const services = serviceTracker()

afterEach(async () => {
  await killChildren()
  services.killAll()
})

/**
 * Steps `restartSchedule` through a streak of deaths, the service living `lived(n)` ms before its
 * n-th death: the delay before each restart, and whether the link gave up.
 */
const restarts = (lived: (death: number) => number) =>
  Effect.gen(function* () {
    const schedule = ServiceLink.restartSchedule
    let state = schedule.initial
    let now = 0
    const delays: Array<number> = []
    for (let death = 0; death < 50; death++) {
      now += lived(death)
      const [next, , decision] = yield* schedule.step(now, undefined, state)
      if (ScheduleDecision.isDone(decision)) return { delays, gaveUp: true }
      const restartAt = Intervals.start(decision.intervals)
      delays.push(restartAt - now)
      now = restartAt
      state = next
    }
    return { delays, gaveUp: false }
  })

describe("restartSchedule", () => {
  effectIt.effect("restarts a service that dies at once MAX_RESTARTS times, 100 ms doubling up to 5 s, jittered by ±20%, then gives up", () =>
    Effect.gen(function* () {
      const { delays, gaveUp } = yield* restarts(() => 0)
      expect(gaveUp).toBe(true)
      expect(delays).toHaveLength(ServiceLink.MAX_RESTARTS)
      delays.forEach((delay, n) => {
        const base = Math.min(100 * 2 ** n, 5000)
        expect(delay, `restart ${n + 1}`).toBeGreaterThanOrEqual(base * 0.8)
        expect(delay, `restart ${n + 1}`).toBeLessThanOrEqual(base * 1.2)
      })
    }))

  effectIt.effect("starts the count again once a streak is a minute old: a service that lived a minute, or one that dies every half minute", () =>
    Effect.gen(function* () {
      const longLife = yield* restarts((death) => (death === 5 ? 61_000 : 0))
      expect(longLife.gaveUp).toBe(true)
      // Five quick restarts, then a full count of them again from 100 ms.
      expect(longLife.delays).toHaveLength(5 + ServiceLink.MAX_RESTARTS)
      expect(longLife.delays[5]).toBeLessThanOrEqual(120)
      const everyHalfMinute = yield* restarts(() => 30_000)
      expect(everyHalfMinute.gaveUp).toBe(false)
      expect(Math.max(...everyHalfMinute.delays)).toBeLessThanOrEqual(240)
    }))
})

describe("a service that dies as soon as it starts", () => {
  const RESTARTS = 3
  const deadService = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "deadService.mjs")
  const warnings = useSteplogWarnings()

  it("is restarted as often as the schedule allows, then one warning says how to sync; log() goes on, finish() answers at once", async () => {
    const link = ServiceLink.make({ servicePath: deadService, schedule: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(RESTARTS))) })
    // A finish timeout no test waits out: finish() must answer because the link gave up.
    const run = await Effect.runPromise(
      openRun({ dir: temp.file("runs"), finishTimeoutMs: 3_600_000 }, { env: { STEPLOG_API_KEY: "sk-test" }, serviceLink: link })
    )
    expect(run.mode).toBe("online")
    for (let i = 0; i < 100; i++) run.log({ i })
    await poll("the link to give up", () => (warnings.now().length > 0 ? true : undefined))
    for (let i = 100; i < 200; i++) run.log({ i })
    const result = await run.finish()

    // The first start and RESTARTS restarts, each dying with the fixture's exit status; none after.
    expect(services.pids(run.dir)).toHaveLength(1 + RESTARTS)
    expect(await warnings.settled()).toEqual([
      `steplog: the upload service kept dying (last: exit status 3) and was restarted ${RESTARTS} times, so uploading stopped. ` +
        `Runs keep logging to disk; upload them with \`steplog sync ${run.dir}\`.`
    ])
    // Every record of the journal (run, the 200 rows, summary, exit, and the warning if the run
    // captured this process's stderr), none of them uploaded.
    const journal = journalRows(run.dir)
    expect(result).toEqual({
      uploaded: false,
      records: journal.records,
      pending: journal.records,
      hint: `the upload service kept dying (last: exit status 3) and was restarted ${RESTARTS} times, so uploading stopped; ` +
        `the run is on disk in ${run.dir}: \`steplog sync ${run.dir}\` uploads what is left`
    })
    expect(journal.rows).toEqual(Array.from({ length: 200 }, (_, i) => ({ step: i, values: { i } })))
  })
})

describe("finish()'s progress bar", () => {
  const train = (options: { readonly terminal: boolean }): Child =>
    trainOnline({ baseUrl: server.baseUrl, key: server.key, config: temp.dir(), workDir: temp.dir() }, { ROWS: "300", PER_TICK: "300" }, options)

  const finished = async (child: Child) => {
    const line = await child.waitForLine((l) => l.startsWith("finished "))
    return JSON.parse(line.slice("finished ".length)) as unknown
  }

  it("is drawn on a terminal's stderr while the upload takes more than a second, then cleared", async () => {
    server.ingestGate.close()
    const child = train({ terminal: true })
    const { runId, runDir } = await startedRun(child)
    const label = `steplog: uploading ${runId}`
    // The server acknowledges nothing until the bar is up, which is a second into finish().
    await poll("the progress bar", () => (progressFrames(child.stdout(), label).length > 0 ? true : undefined))
    server.ingestGate.open()
    expect(await finished(child)).toEqual({ uploaded: true, records: 303 })
    expect((await child.exited()).code).toBe(0)
    services.pids(runDir)

    const transcript = child.stdout()
    const frames = progressFrames(transcript, label)
    expect(frames[0]).toMatchObject({ acknowledged: 0, total: 303, exact: true })
    for (const [n, frame] of frames.entries()) {
      expect(frame).toMatchObject({ total: 303, exact: true })
      expect(frame.acknowledged).toBeGreaterThanOrEqual(frames[n - 1]?.acknowledged ?? 0)
    }
    // The last frame is wiped off its line before the fixture's next line is written there.
    const last = frames.at(-1)!
    expect(transcript.slice(last.at)).toMatch(/^\r[^\r\n]* records\r\x1b\[2Kfinished \{/)
  })

  it("is not drawn when stderr is not a terminal, however long finish() waits", async () => {
    server.ingestGate.close()
    const child = train({ terminal: false })
    const { runDir } = await startedRun(child)
    await child.waitForLine((l) => l.startsWith("logged 300 "))
    await poll("an upload to be held", () => (server.ingestGate.waiting() > 0 ? true : undefined))
    // What is under test is the wait: finish() was called after the last row, and waits well past a second.
    const since = Date.now()
    await poll("finish() to have waited 2.5 s", () => (Date.now() - since >= 2500 ? true : undefined))
    expect(child.lines.some((l) => l.startsWith("finished "))).toBe(false)
    server.ingestGate.open()
    expect(await finished(child)).toEqual({ uploaded: true, records: 303 })
    expect((await child.exited()).code).toBe(0)
    services.pids(runDir)
    expect(child.stderr()).toBe("")
  })
})
