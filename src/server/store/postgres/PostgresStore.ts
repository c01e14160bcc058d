/**
 * The PostgreSQL store: RecordStore, KeyStore and Sessions in one database, for several server
 * processes behind a load balancer. Through @effect/sql-pg (node-postgres, a pool of
 * POOL_CONNECTIONS): the shared code's `?` statements numbered as `$n`, reads and writes on the
 * pool. Processes share nothing but the database: ingests of one run take turns on its row lock
 * (`FOR UPDATE`), a process's cached ingest state is checked against the row's version
 * (../internal/ingest.ts), and sessions and keys are rows like the rest.
 *
 * Durability: every connection starts with `synchronous_commit=on` (a startup option, whatever the
 * server's or the database's default), and the store refuses to start if a connection says
 * otherwise: a commit is flushed to the WAL on disk before ingest answers, so an acknowledged batch
 * survives a crash of the database machine.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { makeStores, type Stores } from "../internal/stores.js"
import { type Statement, type StoreSql, transactionOf } from "../internal/sql.js"
import { StoreFailed } from "../RecordStore.js"
import type { StoreLayoutUnsupported } from "../StoreLayout.js"
import * as Migrations from "./Migrations.js"

/** Connections a server process holds at most: ingests (of different runs, up to CONCURRENT_INGESTS at once) and reads share them. */
const POOL_CONNECTIONS = 10
const CONCURRENT_INGESTS = 4

/** The connection URL with `synchronous_commit=on` added to the startup options it may already carry. */
const durable = (url: URL): URL => {
  const out = new URL(url)
  out.searchParams.set("options", [url.searchParams.get("options"), "-c synchronous_commit=on"].filter(Boolean).join(" "))
  return out
}

/** The URL as it may be shown: without its password. */
export const redact = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "<not a URL>"
  }
}

/** `?` placeholders numbered as PostgreSQL's `$1, $2, …` (the shared statements hold no other `?`). */
const numberPlaceholders = (text: string): string => {
  let n = 0
  return text.replace(/\?/g, () => `$${++n}`)
}
/** `numberPlaceholders`, each text once: a store has few statement texts. */
const numbered = new Map<string, string>()
const toPg = (text: string): string => {
  let out = numbered.get(text)
  if (out === undefined) numbered.set(text, (out = numberPlaceholders(text)))
  return out
}

/** Bound parameters PostgreSQL takes in one statement. */
const MAX_PARAMS = 65_535

/**
 * StoreSql.writeAll: the statements as one, the others WITH clauses before the last (data-modifying
 * CTEs, all run whether or not the last reads them), as many at once as PostgreSQL's parameter
 * limit allows. Numbered here, not through `toPg`'s cache: their combinations are many.
 */
const writeAll = (client: PgClient.PgClient) => (statements: ReadonlyArray<Statement>) =>
  Effect.gen(function* () {
    let rows: ReadonlyArray<any> = []
    for (let at = 0; at < statements.length;) {
      let end = at + 1
      let params = statements[at]!.params.length
      while (end < statements.length && params + statements[end]!.params.length <= MAX_PARAMS) params += statements[end++]!.params.length
      const group = statements.slice(at, end)
      const last = group.pop()!
      const text = [...group.map((statement, i) => `${i === 0 ? "WITH" : ","} w${i} AS (${statement.text})`), last.text].join(" ")
      rows = yield* client.unsafe(numberPlaceholders(text), [...group.flatMap((statement) => statement.params), ...last.params])
      at = end
    }
    return rows
  })

/**
 * A client of the PostgreSQL database of `url` (postgres://user:password@host:port/database),
 * durable (synchronous_commit=on, checked) and migrated: what the store is built on, and what
 * `steplog server migrate` copies into. Closed with its scope.
 */
export const connect = (url: string): Effect.Effect<PgClient.PgClient, StoreFailed | StoreLayoutUnsupported, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function* () {
    const shown = redact(url)
    const parsed = yield* Effect.try({ try: () => new URL(url), catch: (cause) => new StoreFailed({ operation: `read the database URL ${shown}`, cause }) })
    const client = yield* PgClient.make({
      url: Redacted.make(durable(parsed).toString()),
      maxConnections: POOL_CONNECTIONS,
      applicationName: "steplog server"
    }).pipe(Effect.mapError((cause) => new StoreFailed({ operation: `connect to ${shown}`, cause })))
    const [setting] = yield* client.unsafe<{ synchronous_commit: string }>(`SHOW synchronous_commit`).pipe(
      Effect.mapError((cause) => new StoreFailed({ operation: `read synchronous_commit of ${shown}`, cause }))
    )
    if (setting?.synchronous_commit !== "on") {
      return yield* new StoreFailed({ operation: `open ${shown}`, cause: `synchronous_commit is ${setting?.synchronous_commit}, not on: acknowledged batches would not be durable` })
    }
    const database = decodeURIComponent(parsed.pathname.slice(1)) || "postgres"
    yield* Effect.provideService(Migrations.run(database), SqlClient.SqlClient, client)
    return client
  })

/** The store in the PostgreSQL database of `url`, migrated at start. */
export const layer = (url: string): Layer.Layer<Stores, StoreFailed | StoreLayoutUnsupported> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const client = yield* connect(url)
      const sql: StoreSql = {
        write: (text, params = []) => client.unsafe(toPg(text), params),
        writeAll: writeAll(client),
        read: (text, params = []) => client.unsafe(toPg(text), params),
        writeTransaction: transactionOf(client),
        concurrentWrites: CONCURRENT_INGESTS,
        synced: Effect.void,
        // At READ COMMITTED each statement reads a snapshot of its own, in a transaction or not:
        // BEGIN and COMMIT would be two round trips for nothing.
        readTransaction: (effect) => effect,
        lockRow: " FOR UPDATE",
        chunkStamp: `h.xmin::text || '/' || h.version::text`,
        blobsInProcess: false
      }
      return yield* makeStores(sql)
    })
  ).pipe(Layer.provide(Reactivity.layer))
