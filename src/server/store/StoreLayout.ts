/**
 * How a store's tables come to be: numbered migrations (each backend's Schema.ts), run by
 * @effect/sql's Migrator at start, which records each one it ran in `steplog_migrations`. A
 * database this server cannot read as it is gets StoreLayoutUnsupported at start, never a misread:
 * one with steplog tables from before migrations (steplog 0.1's PRAGMA user_version layout), or one
 * a newer steplog migrated further than this one knows.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { StoreFailed } from "./RecordStore.js"

/** The table where the Migrator records the migrations it ran. */
export const MIGRATIONS_TABLE = "steplog_migrations"

/** The database holds steplog data this server cannot read as it is; refused at start. */
export class StoreLayoutUnsupported extends Data.TaggedError("StoreLayoutUnsupported")<{
  /** The SQLite file, or the PostgreSQL database's name. */
  readonly database: string
  readonly reason: "before-migrations" | "newer"
  /** For "newer": the highest migration the database had, and the highest this server knows. */
  readonly migration?: number
  readonly known?: number
}> {
  override get message(): string {
    if (this.reason === "newer") {
      return `the database ${this.database} was migrated by a newer steplog (migration ${this.migration}; this server knows ` +
        `migrations up to ${this.known}). Upgrade steplog on this machine (npm install steplog@latest) before starting it on this database.`
    }
    const dir = path.isAbsolute(this.database) ? ` (--data <new dir>, not ${path.dirname(this.database)})` : ""
    return `the database ${this.database} holds steplog data in a layout from before migrations (steplog 0.1); this server ` +
      `cannot read it. Start it with a new database${dir} and upload the runs again from their run directories with \`steplog sync <run dir>\`.`
  }
}

/**
 * Runs `migrations` ({ "0001_name": effect }) that the database has not had yet; fails with
 * StoreLayoutUnsupported when it had one past the last of them. The caller refuses a database from
 * before migrations first (that check differs by backend) and serialises processes (PostgreSQL).
 */
export const migrate = (database: string, migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const known = Math.max(...Object.keys(migrations).map((name) => Number(name.slice(0, name.indexOf("_")))))
    // The Migrator runs only the migrations past the database's latest: a newer database is left as it is.
    yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE }).pipe(
      Effect.mapError((cause) => new StoreFailed({ operation: `migrate ${database}`, cause }))
    )
    const [found] = yield* sql.unsafe<{ latest: number }>(`SELECT MAX(migration_id) AS latest FROM ${MIGRATIONS_TABLE}`).pipe(
      Effect.mapError((cause) => new StoreFailed({ operation: `migrate ${database}`, cause }))
    )
    const latest = Number(found?.latest ?? 0)
    if (latest > known) return yield* new StoreLayoutUnsupported({ database, reason: "newer", migration: latest, known })
  })
