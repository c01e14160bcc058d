/**
 * The training process's side of the upload service: when a dead service is restarted and when the
 * link gives up (CrashLoop.ts, then a link starting test/fixtures/deadService.mjs with every delay
 * on the TestClock), `finish()`'s timeout and progress bar on the TestClock (a service that never
 * answers), a message the link cannot read (a service of another version), and the progress bar as
 * the promise facade draws it on a real pseudo-terminal (`script`, and a server in this process
 * whose ingests a gate holds).
 */
import { it as effectIt } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as Runtime from "effect/Runtime"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import * as CrashLoop from "../../src/runtime/CrashLoop.js"
import { openRun } from "../../src/runtime/OpenRun.js"
import * as ServiceLink from "../../src/runtime/ServiceLink.js"
import { killChildren, type Child } from "../support/child.js"
import { poll } from "../support/poll.js"
import { progressFrames } from "../support/progressFrames.js"
import { journalRows, serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"
import { useTestServer } from "../support/testServer.js"
import { useSteplogWarnings } from "../support/warnings.js"

const temp = useTempDir("link")
const server = useTestServer(temp.dir)
const services = serviceTracker()
const fixture = (name: string) => path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", name)

afterEach(async () => {
  await killChildren()
  services.killAll()
})

/** The delays (ms) CrashLoop gives a service dying `lived(n)` ms after its n-th start, jitter factor 1, until it gives up or 60 deaths. */
const restartDelays = (lived: (death: number) => number) => {
  let deaths: ReadonlyArray<number> = []
  let now = 0
  const delays: Array<number> = []
  for (let death = 0; death < 60; death++) {
    now += lived(death)
    const next = CrashLoop.afterDeath(deaths, now, 1)
    deaths = next.deaths
    if (next.restartIn === null) return { delays, gaveUp: true, at: now }
    delays.push(Duration.toMillis(next.restartIn))
    now += delays.at(-1)!
  }
  return { delays, gaveUp: false, at: now }
}

describe("CrashLoop", () => {
  it("restarts a service that dies at once MAX_RESTARTS times, 100 ms doubling up to 5 s, then gives up", () => {
    const { delays, gaveUp } = restartDelays(() => 0)
    expect(gaveUp).toBe(true)
    expect(delays).toEqual(Array.from({ length: CrashLoop.MAX_RESTARTS }, (_, n) => Math.min(100 * 2 ** n, 5000)))
  })

  it("jitters each delay by a factor from 0.8 to 1.2", () => {
    expect(Duration.toMillis(CrashLoop.afterDeath([0, 1], 2, 0.8).restartIn!)).toBe(320)
    expect(Duration.toMillis(CrashLoop.afterDeath([0, 1], 2, 1.2).restartIn!)).toBe(480)
  })

  it("counts deaths in a sliding window: a service that dies every half minute is given up on within the window", () => {
    const { gaveUp, at } = restartDelays(() => 30_000)
    expect(gaveUp).toBe(true)
    expect(at).toBeLessThanOrEqual(Duration.toMillis(CrashLoop.CRASH_WINDOW))
  })

  it("restarts a service that dies once an hour for ever, each time after the first delay", () => {
    const { delays, gaveUp } = restartDelays(() => 3_600_000)
    expect(gaveUp).toBe(false)
    expect(new Set(delays)).toEqual(new Set([100]))
  })

  it("forgets deaths older than the window: a quick streak, a long life, then a full count again", () => {
    const { delays, gaveUp } = restartDelays((death) => (death === 5 ? Duration.toMillis(CrashLoop.CRASH_WINDOW) + 1 : 0))
    expect(gaveUp).toBe(true)
    expect(delays.slice(5, 7)).toEqual([100, 200])
    expect(delays).toHaveLength(5 + CrashLoop.MAX_RESTARTS)
  })
})

/** Waits, in real time (a child process is starting or dying), until something sleeps on the TestClock; answers how long, in ms. */
const nextSleep = Effect.gen(function* () {
  const runtime = yield* Effect.runtime<never>()
  const pending = () =>
    Runtime.runPromise(runtime)(Effect.gen(function* () {
      const sleeps = yield* TestClock.sleeps()
      return Chunk.isEmpty(sleeps) ? undefined : Chunk.unsafeHead(sleeps) - (yield* TestClock.currentTimeMillis)
    }))
  return yield* Effect.promise(() => poll("a sleep on the TestClock", pending))
})

describe("a link on the TestClock", () => {
  const warnings = useSteplogWarnings()

  effectIt.effect("restarts a service that dies at once after CrashLoop's delays, then gives up with one warning; log() goes on and finish() answers at once", () =>
    Effect.gen(function* () {
      const link = yield* ServiceLink.make({ servicePath: fixture("deadService.mjs") })
      // Durability "sync" writes each row before log() returns: no flush timer of the run's own sleeps on the TestClock.
      const run = yield* openRun(
        { dir: temp.file("runs"), durability: "sync", finishTimeoutMs: 3_600_000 },
        { env: { STEPLOG_API_KEY: "sk-test" }, serviceLink: link }
      )
      for (let i = 0; i < 100; i++) run.log({ i })
      // Each death is real (the fixture exits); each delay before a restart passes on the TestClock alone.
      const delays: Array<number> = []
      for (let restart = 0; restart < CrashLoop.MAX_RESTARTS; restart++) {
        delays.push(yield* nextSleep)
        yield* TestClock.adjust(Duration.millis(delays.at(-1)!))
      }
      expect(delays).toEqual(Array.from({ length: CrashLoop.MAX_RESTARTS }, (_, n) => Math.min(100 * 2 ** n, 5000)))
      yield* Effect.promise(() => poll("the link to give up", () => (warnings.now().length > 0 ? true : undefined)))
      for (let i = 100; i < 200; i++) run.log({ i })
      const result = yield* Effect.promise(() => run.finish())

      const restarts = CrashLoop.MAX_RESTARTS
      expect(services.pids(run.dir)).toHaveLength(1 + restarts)
      expect(yield* Effect.promise(() => warnings.settled())).toEqual([
        `steplog: the upload service kept dying (last: exit status 3) and was restarted ${restarts} times, so uploading stopped. ` +
          `Runs keep logging to disk; upload them with \`steplog sync ${run.dir}\`.`
      ])
      const journal = journalRows(run.dir)
      expect(result).toEqual({
        uploaded: false,
        records: journal.records,
        written: journal.records,
        dropped: 0,
        pending: journal.records,
        hint: `the upload service kept dying (last: exit status 3) and was restarted ${restarts} times, so uploading stopped; ` +
          `the run is on disk in ${run.dir}: \`steplog sync ${run.dir}\` uploads what is left`
      })
      expect(journal.rows).toEqual(Array.from({ length: 200 }, (_, i) => ({ step: i, values: { i } })))
    }).pipe(Effect.withRandom(Random.fixed([0.5]))))

  effectIt.effect("answers finish() at its timeout when the service never reports, drawing a progress bar from a second in and wiping it", () =>
    Effect.gen(function* () {
      const written: Array<string> = []
      const terminal = { isTTY: true, write: (text: string) => written.push(text) > 0 } as unknown as NodeJS.WriteStream
      const link = yield* ServiceLink.make({ servicePath: fixture("silentService.mjs"), terminal })
      const runDir = temp.file("silent")
      fs.mkdirSync(runDir)
      const linked = link.register({ runId: "silent-run", runDir, baseUrl: "http://127.0.0.1:1", apiKey: "sk-test", flushed: 0, warn: () => {} })
      yield* Effect.promise(() => poll("the service to start", () => (services.pids(runDir).length > 0 ? true : undefined)))
      // 5.1 s: no draw of the bar is due at the same moment as the timeout.
      const finishing = yield* Effect.fork(linked.finish(1_000, 10, 5_100))
      yield* TestClock.adjust("999 millis")
      expect(written).toEqual([])
      yield* TestClock.adjust("1 millis")
      yield* TestClock.adjust("400 millis")
      expect(written).toEqual([0, 1, 2].map(() => "\rsteplog: uploading silent-run [------------------------------]   0%  0/10 records"))
      yield* TestClock.adjust("3700 millis")
      expect(yield* Fiber.join(finishing)).toEqual({
        uploaded: false,
        pending: 10,
        hint: "the server had not acknowledged every record after 5100 ms (finishTimeoutMs); the upload service keeps sending in the background " +
          `until its upload deadline; the run is on disk in ${runDir}: \`steplog sync ${runDir}\` uploads what is left`
      })
      expect(written.at(-1)).toBe("\r\x1b[2K")
      // Drawn at 1 s, then every 200 ms up to 5 s.
      expect(written.filter((text) => text.includes("uploading"))).toHaveLength(1 + 4000 / 200)
    }))
})

describe("a message from the service that the link cannot read", () => {
  effectIt.effect("is ignored, with what it was and why in the run's debug.log, and the next message counts", () =>
    Effect.gen(function* () {
      const link = yield* ServiceLink.make({ servicePath: fixture("strayService.mjs") })
      const runDir = temp.file("stray")
      fs.mkdirSync(runDir)
      const linked = link.register({ runId: "stray-run", runDir, baseUrl: "http://127.0.0.1:1", apiKey: "sk-test", flushed: 0, warn: () => {} })
      yield* Effect.promise(() => poll("the service to start", () => (services.pids(runDir).length > 0 ? true : undefined)))
      expect(yield* linked.finish(1_000, 10, 60_000)).toEqual({ uploaded: true })
      // The schemas that word it load after the message: the lines come a moment later.
      const ignored = yield* Effect.promise(() =>
        poll("the two ignored messages in debug.log", () => {
          const lines = fs.readFileSync(path.join(runDir, "debug.log"), "utf8").split("\n").filter((line) => line.includes("ignored"))
          return lines.length === 2 ? lines : undefined
        })
      )
      expect(ignored[0]).toContain(`ignored a message from the upload service: {"_tag":{"toString":{}},"runId":"stray-run"}: cannot be read: "_tag" holds an object`)
      expect(ignored[1]).toContain(`ignored a message from the upload service: {"_tag":"Progress","runId":"stray-run","ackSeq":-1,"records":10,"done":true}: `)
      expect(ignored[1]).toContain("ackSeq")
    }))
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
    expect(await finished(child)).toEqual({ uploaded: true, records: 303, written: 303, dropped: 0 })
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
    expect(await finished(child)).toEqual({ uploaded: true, records: 303, written: 303, dropped: 0 })
    expect((await child.exited()).code).toBe(0)
    services.pids(runDir)
    expect(child.stderr()).toBe("")
  })
})
