/**
 * Opens a run: resolves its settings, makes (or, on resume, finds) its directory, takes its lock,
 * opens its journal, starts its Pipeline and writes its `run` record. Both faces use this: the
 * promise `init()` and the Effect `Steplog.layer`. The run owns a scope of its own, closed by
 * `finish()` (or synchronously by the exit hooks), so a run outlives the call that opened it.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as os from "node:os"
import * as path from "node:path"
import type { JournalUnreadable } from "../journal/JournalError.js"
import { JournalWriter } from "../journal/JournalWriter.js"
import type { JournalScan } from "../journal/JournalReader.js"
import type { JsonPatch, Record } from "../schemas/Record.js"
import { quickSettings, type InitOptions, type InvalidSetting, type Settings } from "../schemas/Settings.js"
import { credentialsPath, storedKey } from "../actors/Credentials.js"
import { disabledRun } from "./DisabledRun.js"
import * as ExitHooks from "./ExitHooks.js"
import { NoApiKey, RunExists, RunNotFound } from "./InitError.js"
import { generateRunId, generateRunName, gitCommit } from "./internal/identity.js"
import { STEPLOG_VERSION } from "../schemas/Version.js"
import * as Pipeline from "./Pipeline.js"
import { ActiveRun, type Run } from "./Run.js"
import * as RunDir from "./RunDir.js"
import type * as ServiceLink from "./ServiceLink.js"

/** Everything `init()` can fail with. */
export type InitError =
  | InvalidSetting
  | RunExists
  | RunNotFound
  | NoApiKey
  | RunDir.RunLocked
  | RunDir.RunDirUnusable
  | JournalUnreadable

/** Knobs for tests: the environment to read instead of `process.env`, actor restart delays, the service link of online runs. */
export interface OpenRunHooks {
  readonly env?: Readonly<globalThis.Record<string, string | undefined>>
  readonly restartSchedule?: Schedule.Schedule<unknown, unknown>
  /** Default: the process's link (ServiceLink.processLink), forking the service on first use. */
  readonly serviceLink?: ServiceLink.ServiceLink
}

/** Where a resumed run carries on: after its last whole record. */
const resumePoint = (scan: JournalScan) => {
  let seq = 0
  let step = 0
  let name: string | null = null
  const keySteps = new Map<string, number>()
  const config: { [key: string]: JsonPatch[string] } = {}
  const summary: { [key: string]: JsonPatch[string] } = {}
  for (const record of scan.records) {
    seq = Math.max(seq, record.seq + 1)
    if (record.kind === "history") {
      step = Math.max(step, record.step + 1)
      for (const key in record.values) keySteps.set(key, Math.max(keySteps.get(key) ?? -1, record.step))
    } else if (record.kind === "run") {
      name = record.name
      Object.assign(config, record.config)
    } else if (record.kind === "config") Object.assign(config, record.patch)
    else if (record.kind === "summary") Object.assign(summary, record.patch)
  }
  return { seq, step, keySteps, name, config, summary }
}

/**
 * The run's settings, by Settings.ts's quick checks; only a value they refuse loads effect/Schema
 * (slow to load: bench/first-init.ts), which then decides it and words the InvalidSetting.
 */
const settingsOf = (options: InitOptions, env: NonNullable<OpenRunHooks["env"]>): Effect.Effect<Settings, InvalidSetting> => {
  const keys = (baseUrl: string) => storedKey(baseUrl, env)
  const quick = quickSettings(options, env, keys)
  return quick !== undefined
    ? Effect.succeed(quick)
    : Effect.flatMap(Effect.promise(() => import("../schemas/SettingsSchema.js")), ({ resolveSettings }) => resolveSettings(options, env, keys))
}

/**
 * Reopens a resumed run's journal after its last whole frame; null when the run has none yet (a
 * crash before the first write). The reader, and the schemas it checks records with, load here,
 * for resumed runs only.
 */
const reopenJournal = (journal: string): Effect.Effect<{ writer: JournalWriter; scan: JournalScan } | null, JournalUnreadable> =>
  Effect.flatMap(Effect.promise(() => import("../journal/JournalReader.js")), ({ readJournal }) =>
    Either.match(readJournal(journal), {
      // Any other unreadable journal is refused as it is, never replaced.
      onLeft: (error) => (error.reason === "missing" ? Either.right(null) : Either.left(error)),
      onRight: (scan) => Either.map(JournalWriter.reopen(journal, scan), (writer) => ({ writer, scan }))
    }))

