/**
 * The `steplog` command, run when main.ts imports it. Each subcommand is one module of this
 * folder; this file only lists them and turns how a command ended into the exit status, the same
 * for every command (0 done, 1 damage found, 2 could not be done, 70 a bug: see `footer`).
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { STEPLOG_VERSION } from "../schemas/Version.js"
import { exportRun } from "./Export.js"
import { inspect } from "./Inspect.js"
import { keys } from "./Keys.js"
import { login } from "./Login.js"
import { runs } from "./Runs.js"
import { server, stoppedAsAsked } from "./Server.js"
import { serverBackup } from "./ServerBackup.js"
import { serverMigrate } from "./ServerMigrate.js"
import { sync } from "./Sync.js"


const steplog = Command.make("steplog").pipe(
  Command.withDescription(
    "Experiment tracking for TypeScript and Node.js. A run writes every record it logs to journal.slog in its run directory. `inspect` reads a journal on disk; `server` and `keys` run and manage a tracking server; `login` stores a key for one; `sync` uploads runs on disk to one; `runs` lists (and `runs delete` deletes) the runs it holds, and `export` reads one out. Run `steplog <command> --help` for a command's arguments and options."
  ),
  Command.withSubcommands([inspect, server.pipe(Command.withSubcommands([serverBackup, serverMigrate])), keys, login, sync, runs, exportRun])
)

// Printed under every command's --help: the exit statuses are the same for all of them.
const footer = HelpDoc.sequence(
  HelpDoc.h1("EXIT STATUS"),
  HelpDoc.descriptionList([
    [Span.text("0"), HelpDoc.p("Done; nothing wrong found.")],
    [Span.text("1"), HelpDoc.p("Done, and damage was found (reported on stderr).")],
    [Span.text("2"), HelpDoc.p("Could not be done: a file cannot be read (missing, not a steplog journal, a newer format), the server cannot be reached or refused the request, or the command line is wrong.")],
    [Span.text("70"), HelpDoc.p("A bug in steplog; please report it with the error printed.")]
  ])
)

const cli = Command.run(steplog, { name: "steplog", version: STEPLOG_VERSION, footer })

const exitStatus = cli(process.argv).pipe(
  Effect.as(0),
  Effect.catchTags({
    JournalDamaged: () => Effect.succeed(1),
    JournalUnreadable: (error) => Console.error(error.message).pipe(Effect.as(2)),
    ServerStartFailed: (error) => Console.error(error.message).pipe(Effect.as(2)),
    NoServerDatabase: (error) => Console.error(error.message).pipe(Effect.as(2)),
    KeyNotFound: (error) => Console.error(error.message).pipe(Effect.as(2)),
    KeyNameTaken: (error) => Console.error(error.message).pipe(Effect.as(2)),
    StoreFailed: (error) => Console.error(error.message).pipe(Effect.as(2)),
    StoreLayoutUnsupported: (error) => Console.error(`steplog: ${error.message}`).pipe(Effect.as(2)),
    ServerRequestFailed: (error) => Console.error(error.message).pipe(Effect.as(2)),
    SyncFailed: (error) => Console.error(error.message).pipe(Effect.as(2)),
    NoRunsNamed: (error) => Console.error(error.message).pipe(Effect.as(2)),
    DeleteNotConfirmed: (error) => Console.error(error.message).pipe(Effect.as(2)),
    RunsOptionsInvalid: (error) => Console.error(error.message).pipe(Effect.as(2)),
    BackupRefused: (error) => Console.error(error.message).pipe(Effect.as(2)),
    CopyRefused: (error) => Console.error(error.message).pipe(Effect.as(2))
  }),
  // @effect/cli has already printed what is wrong with the command line, with the usage.
  Effect.catchIf(ValidationError.isValidationError, () => Effect.succeed(2))
)

exitStatus.pipe(
  // exitCode rather than process.exit: the process ends by itself once stdout has drained into a
  // pipe, so the last lines of a long listing are never cut off.
  Effect.flatMap((status) => Effect.sync(() => (process.exitCode = status))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    // SIGINT or SIGTERM: 130, but for a server that stopped as asked, for which stopping is done.
    teardown: (exit, onExit) =>
      onExit(Exit.isSuccess(exit) ? 0 : Cause.isInterruptedOnly(exit.cause) ? (stoppedAsAsked() ? 0 : 130) : 70)
  })
)
