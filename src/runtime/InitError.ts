/** Why `init()` refused to start a run (besides a bad setting, a locked or unusable directory, or an unreadable journal). */
import * as Data from "effect/Data"

/** `init({ id })` named a run that exists, and `resume` was not `allow` or `must`. */
export class RunExists extends Data.TaggedError("RunExists")<{ readonly runId: string; readonly dir: string }> {
  override get message(): string {
    return `steplog: run ${this.runId} already exists in ${this.dir}; pass resume: "allow" to append to it, or choose another id`
  }
}

/** `init({ id, resume: "must" })` named a run that does not exist. */
export class RunNotFound extends Data.TaggedError("RunNotFound")<{ readonly runId: string; readonly root: string }> {
  override get message(): string {
    return `steplog: run ${this.runId} was not found under ${this.root}, and resume: "must" requires it to exist`
  }
}

/** Online mode was chosen, and this build has no upload path yet. */
export class OnlineUnavailable extends Data.TaggedError("OnlineUnavailable")<{ readonly reason: string }> {
  override get message(): string {
    return (
      `steplog: online mode is not available: ${this.reason}. This version records runs offline only ` +
      `(the service process and the tracking server come in a later release); pass mode: "offline" ` +
      `(or STEPLOG_MODE=offline) and upload later with \`steplog sync\`.`
    )
  }
}
