/**
 * `steplog sync [RUN_DIR…] [--all] [--dir DIR] [--base-url URL]`: uploads runs that are on disk
 * (offline runs, runs whose upload was cut short) to a server, one at a time, with RunUpload.ts.
 * Resumable: each run's `upload.cursor` says what the server already acknowledged, so a second
 * sync of a run sends nothing new. A run that a live process is writing is skipped (its own service
 * uploads it); a run that ended without an exit record, its writer gone, is marked `crashed`.
 *
 * One line per run on stdout (`synced <project>/<runId> (<name>): N records`), failures on stderr;
 * a progress bar on stderr when it is a terminal and a run takes more than a second.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Auth from "../actors/Auth.js"
import * as RunDir from "../runtime/RunDir.js"
import * as RunUpload from "../runtime/RunUpload.js"
import { baseUrl, serverUrl } from "./internal/ServerRequest.js"
import { progressBar } from "../runtime/ProgressBar.js"

/** Some runs could not be synced (each was reported on stderr). */
export class SyncFailed extends Data.TaggedError("SyncFailed")<{ readonly failed: number; readonly runs: number }> {
  override get message(): string {
    return `steplog: ${this.failed} of ${this.runs} run${this.runs === 1 ? "" : "s"} could not be synced; their data stays on disk, and \`steplog sync\` again carries on where it stopped`
  }
}

/** `sync` was asked for no runs. */
export class NoRunsNamed extends Data.TaggedError("NoRunsNamed")<{}> {
  override get message(): string {
    return "steplog: name the run directories to sync, or pass --all to sync every run under --dir (see `steplog sync --help`)"
  }
}

const runDirs = Args.directory({ name: "run_dir", exists: "yes" }).pipe(
  Args.withDescription("A run directory (`<dir>/run-<date>_<time>-<runId>`, or `<dir>/latest-run`) to upload."),
  Args.repeated
)

const all = Options.boolean("all").pipe(Options.withDescription("Sync every run-* directory under --dir."))

const dir = Options.directory("dir").pipe(
  Options.withDescription("Where --all looks for runs. Default: STEPLOG_DIR, else ./steplog."),
  Options.optional
)

const stallTimeout = Options.integer("stall-timeout").pipe(
  Options.withDescription("Give up on a run when the server has acknowledged nothing new for this many seconds (a server that went away mid-sync). Default: 60."),
  Options.withDefault(60)
)

/** Draws the bar on a terminal's stderr as the upload moves, from a second after the start until interrupted. */
const showProgress = (upload: RunUpload.RunUpload) =>
  Effect.gen(function* () {
    if (!process.stderr.isTTY) return
    yield* Effect.sleep("1 second")
    const label = `${upload.project}/${upload.runId}`
    yield* Effect.ensuring(
      upload.progress.pipe(
        Stream.runForEach(({ acknowledged, total }) => Effect.sync(() => process.stderr.write(`\r${label} ${progressBar(acknowledged, total)}`)))
      ),
      Effect.sync(() => process.stderr.write("\r\x1b[2K"))
    )
  })

/** Fails when the acknowledged count has not moved for `after` (a timer on Effect's Clock, reset by each acknowledgement). */
const watchdog = (upload: RunUpload.RunUpload, after: Duration.Duration, baseUrl: string) =>
  upload.progress.pipe(
    Stream.changesWith((a, b) => a.acknowledged === b.acknowledged),
    Stream.timeoutFail(() => `the server at ${baseUrl} acknowledged nothing for ${Duration.format(after)}`, after),
    Stream.runDrain
  )

type Outcome = { readonly _tag: "synced" } | { readonly _tag: "skipped" } | { readonly _tag: "failed" }

