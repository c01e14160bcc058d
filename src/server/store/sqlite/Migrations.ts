/**
 * Brings a SQLite database to this server's layout (Schema.ts) at start, on the writer connection,
 * in the Migrator's transaction. A database with steplog tables but no migrations table is steplog
 * 0.1's layout (PRAGMA user_version): refused, left untouched. One process migrates a SQLite file
 * at a time: SQLite's write lock serialises the Migrator's transactions.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import { StoreFailed } from "../RecordStore.js"
import { migrate, MIGRATIONS_TABLE, StoreLayoutUnsupported } from "../StoreLayout.js"
import { migrations } from "./Schema.js"

/** Migrates the SqlClient's database; fails with StoreLayoutUnsupported for one from before migrations. */
export const run = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const failed = (cause: unknown) => new StoreFailed({ operation: "read the database's layout", cause })
  const [main] = yield* sql.unsafe<{ file: string }>(`PRAGMA database_list`).pipe(Effect.mapError(failed))
  const database = main?.file || ":memory:"
  const tables = new Set(
    (yield* sql.unsafe<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'`).pipe(Effect.mapError(failed))).map((t) => t.name)
  )
  if (!tables.has(MIGRATIONS_TABLE) && ["runs", "api_keys", "records"].some((name) => tables.has(name))) {
    return yield* new StoreLayoutUnsupported({ database, reason: "before-migrations" })
  }
  yield* migrate(database, migrations)
})
