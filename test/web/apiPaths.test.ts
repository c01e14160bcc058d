/**
 * The dashboard's own fetch layer (src/web/api.ts: no bundler, so no HttpApiClient) against the
 * declared API: every request it builds is a declared endpoint's method and path, and its path
 * parameters and query decode with that endpoint's schemas. Its answers' types are checked against
 * the declaration in wire.test.ts.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import type * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import type * as HttpMethod from "@effect/platform/HttpMethod"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { afterEach, describe, expect, it, vi } from "vitest"
import { Api } from "../../src/schemas/Api.js"

/** The dashboard's fetch layer, loaded by path: its DOM types are not this project's (tsconfig.web.json). */
interface WebApi {
  readonly projects: () => Promise<unknown>
  readonly runs: (project: string, query?: object) => Promise<unknown>
  readonly run: (project: string, runId: string) => Promise<unknown>
  readonly history: (project: string, runId: string, query: object) => Promise<unknown>
  readonly output: (project: string, runId: string, after: number | undefined, limit: number) => Promise<unknown>
  readonly deleteRun: (project: string, runId: string) => Promise<unknown>
}
const webApi = "../../src/web/api.js"

const endpoints: Array<HttpApiEndpoint.HttpApiEndpoint<string, HttpMethod.HttpMethod>> = []
HttpApi.reflect(Api, { onGroup: () => {}, onEndpoint: ({ endpoint }) => void endpoints.push(endpoint) })

/** The declared endpoint a request is, with its path parameters; throws when there is none. */
const declared = (method: string, url: URL) => {
  const segments = url.pathname.split("/")
  for (const endpoint of endpoints) {
    const pattern = endpoint.path.split("/")
    if (endpoint.method !== method || pattern.length !== segments.length) continue
    const params: Record<string, string> = {}
    if (pattern.every((part, i) => (part.startsWith(":") ? ((params[part.slice(1)] = decodeURIComponent(segments[i]!)), true) : part === segments[i]))) {
      return { endpoint, params }
    }
  }
  throw new Error(`the dashboard requests ${method} ${url.pathname}, which the API does not declare`)
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe("the dashboard's fetch layer", () => {
  it("requests only declared endpoints, with paths and queries their schemas take", async () => {
    const requests: Array<{ readonly method: string; readonly url: URL }> = []
    vi.stubGlobal("fetch", async (input: string, init?: RequestInit) => {
      requests.push({ method: init?.method ?? "GET", url: new URL(input, "http://dashboard.test") })
      return new Response("{}", { status: 200, headers: { "content-type": "application/json" } })
    })
    const api = (await import(/* @vite-ignore */ webApi)) as WebApi
    await api.projects()
    await api.runs("moons")
    await api.runs("moons", { filter: 'state = finished and name ~ "a b"', sort: '-summary["val/acc"]', limit: 500 })
    await api.run("moons", "run-a")
    await api.history("moons", "run-a", {})
    await api.history("moons", "run-a", { keys: ["loss", "val/acc"], minStep: 10, maxStep: 99, samples: 400 })
    await api.output("moons", "run-a", undefined, 1_000)
    await api.output("moons", "run-a", 41, 500)
    await api.deleteRun("moons", "run-a")
    expect(requests).toHaveLength(9)

    const used = new Set<string>()
    for (const { method, url } of requests) {
      const { endpoint, params } = declared(method, url)
      used.add(endpoint.name)
      const path = Option.map(endpoint.pathSchema, (schema) => Schema.decodeUnknownEither(schema)(params))
      expect(Option.isNone(path) || Either.isRight(path.value), `${url.pathname}: ${JSON.stringify(params)}`).toBe(true)
      const query = Object.fromEntries(url.searchParams)
      const decoded: Either.Either<unknown, unknown> = Option.match(endpoint.urlParamsSchema, {
        onNone: () => (url.search === "" ? Either.right({}) : Either.left(`${endpoint.name} takes no query`)),
        onSome: (schema) => Schema.decodeUnknownEither(schema)(query)
      })
      expect(Either.isRight(decoded), `${url.pathname}${url.search}`).toBe(true)
    }
    expect([...used].sort()).toEqual(["deleteRun", "getRun", "history", "listProjects", "listRuns", "output"])
  })
})