/** Syncs one run directory, printing its line. */
const syncOne = (runDir: string, server: string, stall: Duration.Duration): Effect.Effect<Outcome, never, HttpClient.HttpClient | Auth.Auth> => {
  const shown = path.relative(process.cwd(), runDir) || runDir
  const holder = RunDir.holder(runDir)
  if (holder !== null) {
    return Console.log(`skipped ${shown}: process ${holder} is writing it (its own upload sends it)`).pipe(Effect.as({ _tag: "skipped" } as const))
  }
  const warnings: Array<string> = []
  return Effect.gen(function* () {
    const size = yield* Effect.try({ try: () => fs.statSync(path.join(runDir, "journal.slog")).size, catch: (e) => (e as Error).message })
    const flushed = yield* SubscriptionRef.make({ offset: size, final: true })
    const upload = yield* RunUpload.open({ dir: runDir, baseUrl: server, flushed, report: (line) => warnings.push(line) }).pipe(
      Effect.mapError((error) => error.detail)
    )
    const done = yield* upload.awaitUploaded.pipe(
      Effect.mapError((stopped) => stopped.detail),
      Effect.raceFirst(watchdog(upload, stall, server).pipe(Effect.zipRight(Effect.never))),
      Effect.raceFirst(showProgress(upload).pipe(Effect.zipRight(Effect.never)))
    )
    const crashed = yield* upload.markCrashedIfAbandoned.pipe(Effect.mapError((error) => error.detail))
    const kept = yield* upload.kept
    const sent = Math.max(0, done.acknowledged - upload.startAckSeq - kept.records)
    const damage = (yield* upload.damage).map((d) => `skipped damage at byte ${d.offset} of its journal (${d.bytes} bytes, ${d.kind}): its records are lost`)
    const keptNote = kept.records === 0 ? null : `kept ${kept.records} records on disk: the server does not store ${kept.kinds.map((k) => `"${k}"`).join(", ")} records (sync again once it does)`
    const note = [sent === 0 ? "all were already on the server" : null, crashed ? "marked crashed (no exit record, its process is gone)" : null, keptNote, ...damage].filter((x) => x !== null)
    yield* Console.log(`synced ${upload.project}/${upload.runId} (${upload.name}): ${sent} record${sent === 1 ? "" : "s"}${note.length > 0 ? `; ${note.join("; ")}` : ""}`)
    return { _tag: "synced" } as const
  }).pipe(
    Effect.scoped,
    Effect.catchAll((reason) => Console.error(`failed ${shown}: ${reason}`).pipe(Effect.as({ _tag: "failed" } as const))),
    Effect.tap(() => Effect.forEach(warnings, (line) => Console.error(line), { discard: true }))
  )
}

/** The run-* directories under `root`, oldest first (their names start with the start time). */
const runsUnder = (root: string): Array<string> => {
  let names: Array<string>
  try {
    names = fs.readdirSync(root)
  } catch {
    return []
  }
  return names.filter((name) => name.startsWith("run-") && fs.statSync(path.join(root, name)).isDirectory()).sort().map((name) => path.join(root, name))
}

/** The `sync` command. */
export const sync = Command.make("sync", { runDirs, all, dir, baseUrl, stallTimeout }, (options) =>
  Effect.gen(function* () {
    const server = serverUrl(options.baseUrl)
    const root = path.resolve(Option.getOrElse(options.dir, () => process.env["STEPLOG_DIR"] || "steplog"))
    const named = options.runDirs.map((d) => fs.realpathSync(d))
    const found = options.all ? runsUnder(root) : []
    const dirs = [...new Set([...named, ...found])]
    if (dirs.length === 0) {
      if (!options.all) return yield* new NoRunsNamed()
      yield* Console.log(`no runs under ${root}`)
      return
    }
    const stall = Duration.seconds(Math.max(1, options.stallTimeout))
    // One run at a time: the lines come out in order, and one bar is drawn at a time.
    const outcomes = yield* Effect.forEach(dirs, (runDir) => syncOne(runDir, server, stall)).pipe(
      Effect.provide(Auth.layer({ baseUrl: server }))
    )
    const failed = outcomes.filter((outcome) => outcome._tag === "failed").length
    if (failed > 0) return yield* new SyncFailed({ failed, runs: dirs.length })
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))
).pipe(Command.withDescription("Upload runs on disk to a steplog server: offline runs, and runs whose upload was cut short. Resumable: a run's upload.cursor records what the server acknowledged, so nothing is sent twice. Skips a run a live process is writing; marks a run that ended without an exit record, its process gone, as crashed. Prints one line per run; exit status 2 if any run could not be synced."))
