/**
 * A steplog server for users' own tests: the real HTTP API (server/Server.ts) in this process, on
 * 127.0.0.1 and a free port, over in-memory stores, with a fresh API key. Nothing it does reaches
 * the user's machine state: the key is made before the server starts (so the server's first-start
 * step, which writes the credentials file, has nothing to do), the server's environment points at
 * a temp config dir all the same, and runs go to a temp `dir`. Closing it stops the listener, drops
 * the stores and removes its temp dir; it starts no process of its own.
 *
 * Read-backs are `GET /api/v1/…` calls with the server's key, through the API's client
 * (actors/ApiClient.ts), and answer the protocol's shapes (Wire.ts).
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as ApiClient from "../actors/ApiClient.js"
import { RunId } from "../schemas/Record.js"
import type { InitOptions } from "../schemas/Settings.js"
import { ProjectName, type History, type RunDetail } from "../schemas/Wire.js"
import * as Server from "../server/Server.js"
import { KeyStore } from "../server/store/KeyStore.js"
import type { HistoryQuery } from "../server/store/RecordStore.js"
import * as SqliteStore from "../server/store/sqlite/SqliteStore.js"

/** A running test server (see `startTestServer`). */
export interface TestServer {
  /** `http://127.0.0.1:<port>`. */
  readonly baseUrl: string
  /** A key valid for every project of this server, and no other. */
  readonly apiKey: string
  /** What to pass to `init()` (or `Steplog.layer`) so that a run uploads here: online, this server, its key, a temp `dir`. */
  readonly initOptions: InitOptions & { readonly mode: "online"; readonly baseUrl: string; readonly apiKey: string; readonly dir: string }
  /** The runs of `project`, newest first; of every project when left out. */
  readonly runs: (project?: string) => Promise<ReadonlyArray<RunDetail>>
  /** One run as `GET …/runs/:runId` shows it; undefined when the server has never heard of it. */
  readonly run: (project: string, runId: string) => Promise<RunDetail | undefined>
  /** A run's history as `GET …/history` answers it, every page of it (`{ rows }` in step order; empty for an unknown run). */
  readonly history: (project: string, runId: string, query?: HistoryQuery) => Promise<History>
  /**
   * A fresh dashboard URL with a one-time sign-in token (`${baseUrl}/?token=…`): opening it in a
   * browser (or a Playwright page) signs in to every project. Each call mints a new token, usable once.
   */
  readonly signInUrl: () => Promise<string>
  /** Stops the server and removes its temp dir (runs logged to `initOptions.dir` included). Idempotent. */
  readonly close: () => Promise<void>
}

const decodeProject = Schema.decodeUnknownSync(ProjectName)
const decodeRunId = Schema.decodeUnknownSync(RunId)