/** Opens a run as `options` (then `STEPLOG_*`, then defaults) describe it. */
export const openRun = (options: InitOptions = {}, hooks: OpenRunHooks = {}): Effect.Effect<Run, InitError> =>
  Effect.gen(function* () {
    const env = hooks.env ?? process.env
    const settings = yield* settingsOf(options, env)
    const runId = settings.id ?? generateRunId()
    if (settings.mode === "disabled") return disabledRun(runId, settings.name ?? "disabled", settings.project)
    if (settings.mode === "online" && settings.apiKey === null) {
      return yield* new NoApiKey({ baseUrl: settings.baseUrl, credentials: credentialsPath(env) })
    }

    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const startedAt = now()
    const root = path.resolve(settings.dir)
    const existing = settings.id === null ? null : RunDir.find(root, settings.id)
    if (existing !== null && settings.resume === "never") return yield* new RunExists({ runId, dir: existing.path })
    if (existing === null && settings.resume === "must") return yield* new RunNotFound({ runId, root })
    const dir = existing ?? (yield* RunDir.create(root, runId, startedAt))

    const scope = yield* Scope.make()
    const opened = yield* Effect.gen(function* () {
      const unlock = yield* RunDir.lock(dir)
      yield* Scope.addFinalizer(scope, Effect.sync(unlock))
      // A resumed run's directory without a journal (a crash before the first write) starts one.
      const reopened = existing === null ? null : yield* reopenJournal(dir.journal)
      const journal = reopened?.writer ?? (yield* JournalWriter.create(dir.journal))
      const from = reopened === null ? null : resumePoint(reopened.scan)
      const warn = (message: string) => {
        RunDir.debug(dir, `warning: ${message}`)
        process.emitWarning(message, { type: "SteplogWarning" })
      }
      for (const damage of reopened?.scan.damage ?? []) {
        warn(`the journal of run ${runId} had damage at byte ${damage.offset} (${damage.kind}: ${damage.detail}); appending after its last whole frame`)
      }
      // Online: the service is told about the run now and about every flush after; init() never
      // waits for it (or for the network): the run logs to disk whatever the service is doing.
      // The link (and the message schemas) load with the first online run.
      const link = settings.mode !== "online"
        ? null
        : hooks.serviceLink ?? (yield* Effect.promise(() => import("./ServiceLink.js"))).processLink()
      const linked = link !== null
        ? link.register({
          runId,
          runDir: dir.path,
          baseUrl: settings.baseUrl,
          apiKey: settings.apiKey,
          flushed: journal.offset,
          warn: (message) => {
            RunDir.debug(dir, message)
            process.stderr.write(`${message}\n`)
          }
        })
        : null
      // Only a failed init forgets the run; finish() still needs the link after the scope closes.
      yield* Scope.addFinalizerExit(scope, (exit) => (Exit.isFailure(exit) ? Effect.sync(() => linked?.forget()) : Effect.void))
      const pipeline = yield* Pipeline.make({
        journal,
        settings,
        report: warn,
        ...(linked === null ? {} : { onFlushed: linked.flushed }),
        ...(hooks.restartSchedule === undefined ? {} : { restartSchedule: hooks.restartSchedule })
      }).pipe(Scope.extend(scope))
      return { unlock, from, warn, pipeline, linked }
    }).pipe(Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))))

    const { unlock, from, warn, pipeline, linked } = opened
    const name = settings.name ?? from?.name ?? generateRunName(RunDir.count(root) - 1)
    const config = { ...(from?.config ?? {}), ...settings.config }
    const runRecord: Record = {
      kind: "run",
      seq: from?.seq ?? 0,
      ts: startedAt,
      runId,
      project: settings.project,
      name,
      config,
      tags: settings.tags,
      notes: settings.notes,
      group: settings.group,
      jobType: settings.jobType,
      host: os.hostname(),
      pid: process.pid,
      argv: process.argv,
      gitCommit: gitCommit(process.cwd()),
      sdkVersion: STEPLOG_VERSION,
      resumed: from !== null
    }
    pipeline.write(runRecord)
    if (settings.mode === "offline" && options.mode === undefined && env["STEPLOG_MODE"] === undefined) {
      process.stderr.write(
        `steplog: no API key found, so run ${runId} is recorded offline in ${dir.path}; ` +
          `upload it later with: steplog sync ${dir.path}\n`
      )
    }
    RunDir.debug(dir, `${from === null ? "started" : "resumed"} run ${runId} (${name}) in project ${settings.project}, pid ${process.pid}`)

    let release = () => {}
    const run: ActiveRun = new ActiveRun({
      id: runId,
      name,
      project: settings.project,
      mode: settings.mode,
      dir: dir.path,
      pipeline,
      now,
      warn,
      startedAt,
      resumeFrom: {
        seq: runRecord.seq + 1,
        step: from?.step ?? 0,
        keySteps: from?.keySteps ?? new Map(),
        config,
        summary: from?.summary ?? {}
      },
      close: () => {
        release()
        return Effect.runPromise(Scope.close(scope, Exit.void)).then(() => RunDir.debug(dir, "finished"))
      },
      ...(linked === null
        ? {}
        : { settle: (written: number) => Effect.runPromise(linked.finish(pipeline.flushedOffset(), written, settings.finishTimeoutMs)) }),
      closeSync: () => {
        // The process is going down: write and unlock now; the actors' fibers die with it.
        pipeline.close()
        unlock()
        RunDir.debug(dir, "ended with the process")
      }
    })
    release = ExitHooks.watch(run)
    if (settings.console === "capture") run.captureConsole(settings.flushIntervalMs)
    return run
  })
