/**
 * A steplog server in the test process for one test file: 127.0.0.1, a free port, in-memory
 * stores, the "local" key its first start makes, a count of the batches it ingested, and
 * `signInUrl()` for a one-time dashboard sign-in link. Also
 * the built CLI, run as a child that does not block this process (whose event loop serves it).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"
import { storedKey } from "../../src/runtime/Credentials.js"
import * as ApiKeys from "../../src/server/ApiKeys.js"
import { RecordStore } from "../../src/server/RecordStore.js"
import * as Server from "../../src/server/Server.js"
import { makeMemoryRecordStore } from "../server/MemoryRecordStore.js"

/** Registers the hooks; the fields are filled in before the file's first test. */
export const useTestServer = (configDir: () => string) => {
  const memory = makeMemoryRecordStore()
  let runtime: ManagedRuntime.ManagedRuntime<ApiKeys.KeyStore | Server.ServerInfo, unknown> | undefined
  const server = {
    baseUrl: "",
    key: "",
    ingests: 0,
    memory,
    /** A fresh dashboard URL with a one-time sign-in token. */
    signInUrl: (): Promise<string> =>
      runtime === undefined
        ? Promise.reject(new Error("useTestServer: signInUrl() before the server started; call it in a test"))
        : runtime.runPromise(Effect.flatMap(Server.ServerInfo, (info) => info.signInUrl))
  }
  const counting = Layer.succeed(RecordStore, {
    ...memory.store,
    ingest: (project, runId, records) => Effect.suspend(() => (server.ingests++, memory.store.ingest(project, runId, records)))
  })
  beforeAll(async () => {
    const env = { XDG_CONFIG_HOME: configDir() }
    runtime = ManagedRuntime.make(
      Server.layerWith({ port: 0, env, say: () => Effect.void }).pipe(Layer.provideMerge(Layer.merge(counting, ApiKeys.layerMemory)))
    )
    server.baseUrl = (await runtime.runPromise(Server.ServerInfo)).baseUrl
    server.key = storedKey(server.baseUrl, env) ?? ""
  })
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
