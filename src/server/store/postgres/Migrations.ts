/**
 * Brings a PostgreSQL database to this server's layout (Schema.ts) at start. Several server
 * processes may start at once against one empty database; the Migrator alone would let each of
 * them create its migrations table and run the migrations, and all but one would fail. So each
 * process first takes a session advisory lock (MIGRATION_LOCK) on a connection of its own: one
 * migrates while the others wait, then finds nothing left to run. The lock goes with its
 * connection, so a process killed mid-migration leaves no lock behind (and its migration's
 * transaction rolled back).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import { StoreFailed } from "../RecordStore.js"
import { migrate } from "../StoreLayout.js"
import { migrations } from "./Schema.js"

/** The advisory lock key of steplog's migrations (the bytes of "steplog" as a number, for `pg_locks` readers). */
export const MIGRATION_LOCK = 0x737465706c6f67

/** Migrates the SqlClient's database, one process at a time; `database` names it in errors. */
export const run = (database: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const failed = (cause: unknown) => new StoreFailed({ operation: `lock ${database} for migrations`, cause })
      const connection = yield* sql.reserve.pipe(Effect.mapError(failed))
      yield* connection.execute(`SELECT pg_advisory_lock(${MIGRATION_LOCK})`, [], undefined).pipe(Effect.mapError(failed))
      // Runs before the connection goes back to the pool (finalizers run last-added first).
      yield* Effect.addFinalizer(() => Effect.ignore(connection.execute(`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`, [], undefined)))
      yield* migrate(database, migrations)
    })
  )
