/**
 * `steplog runs delete PROJECT/RUN_ID… [--yes]`: deletes runs from a server, for good. Each run is
 * shown (name, steps, state) and asked about on a terminal; `--yes` deletes without asking, as a
 * script must (without a terminal and without `--yes`, nothing is deleted). A deleted run's id is
 * refused to any later upload (410), so a training process still running stops uploading it.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { runPath } from "./internal/runPath.js"
import { baseUrl, connection, request } from "./internal/ServerRequest.js"

/** A deletion that was not confirmed: nothing of that run was deleted. */
export class DeleteNotConfirmed extends Data.TaggedError("DeleteNotConfirmed")<{ readonly run: string; readonly why: string }> {
  override get message(): string {
    return `steplog runs delete: ${this.run} was not deleted: ${this.why}`
  }
}

const runs = runPath("A run to delete, as PROJECT/RUN_ID (see `steplog runs`).").pipe(Args.atLeast(1))

const yes = Options.boolean("yes").pipe(
  Options.withAlias("y"),
  Options.withDescription("Delete without asking (for scripts). Without it, each run is asked about on the terminal.")
)

/** The `runs delete` command. */
export const runsDelete = Command.make("delete", { runs, yes, baseUrl }, (options) =>
  Effect.gen(function* () {
    const conn = yield* connection(options.baseUrl)
    for (const path of options.runs) {
      const shown = `${path.project}/${path.runId}`
      const run = yield* request(conn, (api) => api.query.getRun({ path }))
      if (!options.yes) {
        if (process.stdin.isTTY !== true) {
          return yield* new DeleteNotConfirmed({ run: shown, why: "stdin is not a terminal to ask on; pass --yes to delete without asking" })
        }
        const confirmed = yield* Prompt.confirm({
          message: `Delete ${shown} ("${run.name}", ${run.state}, ${run.historyRows} history rows)? This cannot be undone.`,
          initial: false
        })
        if (!confirmed) return yield* new DeleteNotConfirmed({ run: shown, why: "not confirmed" })
      }
      const deleted = yield* request(conn, (api) => api.upload.deleteRun({ path }))
      yield* Console.log(`deleted ${shown} ("${run.name}"): ${deleted.records} records, ${deleted.historyRows} of them history rows`)
    }
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))
).pipe(
  Command.withDescription(
    "Delete runs from a steplog server, with everything they logged, for good. Each is asked about first unless --yes is given. Any API key scoped to the run's project may delete; the run's id is then refused to further uploads (a training process still uploading it stops with one warning), and its run directory on the training machine is left as it is."
  )
)
