/**
 * `steplog server backup FILE [--data DIR]`: a consistent copy of a SQLite server's store, taken
 * while the server runs (src/server/store/sqlite/Backup.ts). A PostgreSQL store is backed up with
 * PostgreSQL's own tools; the command says how.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import { databasePath } from "../server/Server.js"
import { backup, BackupRefused } from "../server/store/sqlite/Backup.js"
import { data, database } from "./Server.js"

const file = Args.path({ name: "file", exists: "no" }).pipe(Args.withDescription("The new file to write the copy to (a SQLite database)."))

/** The `server backup` command. */
export const serverBackup = Command.make("backup", { file, data, database }, (options) =>
  Effect.gen(function* () {
    if (Option.isSome(options.database)) {
      return yield* new BackupRefused({
        detail: "a PostgreSQL store is backed up with PostgreSQL's tools: `pg_dump --format=custom --file=steplog.dump <url>`, restored into an empty database with `pg_restore --dbname=<url> steplog.dump`"
      })
    }
    const started = Date.now()
    const source = databasePath(options.data)
    const made = yield* backup(source, options.file)
    yield* Console.log(
      `backed up ${path.resolve(source)} to ${path.resolve(options.file)}: ${made.runs} runs, ${(made.bytes / 1024 / 1024).toFixed(1)} MB, ` +
        `checked, in ${((Date.now() - started) / 1000).toFixed(1)} s`
    )
  })
).pipe(
  Command.withDescription(
    "Copy a SQLite server's store (runs, keys, sessions) to a new file while the server runs, as of one moment (SQLite's online backup), and check the copy. " +
      "To restore: stop the server, then copy the file to steplog.db in its data directory (removing steplog.db-wal and steplog.db-shm). For PostgreSQL, use pg_dump."
  )
)
