/**
 * `steplog server [--host H] [--port N] [--data DIR]`: runs the tracking server in the foreground
 * until Ctrl-C, with its records and keys in DIR/steplog.db.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import * as Server from "../server/Server.js"

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

/** The data directory option, shared with `steplog keys`. */
export const data = Options.directory("data").pipe(
  Options.withDescription(`The server's data directory, created if missing; the SQLite database (records and API keys) is steplog.db inside. Default ./${Server.defaultDataDir}.`),
  Options.optional,
  Options.map(Option.getOrElse(() => Server.defaultDataDir))
)

const describeCause = (cause: unknown): string => {
  const error = (cause as { cause?: unknown }).cause ?? cause
  const code = (error as NodeJS.ErrnoException).code
  if (code === "EADDRINUSE") return "the address is already in use (another steplog server? pick another --port)"
  if (code === "EACCES") return "permission denied (ports below 1024 need privileges; pick another --port)"
  return error instanceof Error ? error.message : String(error)
}

/** The `server` command. */
export const server = Command.make("server", { host, port, data }, (options) =>
  Effect.gen(function* () {
    const { baseUrl, signInUrl } = yield* Server.ServerInfo
    yield* Console.log(`steplog server: listening on ${baseUrl}, data in ${path.resolve(Server.databasePath(options.data))} (Ctrl-C stops it)`)
    // A link only this terminal's user sees: it signs a browser in to every project, once, within 24 h.
    yield* Console.log(`steplog server: dashboard at ${yield* signInUrl}`)
    return yield* Effect.never
  }).pipe(
    Effect.provide(Server.layer({ host: options.host, port: options.port, dataDir: options.data })),
    Effect.catchAll((cause) => Effect.fail(new ServerStartFailed({ detail: describeCause(cause) })))
  )
).pipe(
  Command.withDescription(
    "Run the steplog tracking server in the foreground until Ctrl-C. It takes uploads from runs (the upload protocol, /api/v1/…) and keeps them in a SQLite database in the data directory. " +
      'On the first start of an empty server it creates an API key named "local" for every project and stores it in this machine\'s credentials file ' +
      "(~/.config/steplog/credentials.json, mode 0600) for the server's URL, so runs on this machine upload with no set-up. Manage other keys with `steplog keys`."
  )
)
