/**
 * The PostgreSQL store on the test run's embedded cluster (test/support/postgresCluster.ts), a
 * fresh database per suite: the contract suites every backend passes, then real `steplog`
 * processes sharing one database: three servers starting at once on an empty one (one migrates,
 * each answers with the key another made), and `steplog keys` pointed at it by flag or environment;
 * and two stores on one database, as two server processes have them, reading what the other wrote.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import { credentialsPath } from "../../../src/actors/Credentials.js"
import type { HistoryRecord, RunId } from "../../../src/schemas/Record.js"
import type { ProjectName } from "../../../src/schemas/Wire.js"
import * as PostgresStore from "../../../src/server/store/postgres/PostgresStore.js"
import { RecordStore } from "../../../src/server/store/RecordStore.js"
import { killChildren, startNode } from "../../support/child.js"
import { freshDatabase, withFreshDatabase } from "../../support/postgres.js"
import { useTempDir } from "../../support/tempDir.js"
import { steplogCli } from "../../support/testServer.js"
import { keyStoreContract } from "../KeyStore.contract.js"
import { recordStoreContract } from "../RecordStore.contract.js"
import { sessionsContract } from "../SessionStore.contract.js"

const store = withFreshDatabase("contract", PostgresStore.layer)
recordStoreContract("PostgreSQL", store)
keyStoreContract("PostgreSQL", store)
sessionsContract("PostgreSQL", store)

const temp = useTempDir("postgres-store")
const main = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "dist", "cli", "main.js")

/** Rows of a query on the database of `url`. */
const query = (url: string, text: string) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(url) }), (sql) => sql.unsafe(text))).pipe(Effect.provide(Reactivity.layer))
  )

afterEach(killChildren)

describe("PostgreSQL store, real processes", () => {
  it("migrates an empty database once when three servers start on it at once, and each answers with the one key made", async () => {
    const url = await freshDatabase("three servers")
    const config = temp.file("config")
    const env = { ...process.env, XDG_CONFIG_HOME: config, HOME: config }
    const servers = [0, 1, 2].map(() => startNode(main, ["server", "--database", url, "--port", "0"], env, temp.dir()))
    const baseUrls = await Promise.all(servers.map(async (server) => /listening on (http:\/\/[^\s,]+)/.exec(await server.waitForLine((line) => line.includes("listening on"), 30_000))![1]!))
    for (const server of servers) expect(server.lines.join("\n")).toContain("data in PostgreSQL postgres://postgres:***@")
    expect(await query(url, `SELECT migration_id, name FROM steplog_migrations`)).toEqual([{ migration_id: 1, name: "layout" }, { migration_id: 2, name: "deleted_runs" }, { migration_id: 3, name: "chunk_versions" }])
    // One of them made the "local" key (the others found it made) and stored it for its own URL.
    expect(await query(url, `SELECT name FROM api_keys`)).toEqual([{ name: "local" }])
    const stored = Object.values((JSON.parse(fs.readFileSync(credentialsPath(env), "utf8")) as { keys: { [url: string]: string } }).keys)
    expect(stored).toHaveLength(1)
    for (const baseUrl of baseUrls) {
      const whoami = await fetch(`${baseUrl}/api/v1/whoami`, { headers: { authorization: `Bearer ${stored[0]}` } })
      expect([whoami.status, await whoami.json()]).toEqual([200, expect.objectContaining({ name: "local", projects: "*" })])
    }
  })

  it("keeps acknowledged commits synced: a database whose default is synchronous_commit=off still gets on", async () => {
    const url = await freshDatabase("durable")
    const database = new URL(url).pathname.slice(1)
    await query(url, `ALTER DATABASE "${database}" SET synchronous_commit = off`)
    const config = temp.file("config")
    // The store refuses to start on a connection that says otherwise; this one starts and serves.
    const created = await steplogCli(["keys", "create", "--project", "*", "--name", "ci"], { STEPLOG_DATABASE_URL: url, XDG_CONFIG_HOME: config })
    expect([created.status, created.stderr]).toEqual([0, expect.stringContaining(`created the API key "ci"`)])
    const listed = await steplogCli(["keys", "list", "--database", url], { XDG_CONFIG_HOME: config })
    expect(listed.stdout).toMatch(/\bci\s+\*/)
    expect(await query(url, `SELECT name FROM api_keys`)).toEqual([{ name: "ci" }])
  })
})

