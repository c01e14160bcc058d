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

/** Online mode was chosen, and no API key was found for the server (option, STEPLOG_API_KEY, credentials file). */
export class NoApiKey extends Data.TaggedError("NoApiKey")<{ readonly baseUrl: string; readonly credentials: string }> {
  override get message(): string {
    return (
      `steplog: mode "online" needs an API key for ${this.baseUrl}, and none was found: pass apiKey to init(), ` +
      `set STEPLOG_API_KEY, or store one with \`steplog login --base-url ${this.baseUrl} <KEY>\` (it goes to ${this.credentials}). ` +
      `Get a key with \`steplog keys create --project <PROJECT>\` on the server's machine (a fresh \`steplog server\` makes a ` +
      `local key and stores it for you). Or pass mode: "offline" (STEPLOG_MODE=offline) and upload later with \`steplog sync\`.`
    )
  }
}
