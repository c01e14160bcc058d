/**
 * A steplog server in the test process for one test file: 127.0.0.1, a free port, an in-memory
 * SQLite store, the "local" key its first start makes, a count of the batches it ingested, a gate that
 * holds ingests (a server slow to acknowledge, for as long as a test needs), and `signInUrl()`
 * for a one-time dashboard sign-in link. Also
 * the built CLI, run as a child that does not block this process (whose event loop serves it).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, afterEach, beforeAll } from "vitest"
import { storedKey } from "../../src/actors/Credentials.js"
import * as Server from "../../src/server/Server.js"
import type { Stores } from "../../src/server/store/internal/stores.js"
import { RecordStore } from "../../src/server/store/RecordStore.js"
import * as SqliteStore from "../../src/server/store/sqlite/SqliteStore.js"
import { startNode, type Child } from "./child.js"

/** Registers the hooks; the fields are filled in before the file's first test. */
export const useTestServer = (configDir: () => string) => {
  let runtime: ManagedRuntime.ManagedRuntime<Stores | Server.ServerInfo, unknown> | undefined
  let holding = false
  const held = new Set<() => void>()
  const server = {
    baseUrl: "",
    key: "",
    ingests: 0,
    /** While closed, every ingest waits (its POST unanswered) until the gate opens; open after each test. */
    ingestGate: {
      close: (): void => {
        holding = true
      },
      /** Ingests waiting now. */
      waiting: (): number => held.size,
      open: (): void => {
        holding = false
        for (const release of [...held]) release()
      }
    },
    /** A fresh dashboard URL with a one-time sign-in token. */
    signInUrl: (): Promise<string> =>
      runtime === undefined
        ? Promise.reject(new Error("useTestServer: signInUrl() before the server started; call it in a test"))
        : runtime.runPromise(Effect.flatMap(Server.ServerInfo, (info) => info.signInUrl))
  }
  const gate = Effect.async<void>((resume) => {
    const release = () => {
      held.delete(release)
      resume(Effect.void)
    }
    held.add(release)
    return Effect.sync(() => held.delete(release))
  })
  // The store with its ingest counted and gated.
  const counting = Layer.effectContext(
    Effect.map(Effect.context<Stores>(), (stores) => {
      const store = Context.get(stores, RecordStore)
      return Context.add(stores, RecordStore, {
        ...store,
        ingest: (project, runId, records) =>
          Effect.suspend(() => (holding ? gate : Effect.void)).pipe(
            Effect.zipRight(Effect.suspend(() => (server.ingests++, store.ingest(project, runId, records))))
          )
      })
    })
  ).pipe(Layer.provide(SqliteStore.layerMemory))
  beforeAll(async () => {
    const env = { XDG_CONFIG_HOME: configDir() }
    runtime = ManagedRuntime.make(
      Server.layerWith({ port: 0, env, say: () => Effect.void }).pipe(Layer.provideMerge(counting))
    )
    server.baseUrl = (await runtime.runPromise(Server.ServerInfo)).baseUrl
    server.key = storedKey(server.baseUrl, env) ?? ""
  })
  afterEach(() => server.ingestGate.open())
  afterAll(async () => {
    await runtime?.dispose()
  })
  return server
}

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "cli", "main.js")

/** Runs the built `steplog` CLI with `env` over this environment; resolves when it exits. */
export const steplogCli = (args: ReadonlyArray<string>, env: { readonly [name: string]: string } = {}) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { env: { ...process.env, ...env } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

/** Starts the built `steplog` CLI on a pseudo-terminal, with `env` over this environment; `killChildren` ends it. */
export const steplogInTerminal = (args: ReadonlyArray<string>, env: { readonly [name: string]: string } = {}): Child =>
  startNode(main, args, { ...process.env, ...env }, process.cwd(), { terminal: true })
