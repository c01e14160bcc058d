/**
 * `steplog runs [--project P]`: the runs a server holds, newest first, one line each: state, id,
 * name, steps, start, duration and the run's summary metrics. Without --project, every project's.
 * Its subcommand `delete` is RunsDelete.ts.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { ProjectName, type RunDetail } from "../schemas/Wire.js"
import { jsonLine } from "./internal/jsonLine.js"
import { baseUrl, connection, request } from "./internal/ServerRequest.js"
import { runsDelete } from "./RunsDelete.js"

const project = Options.text("project").pipe(
  Options.withAlias("p"),
  Options.withDescription("List the runs of this project only. Default: every project on the server."),
  Options.withSchema(ProjectName),
  Options.optional
)

const json = Options.boolean("json").pipe(Options.withDescription("Print each run as one JSON line (RunDetail) instead of a table."))

const duration = (run: RunDetail): string => {
  if (run.startedAt === null || run.updatedAt === null) return "-"
  const seconds = Math.max(0, Math.round((run.updatedAt - run.startedAt) / 1000))
  return seconds < 60 ? `${seconds}s` : seconds < 3600 ? `${Math.floor(seconds / 60)}m${seconds % 60}s` : `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`
}

const summaryText = (run: RunDetail): string =>
  Object.entries(run.summary)
    .filter(([, value]) => typeof value === "number" || typeof value === "string")
    .slice(0, 4)
    .map(([key, value]) => `${key}=${typeof value === "number" ? Number(value.toPrecision(4)) : value}`)
    .join(" ")

const table = (runs: ReadonlyArray<RunDetail>): string => {
  const rows = runs.map((run) => [
    run.project,
    run.runId,
    run.name,
    run.state + (run.exitCode !== null && run.exitCode !== 0 ? ` (${run.exitCode})` : ""),
    String(run.historyRows),
    run.startedAt === null ? "-" : new Date(run.startedAt).toISOString().slice(0, 19).replace("T", " "),
    duration(run),
    summaryText(run)
  ])
  const header = ["PROJECT", "RUN", "NAME", "STATE", "STEPS", "STARTED (UTC)", "TOOK", "SUMMARY"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

/** The `runs` command. */
export const runs = Command.make("runs", { project, baseUrl, json }, (options) =>
  Effect.gen(function* () {
    const conn = yield* connection(options.baseUrl)
    const projects = Option.isSome(options.project)
      ? [options.project.value]
      : (yield* request(conn, (api) => api.query.listProjects())).projects.map((p) => p.name)
    const all: Array<RunDetail> = []
    for (const name of projects) {
      const list = yield* request(conn, (api) => api.query.listRuns({ path: { project: name } }))
      all.push(...list.runs)
    }
    all.sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0))
    if (options.json) {
      if (all.length > 0) yield* Console.log(all.map(jsonLine).join("\n"))
    } else {
      yield* Console.log(all.length === 0 ? "no runs" : table(all))
    }
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))
).pipe(
  Command.withDescription("List the runs a steplog server holds, newest first: state, id, name, steps, start, duration and summary metrics. `steplog runs delete` deletes runs."),
  Command.withSubcommands([runsDelete])
)
