/**
 * steplog: experiment tracking for TypeScript and Node.js.
 *
 *   const run = await init({ project: "mnist", config: { lr: 1e-3 } })
 *   for (…) run.log({ loss, acc })      // synchronous, well under a microsecond, never lost
 *   await run.finish()
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { InitOptions } from "./schemas/Settings.js"
import { openRun } from "./runtime/OpenRun.js"
import type { Run } from "./runtime/Run.js"

/**
 * Starts a run. Rejects with a typed error (`InvalidSetting`, `RunExists`, `RunLocked`, …) whose
 * message says what was wrong; never waits on the network.
 */
export const init = async (options: InitOptions = {}): Promise<Run> => {
  const exit = await Effect.runPromiseExit(openRun(options))
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

export type { InitOptions, Mode, Durability, Resume, ConsoleMode } from "./schemas/Settings.js"
export { InvalidSetting } from "./schemas/Settings.js"
export type { Run, LogData, LogOptions, FinishResult, RunConfig, RunSummary } from "./runtime/Run.js"
export type { InitError } from "./runtime/OpenRun.js"
export { RunExists, RunNotFound, NoApiKey } from "./runtime/InitError.js"
export { RunLocked, RunDirUnusable } from "./runtime/RunDir.js"
export { JournalUnreadable } from "./journal/JournalError.js"
export type { Value, Json, RunId } from "./schemas/Record.js"
