/**
 * steplog for Effect programs: the same runtime as the promise API, as a service.
 *
 *   Effect.gen(function* () {
 *     yield* Steplog.log({ loss: 0.3 })
 *   }).pipe(Effect.provide(Steplog.layer({ project: "mnist" })))
 *
 * The run opens when the layer is built and finishes when its scope closes. Its timers (flush
 * interval, actor restarts) follow the program's `Clock`, so a `TestClock` drives them in tests.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type { Json } from "./schemas/Record.js"
import type { InitOptions } from "./schemas/Settings.js"
import { openRun, type InitError } from "./runtime/OpenRun.js"
import type { FinishResult, LogData, LogOptions, Run } from "./runtime/Run.js"

/** The current run, as an Effect service. */
export class Steplog extends Context.Tag("steplog/Steplog")<Steplog, Run>() {
  /**
   * Opens a run for the life of the layer's scope; it finishes when the scope closes, with exit
   * code 0 when the scope closed with success and 1 when it closed with a failure or interruption.
   */
  static readonly layer = (options: InitOptions = {}): Layer.Layer<Steplog, InitError> =>
    Layer.scoped(
      Steplog,
      Effect.acquireRelease(openRun(options), (run, exit) =>
        Effect.promise(() => run.finish({ exitCode: Exit.isSuccess(exit) ? 0 : 1 })))
    )

  /** Logs one row to the current run; the same as `run.log()`, as an `Effect`. */
  static readonly log = (data: LogData, options?: LogOptions): Effect.Effect<void, never, Steplog> =>
    Effect.andThen(Steplog, (run) => run.log(data, options))

  /** Patches the current run's config. */
  static readonly updateConfig = (patch: { readonly [key: string]: unknown }): Effect.Effect<void, never, Steplog> =>
    Effect.andThen(Steplog, (run) => run.config.update(patch))

  /** Fixes summary values of the current run. */
  static readonly setSummary = (patch: { readonly [key: string]: unknown }): Effect.Effect<void, never, Steplog> =>
    Effect.andThen(Steplog, (run) => run.summary.set(patch))

  /** The current run's summary so far. */
  static readonly summary: Effect.Effect<{ readonly [key: string]: Json }, never, Steplog> = Effect.map(Steplog, (run) =>
    run.summary.toJSON()
  )

  /** Finishes the current run now (before its scope closes), with an exit code. */
  static readonly finish = (options?: { readonly exitCode?: number }): Effect.Effect<FinishResult, never, Steplog> =>
    Effect.andThen(Steplog, (run) => Effect.promise(() => run.finish(options)))
}

export type { InitOptions, InitError, LogData, LogOptions, FinishResult, Run }
