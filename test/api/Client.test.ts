/**
 * steplog/api against a test server on 127.0.0.1 with runs logged online: the runs listing
 * filtered, sorted and paged on the server, one run, its history, a deletion, and every failure as
 * a SteplogApiError naming what was wrong.
 */
import { init } from "steplog"
import { connect, type SteplogApi, SteplogApiError } from "steplog/api"
import { startTestServer, type TestServer } from "steplog/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

let server: TestServer
let api: SteplogApi
const project = "sweep"
/** Run ids by learning rate. */
const ids = new Map<number, string>()

beforeAll(async () => {
  server = await startTestServer()
  for (const [lr, acc] of [[0.1, 0.6], [0.03, 0.8], [0.01, 0.93], [0.003, 0.91], [0.001, 0.85]] as const) {
    const run = await init({ ...server.initOptions, project, config: { lr }, tags: lr < 0.01 ? ["small"] : [] })
    for (let step = 0; step < 20; step++) run.log({ loss: 1 / (step + 1) / lr })
    run.summary.set({ "val/acc": acc })
    expect(await run.finish()).toMatchObject({ uploaded: true })
    ids.set(lr, run.id)
  }
  api = await connect({ baseUrl: server.baseUrl, apiKey: server.apiKey })
})

afterAll(async () => {
  await api?.close()
  await server?.close()
})

const lrOf = (run: { readonly config: { readonly [key: string]: unknown } }) => run.config["lr"]

describe("steplog/api", () => {
  it("answers the best runs a filter keeps, sorted on the server", async () => {
    const best = await api.runs(project, { filter: "config.lr < 0.05 and state = finished", sort: '-summary["val/acc"]', limit: 2 })
    expect(best.runs.map(lrOf)).toEqual([0.01, 0.003])
    expect(best.next).toEqual(expect.any(String))
    const rest = await api.runs(project, { filter: "config.lr < 0.05 and state = finished", sort: '-summary["val/acc"]', limit: 2, cursor: best.next! })
    expect(rest.runs.map(lrOf)).toEqual([0.001, 0.03])
    expect(rest.next).toBeUndefined()
    expect((await api.allRuns(project, { filter: "tags has small", sort: "config.lr" })).map(lrOf)).toEqual([0.001, 0.003])
    expect((await api.projects()).map((p) => p.name)).toContain(project)
  })

  it("reads a run and its history", async () => {
    const runId = ids.get(0.01)!
    const run = await api.run(project, runId)
    expect([run.state, run.historyRows, run.summary["val/acc"]]).toEqual(["finished", 20, 0.93])
    const history = await api.history(project, runId, { keys: ["loss"], minStep: 5, maxStep: 7 })
    expect(history.rows.map((row) => [row.step, row.values["loss"]])).toEqual([[5, 1 / 6 / 0.01], [6, 1 / 7 / 0.01], [7, 1 / 8 / 0.01]])
    expect((await api.whoami()).projects).toBe("*")
  })

  it("rejects with a SteplogApiError naming what was wrong", async () => {
    const refusal = (promise: Promise<unknown>) => promise.then(() => expect.fail("it resolved"), (error: unknown) => {
      expect(error).toBeInstanceOf(SteplogApiError)
      return error as SteplogApiError
    })
    expect(await refusal(api.run(project, "no-such-run"))).toMatchObject({ status: 404, error: "not_found" })
    const badFilter = await refusal(api.runs(project, { filter: "config.lr <" }))
    expect([badFilter.status, badFilter.error]).toEqual([0, "bad_query"])
    expect(badFilter.message).toMatch(/a value \(a number.*at character 12/)
    expect(await refusal(api.runs("../etc"))).toMatchObject({ error: "bad_query" })
    const stranger = await connect({ baseUrl: server.baseUrl, apiKey: "slk_not-a-key" })
    expect(await refusal(stranger.projects())).toMatchObject({ status: 401, error: "unauthorized" })
    await stranger.close()
    const nobody = await connect({ baseUrl: "http://127.0.0.1:1", apiKey: "slk_x" })
    expect(await refusal(nobody.projects())).toMatchObject({ status: 0, error: "unreachable" })
    await nobody.close()
  })

  it("deletes a run", async () => {
    const runId = ids.get(0.1)!
    expect(await api.deleteRun(project, runId)).toMatchObject({ runId, historyRows: 20 })
    expect((await api.allRuns(project)).map((run) => run.runId)).not.toContain(runId)
  })
})
