/**
 * `steplog server [--host H] [--port N] [--data DIR | --database postgres://…] [--grace-period S] [--log-level L]`:
 * runs the tracking server in the foreground until SIGTERM or Ctrl-C, with its store in
 * DIR/steplog.db (SQLite) or in a PostgreSQL database that several server processes may share.
 * Stopping lets the requests in flight finish for the grace period, closes the rest and exits 0
 * (src/server/Lifecycle.ts).
 */
import * as Command from "@effect/cli/Command"
import * as Config from "effect/Config"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as path from "node:path"
import * as Server from "../server/Server.js"
import { redact } from "../server/store/postgres/PostgresStore.js"

/** The server could not start: the address is taken, or the data directory cannot be used. */
export class ServerStartFailed extends Data.TaggedError("ServerStartFailed")<{ readonly detail: string }> {
  override get message(): string {
    return `steplog server: could not start: ${this.detail}`
  }
}

const host = Options.text("host").pipe(
  Options.withDescription("The address to listen on. Default 127.0.0.1 (this machine only); 0.0.0.0 listens on every interface."),
  Options.withDefault("127.0.0.1")
)

const port = Options.integer("port").pipe(
  Options.withDescription("The TCP port to listen on. Default 7077; 0 picks a free port (printed at start)."),
  Options.withDefault(7077)
)

const gracePeriod = Options.integer("grace-period").pipe(
  Options.withDescription("Seconds the requests in flight may go on once the server is asked to stop (SIGTERM, Ctrl-C); then the connections left are closed. Default 10."),
  Options.withFallbackConfig(Config.integer("STEPLOG_GRACE_PERIOD")),
  Options.withDefault(10),
  Options.filterMap((seconds) => (seconds >= 0 ? Option.some(seconds) : Option.none()), "the grace period is a whole number of seconds, 0 or more")
)

/** What the server prints of its log, by level; every request is an `info` line. */
const logLevel = Options.choice("log-level", ["error", "warn", "info", "debug"]).pipe(
  Options.withDescription(
    "What the server logs: error (a store that fails), warn (also a full disk, refused writes), info (also one line per request: method, path, status, ms, bytes; never a key or token), debug. Default info; also $STEPLOG_LOG_LEVEL."
  ),
  Options.withFallbackConfig(Config.literal("error", "warn", "info", "debug")("STEPLOG_LOG_LEVEL")),
  Options.withDefault("info" as const)
)

const levels = { error: LogLevel.Error, warn: LogLevel.Warning, info: LogLevel.Info, debug: LogLevel.Debug } as const

/** Set once a server asked to stop has stopped: the process then exits 0 (cli/Cli.ts). */
let stopped = false
export const stoppedAsAsked = (): boolean => stopped

/** The data directory option, shared with `steplog keys`. */
export const data = Options.directory("data").pipe(
  Options.withDescription(`The server's data directory, created if missing; the SQLite database (records and API keys) is steplog.db inside. Default ./${Server.defaultDataDir}.`),
  Options.optional,
  Options.map(Option.getOrElse(() => Server.defaultDataDir))
)

/** The PostgreSQL option, shared with `steplog keys`: --database, else STEPLOG_DATABASE_URL, else none (SQLite in --data). */
export const database = Options.text("database").pipe(
  Options.withDescription(
    "A PostgreSQL URL (postgres://user:password@host:5432/steplog) to keep the store in, instead of the SQLite file of --data; " +
      "several servers may share one database. Default: $STEPLOG_DATABASE_URL when set."
  ),
  Options.withFallbackConfig(Config.string("STEPLOG_DATABASE_URL")),
  Options.optional
)

/** Where a store is, as the server's notices say it. */
export const storeShown = (options: { readonly data: string; readonly database: Option.Option<string> }): string =>
  Option.match(options.database, {
    onNone: () => path.resolve(Server.databasePath(options.data)),
    onSome: (url) => `PostgreSQL ${redact(url)}`
  })

const describeCause = (cause: unknown): string => {
  const error = (cause as { cause?: unknown }).cause ?? cause
  const code = (error as NodeJS.ErrnoException).code
  if (code === "EADDRINUSE") return "the address is already in use (another steplog server? pick another --port)"
  if (code === "EACCES") return "permission denied (ports below 1024 need privileges; pick another --port)"
  return error instanceof Error ? error.message : String(error)
}

/** The `server` command. */
export const server = Command.make("server", { host, port, data, database, gracePeriod, logLevel }, (options) =>
  Effect.gen(function* () {
    const { baseUrl, signInUrl } = yield* Server.ServerInfo
    yield* Console.log(`steplog server: listening on ${baseUrl}, data in ${storeShown(options)} (Ctrl-C or SIGTERM stops it)`)
    // A link only this terminal's user sees: it signs a browser in to every project, once, within 24 h.
    yield* Console.log(`steplog server: dashboard at ${yield* signInUrl}`)
    return yield* Effect.never.pipe(
      Effect.onInterrupt(() => Console.log(`steplog server: stopping; requests in flight have ${options.gracePeriod} s to finish`))
    )
  }).pipe(
    Effect.provide(Server.layer({
      host: options.host,
      port: options.port,
      dataDir: options.data,
      grace: Duration.seconds(options.gracePeriod),
      accessLog: true,
      ...Option.match(options.database, { onNone: () => ({}), onSome: (url) => ({ database: url }) })
    })),
    Effect.catchAll((cause) => Effect.fail(new ServerStartFailed({ detail: describeCause(cause) }))),
    // Past the layer's release: every connection is closed and the store too.
    Effect.onInterrupt(() => Effect.zipRight(Effect.sync(() => (stopped = true)), Console.log("steplog server: stopped"))),
    Logger.withMinimumLogLevel(levels[options.logLevel])
  )
).pipe(
  Command.withDescription(
    "Run the steplog tracking server in the foreground until Ctrl-C. It takes uploads from runs (the upload protocol, /api/v1/…) and keeps them in a SQLite database in the data directory, or in PostgreSQL with --database (several servers behind a load balancer may share it). " +
      'On the first start of an empty server it creates an API key named "local" for every project and stores it in this machine\'s credentials file ' +
      "(~/.config/steplog/credentials.json, mode 0600) for the server's URL, so runs on this machine upload with no set-up. Manage other keys with `steplog keys`. " +
      "`steplog server backup` copies a SQLite store while it runs; `steplog server migrate` copies one into PostgreSQL."
  )
)
