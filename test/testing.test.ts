/**
 * steplog/testing as a user meets it: imported from the package ("steplog", "steplog/effect",
 * "steplog/testing", resolved to dist/ by the package's self-reference after `npm run build`), the
 * way the README's "Testing your logging" shows. The first two tests are that section's examples.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { init } from "steplog"
import { Steplog } from "steplog/effect"
import { journalHistory, startTestServer, SteplogTestServer, testRunLayer } from "steplog/testing"

/** The user's training loop under test. */
const train = (run: { log: (data: { loss: number; acc: number }) => void }, steps: number) => {
  for (let step = 0; step < steps; step++) run.log({ loss: 1 / (step + 1), acc: step / steps })
}

describe("steplog/testing with the promise API", () => {
  it("a run logged against the test server reads back row for row once finish() reports it uploaded", async () => {
    const server = await startTestServer()
    try {
      const run = await init({ ...server.initOptions, project: "mnist", config: { lr: 0.01 } })
      train(run, 50)
      // run + 50 rows + summary + exit
      expect(await run.finish()).toEqual({ uploaded: true, records: 53, written: 53, dropped: 0 })

      const { rows } = await server.history("mnist", run.id)
      expect(rows.map(({ step, values }) => ({ step, values }))).toEqual(
        Array.from({ length: 50 }, (_, step) => ({ step, values: { loss: 1 / (step + 1), acc: step / 50 } }))
      )
      expect((await server.history("mnist", run.id, { keys: ["acc"] })).rows[49]?.values).toEqual({ acc: 49 / 50 })
      expect(await server.run("mnist", run.id)).toMatchObject({ state: "finished", exitCode: 0, config: { lr: 0.01 }, records: 53 })
      expect((await server.runs()).map((r) => r.runId)).toEqual([run.id])
      expect(await server.run("mnist", "no-such-run")).toBeUndefined()
    } finally {
      await server.close()
    }
  })
})

describe("steplog/testing with Effect", () => {
  it.effect("a run under it.effect flushes to its journal when the TestClock passes the flush interval", () =>
    Effect.gen(function* () {
      const server = yield* SteplogTestServer
      const runId = yield* Effect.gen(function* () {
        const run = yield* Steplog
        for (let step = 0; step < 3; step++) yield* Steplog.log({ loss: 1 / (step + 1) })
        // Nothing is written until the flush interval has passed on the TestClock.
        expect(journalHistory(run.dir)).toEqual([])
        yield* TestClock.adjust("100 millis")
        expect(journalHistory(run.dir).map(({ step, values }) => [step, values])).toEqual([
          [0, { loss: 1 }],
          [1, { loss: 1 / 2 }],
          [2, { loss: 1 / 3 }]
        ])
        expect(yield* Steplog.finish()).toEqual({ uploaded: true, records: 6, written: 6, dropped: 0 })
        return run.id
      }).pipe(Effect.provide(testRunLayer(server, { project: "effect", flushIntervalMs: 100 })))

      const { rows } = yield* SteplogTestServer.history("effect", runId)
      expect(rows.map(({ step, values }) => [step, values])).toEqual([
        [0, { loss: 1 }],
        [1, { loss: 1 / 2 }],
        [2, { loss: 1 / 3 }]
      ])
    }).pipe(Effect.provide(SteplogTestServer.layer)))
})

/** Pids of this process's children (Linux /proc). */
const children = (): Set<number> => {
  const pids = new Set<number>()
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      if (ppid === process.pid) pids.add(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

/** The user's real credentials file, as the SDK looks for it. */
const realCredentials = path.join(process.env["XDG_CONFIG_HOME"] ?? path.join(os.homedir(), ".config"), "steplog", "credentials.json")
const snapshot = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null)

describe("startTestServer", () => {
  it("close() stops the server and leaves no process, temp dir or credentials behind", async () => {
    const credentials = snapshot(realCredentials)
    const before = children()
    const server = await startTestServer()
    const run = await init({ ...server.initOptions, mode: "offline", project: "p" })
    run.log({ loss: 1 })
    await run.finish()
    const root = path.dirname(server.initOptions.dir)
    expect(fs.existsSync(run.dir)).toBe(true)
    expect((await fetch(`${server.baseUrl}/api/v1/whoami`, { headers: { authorization: `Bearer ${server.apiKey}` } })).status).toBe(200)

    await server.close()
    await server.close()
    expect(fs.existsSync(root)).toBe(false)
    await expect(fetch(`${server.baseUrl}/api/v1/whoami`)).rejects.toThrow()
    expect(children()).toEqual(before)
    expect(snapshot(realCredentials)).toEqual(credentials)
  })

  it("signInUrl() gives a dashboard link that signs a browser in once", async () => {
    const server = await startTestServer()
    try {
      const url = await server.signInUrl()
      expect(url).toMatch(new RegExp(`^${server.baseUrl}/\\?token=[A-Za-z0-9_-]{43}$`))
      const signedIn = await fetch(url, { redirect: "manual" })
      expect(signedIn.status).toBe(303)
      const cookie = (signedIn.headers.get("set-cookie") ?? "").split(";")[0]!
      expect((await fetch(`${server.baseUrl}/api/v1/projects`, { headers: { cookie } })).status).toBe(200)
      expect((await fetch(url, { redirect: "manual" })).status).toBe(401)
      expect(await server.signInUrl()).not.toBe(url)
    } finally {
      await server.close()
    }
  })
})