/** Builds the server in `scope`; everything it made is undone when the scope closes. */
const make = (scope: Scope.Scope): Effect.Effect<Omit<TestServer, "close">, unknown> =>
  Effect.gen(function* () {
    // Acquired first, so released last: after the listener and the stores are gone.
    const root = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "steplog-test-server-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const env = { XDG_CONFIG_HOME: path.join(root, "config"), HOME: root }
    const stores = yield* Layer.build(SqliteStore.layerMemory)
    // A key before the server starts: its first-start step only acts on a server without keys.
    const { key } = yield* Effect.flatMap(KeyStore, (keys) => keys.create({ name: "test", projects: "*" })).pipe(
      Effect.provide(stores)
    )
    const server = yield* Layer.build(
      Server.layerWith({ host: "127.0.0.1", port: 0, env, say: () => Effect.void }).pipe(Layer.provide(Layer.succeedContext(stores)))
    )
    const { baseUrl, signInUrl } = Context.get(server, Server.ServerInfo)
    const api = yield* ApiClient.make({ baseUrl, key }).pipe(Effect.provide(yield* Layer.build(NodeHttpClient.layerUndici)))
    // A read-back failing is a bug, not a result: read-backs reject with it.
    const read = <A>(effect: Effect.Effect<A, unknown>): Promise<A> => Effect.runPromise(Effect.orDie(effect))

    const runsOf = (project: ProjectName) => ApiClient.allRuns(api, project)
    return {
      baseUrl,
      apiKey: key,
      initOptions: { mode: "online", baseUrl, apiKey: key, dir: path.join(root, "runs") },
      runs: (project) =>
        read(
          project === undefined
            ? Effect.flatMap(api.query.listProjects(), ({ projects }) =>
              Effect.map(Effect.forEach(projects, ({ name }) => runsOf(name)), (lists) => lists.flat()))
            : Effect.suspend(() => runsOf(decodeProject(project)))
        ),
      run: (project, runId) =>
        read(
          Effect.suspend(() => api.query.getRun({ path: { project: decodeProject(project), runId: decodeRunId(runId) } })).pipe(
            Effect.catchTag("NotFound", () => Effect.succeed(undefined))
          )
        ),
      history: (project, runId, query = {}) =>
        read(
          Effect.gen(function* () {
            const path = { project: decodeProject(project), runId: decodeRunId(runId) }
            // Page after page (`next`), so that a long run reads back whole.
            const rows: Array<History["rows"][number]> = []
            let minStep = query.minStep
            for (;;) {
              const page = yield* api.query.history({ path, urlParams: { ...query, ...(minStep === undefined ? {} : { minStep }) } })
              rows.push(...page.rows)
              if (page.next === null) return { rows, next: null }
              minStep = page.next
            }
          }).pipe(Effect.catchTag("NotFound", () => Effect.succeed<History>({ rows: [], next: null })))
        ),
      signInUrl: () => Effect.runPromise(signInUrl)
    } satisfies Omit<TestServer, "close">
  }).pipe(Scope.extend(scope))

/**
 * Starts a test server: 127.0.0.1, a free port, in-memory storage, a fresh key. Call `close()`
 * when done (an `afterAll`), or use `SteplogTestServer.layer` under @effect/vitest.
 */
export const startTestServer = async (): Promise<TestServer> => {
  const scope = Effect.runSync(Scope.make())
  const exit = await Effect.runPromiseExit(make(scope))
  if (Exit.isFailure(exit)) {
    await Effect.runPromise(Scope.close(scope, exit))
    throw new Error(`steplog/testing: the test server did not start`, { cause: exit.cause })
  }
  let closing: Promise<void> | null = null
  return { ...exit.value, close: () => (closing ??= Effect.runPromise(Scope.close(scope, Exit.void))) }
}

/** The test server as an Effect service: `SteplogTestServer.layer` starts one for a scope and closes it after. */
export class SteplogTestServer extends Context.Tag("steplog/testing/TestServer")<SteplogTestServer, TestServer>() {
  /** A test server for the life of the layer's scope (its temp dir goes with it). */
  static readonly layer: Layer.Layer<SteplogTestServer> = Layer.scoped(
    SteplogTestServer,
    Effect.acquireRelease(Effect.promise(startTestServer), (server) => Effect.promise(server.close))
  )

  /** `runs()` of the server in context. */
  static readonly runs = (project?: string): Effect.Effect<ReadonlyArray<RunDetail>, never, SteplogTestServer> =>
    Effect.flatMap(SteplogTestServer, (server) => Effect.promise(() => server.runs(project)))

  /** `run()` of the server in context. */
  static readonly run = (project: string, runId: string): Effect.Effect<RunDetail | undefined, never, SteplogTestServer> =>
    Effect.flatMap(SteplogTestServer, (server) => Effect.promise(() => server.run(project, runId)))

  /** `history()` of the server in context. */
  static readonly history = (project: string, runId: string, query?: HistoryQuery): Effect.Effect<History, never, SteplogTestServer> =>
    Effect.flatMap(SteplogTestServer, (server) => Effect.promise(() => server.history(project, runId, query)))
}
