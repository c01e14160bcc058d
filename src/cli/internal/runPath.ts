/** A run named on the command line as PROJECT/RUN_ID (as `steplog runs` lists it), checked as the server checks it. */
import * as Args from "@effect/cli/Args"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { RunId } from "../../schemas/Record.js"
import { ProjectName } from "../../schemas/Wire.js"

const RunPath = Schema.Struct({ project: ProjectName, runId: RunId })
export type RunPath = typeof RunPath.Type

/** The argument PROJECT/RUN_ID, described by `description`. */
export const runPath = (description: string) =>
  Args.text({ name: "project/run" }).pipe(
    Args.withDescription(description),
    Args.mapEffect((text) => {
      const parts = text.split("/")
      if (parts.length !== 2 || parts[0]!.length === 0 || parts[1]!.length === 0) return Effect.fail(HelpDoc.p(`expected PROJECT/RUN_ID, got "${text}"`))
      return Schema.decodeUnknown(RunPath)({ project: parts[0], runId: parts[1] }).pipe(
        Effect.mapError((error) => HelpDoc.p(`"${text}" is not a PROJECT/RUN_ID the server takes: ${ParseResult.TreeFormatter.formatErrorSync(error)}`))
      )
    })
  )
