/**
 * The real server for one HTTP test file (127.0.0.1, a free port) over the real SQLite store in
 * memory and in-memory keys, spoken to with fetch as any client would: the "local" key its first
 * start makes, keys made on demand, and what the store holds of a run, read through the store.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { Packr } from "msgpackr"
import * as zlib from "node:zlib"
import { afterAll, beforeAll, expect } from "vitest"
import { storedKey } from "../../src/actors/Credentials.js"
import type { Record, RunId } from "../../src/schemas/Record.js"
import type { ProjectName } from "../../src/schemas/Wire.js"
import * as Server from "../../src/server/Server.js"
import * as ApiKeys from "../../src/server/store/KeyStore.js"
import { RecordStore } from "../../src/server/store/RecordStore.js"
import * as SqliteStore from "../../src/server/store/sqlite/SqliteStore.js"

export const packr = new Packr({ useRecords: true })
export const MiB = 1024 * 1024

/** `value` packed as the SDK packs a batch, then gzipped. */
export const gzipped = (value: unknown): Uint8Array => zlib.gzipSync(packr.pack(value))

export const runPath = (project: string, runId: string) => `/api/v1/projects/${project}/runs/${runId}`

/** A run's opening record. */
export const runRecord = (runId: string, project: string, seq = 0): Record => ({
  kind: "run",
  seq,
  ts: 1_700_000_000_000,
  runId: runId as never,
  project,
  name: "a-run",
  config: { lr: 0.1 },
  tags: [],
  notes: null,
  group: null,
  jobType: null,
  host: "test-host",
  pid: 1,
  argv: [],
  gitCommit: null,
  sdkVersion: "0.1.0",
  resumed: false
})

/** The history record of seq `seq` (at step seq - 1, after the run record). */
export const historyRecord = (seq: number): Record => ({ kind: "history", seq, ts: 1_700_000_000_000 + seq, step: seq - 1, values: { loss: 1 / seq, acc: seq } })

/** Records `from` to `to` of a run: its opening record at seq 0, history records after. */
export const batch = (runId: string, project: string, from: number, to: number): Array<Record> =>
  Array.from({ length: to - from }, (_, i) => (from + i === 0 ? runRecord(runId, project) : historyRecord(from + i)))

/** A run's metadata as `PUT …/runs/:runId` takes it. */
export const metadata = { name: "n", config: { lr: 0.1 }, tags: ["t"], notes: null, group: null, jobType: null, host: "h", startedAt: 1_700_000_000_000 }

/** Reads a refusal and checks its shape: `{ error, detail }` as JSON, with the given status. */
export const apiError = async (response: Response, status: number): Promise<{ error: string; detail: unknown }> => {
  const body = (await response.json()) as { error: string; detail: unknown }
  expect({ status: response.status, contentType: response.headers.get("content-type") }).toEqual({ status, contentType: "application/json" })
  expect(typeof body.error).toBe("string")
  expect(body).toHaveProperty("detail")
  return body
}

/** Registers the hooks; the fields are filled in before the file's first test. */
export const useApiServer = (configDir: () => string) => {
  let runtime: ManagedRuntime.ManagedRuntime<ApiKeys.KeyStore | RecordStore | Server.ServerInfo, unknown> | undefined
  const running = () => {
    if (runtime === undefined) throw new Error("useApiServer: the server is not started; use it in a test")
    return runtime
  }
  const server = {
    baseUrl: "",
    /** The "local" key of the first start: every project. */
    key: "",
    /** A fresh key named `name` for `projects`. */
    createKey: async (name: string, projects: ApiKeys.KeyScope) =>
      (await running().runPromise(Effect.flatMap(ApiKeys.KeyStore, (keys) => keys.create({ name, projects })))).key,
    revokeKey: (name: string) => running().runPromise(Effect.flatMap(ApiKeys.KeyStore, (keys) => keys.revoke(name))),
    signInUrl: () => running().runPromise(Effect.flatMap(Server.ServerInfo, (info) => info.signInUrl)),
    /** What the store holds of a run, read through the store: its detail, history and output; undefined when it has none. */
    held: (project: string, runId: string) =>
      running().runPromise(
        Effect.gen(function* () {
          const store = yield* RecordStore
          const [p, r] = [project as ProjectName, runId as RunId]
          const run = yield* store.getRun(p, r)
          if (Option.isNone(run)) return undefined
          const history = Option.getOrThrow(yield* store.history(p, r, {}))
          const output = Option.getOrThrow(yield* store.output(p, r, { after: -1, limit: 10_000 }))
          return { run: run.value, rows: history.rows, lines: output.lines }
        })
      ),
    /** A request to the server, with the "local" key unless `key` says otherwise (null: none). */
    api: (path: string, init: RequestInit & { readonly key?: string | null } = {}) => {
      const { key = server.key, headers, ...rest } = init
      return fetch(`${server.baseUrl}${path}`, {
        ...rest,
        headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...(headers as globalThis.Record<string, string> | undefined) }
      })
    },
    /** POSTs a records body (gzip unless the headers say otherwise). */
    postRecords: (project: string, runId: string, body: Uint8Array, headers: globalThis.Record<string, string> = { "content-encoding": "gzip" }, key?: string | null) =>
      server.api(`${runPath(project, runId)}/records`, {
        method: "POST",
        body,
        headers: { "content-type": "application/msgpack", ...headers },
        ...(key !== undefined ? { key } : {})
      })
  }
  beforeAll(async () => {
    const env = { XDG_CONFIG_HOME: configDir() }
    const stores = SqliteStore.layerMemory
    runtime = ManagedRuntime.make(Server.layerWith({ port: 0, env, say: () => Effect.void }).pipe(Layer.provideMerge(stores)))
    server.baseUrl = (await runtime.runPromise(Server.ServerInfo)).baseUrl
    server.key = storedKey(server.baseUrl, env) ?? ""
  })
  afterAll(async () => {
    await runtime?.dispose()
  })
  return server
}
