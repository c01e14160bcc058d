/**
 * `steplog server migrate --from DIR --to postgres://…`: copies a SQLite server's store into
 * PostgreSQL (src/server/store/CopyToPostgres.ts), run by run, verified by counts, and safe to run
 * again: what was copied whole is left alone.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { databasePath, defaultDataDir } from "../server/Server.js"
import { copyToPostgres } from "../server/store/CopyToPostgres.js"
import { redact } from "../server/store/postgres/PostgresStore.js"

const from = Options.directory("from", { exists: "yes" }).pipe(
  Options.withDescription(`The SQLite server's data directory (steplog.db inside). Default ./${defaultDataDir}.`),
  Options.withDefault(defaultDataDir)
)

const to = Options.text("to").pipe(
  Options.withDescription("The PostgreSQL database to copy into (postgres://user:password@host:5432/steplog), migrated first if new. Default: $STEPLOG_DATABASE_URL."),
  Options.withFallbackConfig(Config.string("STEPLOG_DATABASE_URL"))
)

/** The `server migrate` command. */
export const serverMigrate = Command.make("migrate", { from, to }, (options) =>
  Effect.gen(function* () {
    const started = Date.now()
    const source = databasePath(options.from)
    yield* Console.log(`copying ${path.resolve(source)} into PostgreSQL ${redact(options.to)}`)
    const report = yield* copyToPostgres({ from: source, to: options.to, say: (line) => Console.log(`  ${line}`) })
    for (const skipped of report.keysSkipped) yield* Console.log(`  key ${skipped}: not copied`)
    const rows = Object.entries(report.rows).map(([table, [inSource, inTarget]]) => `${table} ${inSource}${inSource === inTarget ? "" : ` (PostgreSQL: ${inTarget})`}`)
    yield* Console.log(
      `done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${report.runsCopied} runs copied, ${report.runsCopiedAgain} copied again, ${report.runsAlreadyThere} already there, ${report.runsRemoved} removed; ` +
        `${report.keysCopied} keys, ${report.sessions} sessions and sign-in tokens, ${report.deletedRuns} deleted run ids; rows checked: ${rows.join(", ")}`
    )
  })
).pipe(
  Command.withDescription(
    "Copy a SQLite server's store (runs and all their data, API keys, dashboard sessions, deleted run ids) into PostgreSQL, run by run, each checked by counting its rows on both sides. " +
      "Safe to stop and run again: runs copied whole are left alone, runs written to since are copied again. Stop the SQLite server and run it once more at the end to take its last batches; then start `steplog server --database <url>`."
  )
)