describe("PostgreSQL stores of two server processes on one database", () => {
  it("answer a sampled read with what the other stored since: what one keeps of a run's chunks between reads is used only while they are unchanged", async () => {
    const url = await freshDatabase("two stores")
    const [writer, reader] = [ManagedRuntime.make(PostgresStore.layer(url)), ManagedRuntime.make(PostgresStore.layer(url))]
    try {
      const project = "replicas" as ProjectName
      const runId = "live" as RunId
      const rowsAt = (from: number, to: number, value: (step: number) => number): Array<HistoryRecord> =>
        Array.from({ length: to - from }, (_, i) => ({ kind: "history", seq: from + i, ts: from + i, step: from + i, values: { loss: value(from + i) } }))
      const ingest = (records: ReadonlyArray<HistoryRecord>) => writer.runPromise(Effect.flatMap(RecordStore, (store) => store.ingest(project, runId, records)))
      const sampled = (samples: number) =>
        reader.runPromise(Effect.flatMap(RecordStore, (store) => store.history(project, runId, { samples }))).then((found) => Option.getOrThrow(found).rows)
      await ingest(rowsAt(0, 4_000, (step) => step))
      // Narrow buckets (every entry) and wide ones (block summaries), read once to be kept.
      expect((await sampled(4_000)).map((row) => row.values["loss"])).toEqual(Array.from({ length: 4_000 }, (_, step) => step))
      expect((await sampled(20)).at(-1)).toMatchObject({ step: 3_999, max: { loss: 3_999 } })
      // The writer's process stores more, and a later record at a stored step of an old chunk.
      await ingest([...rowsAt(4_000, 6_000, (step) => step), { kind: "history", seq: 6_000, ts: 6_000, step: 10, values: { loss: -1 } }])
      const every = await sampled(6_000)
      expect(every.map((row) => row.values["loss"])).toEqual(Array.from({ length: 6_000 }, (_, step) => (step === 10 ? -1 : step)))
      const wide = await sampled(20)
      expect(wide[0]).toMatchObject({ min: { loss: -1 } })
      expect(wide.at(-1)).toMatchObject({ step: 5_999, max: { loss: 5_999 } })
      // Read again as it was: kept. Then a later record at a stored step, and the same read: the
      // buckets over the chunk it rewrote are made again, the others kept.
      const kept = await sampled(1_000)
      expect(await sampled(1_000)).toEqual(kept)
      await ingest([{ kind: "history", seq: 6_001, ts: 6_001, step: 2_500, values: { loss: -2 } }])
      const remade = await sampled(1_000)
      expect(remade.find((row) => row.step >= 2_500)).toMatchObject({ min: { loss: -2 } })
      expect(remade.filter((row) => row.step < 2_048 || row.step >= 3_072)).toEqual(kept.filter((row) => row.step < 2_048 || row.step >= 3_072))
      // A server of an older steplog rewrites a chunk without counting its version (here: step
      // 5,120's value becomes 0): its xmin tells.
      await query(url, `UPDATE history_chunks SET vals = overlay(vals placing '\\x0000000000000000'::bytea from 1 for 8) WHERE chunk = 5`)
      expect((await sampled(1_000)).find((row) => row.step >= 5_120)).toMatchObject({ min: { loss: 0 } })
    } finally {
      await Promise.all([writer.dispose(), reader.dispose()])
    }
  })
})
