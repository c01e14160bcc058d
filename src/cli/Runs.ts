/**
 * `steplog runs [--project P] [--filter F] [--sort S] [--limit N]`: the runs a server holds, newest
 * first, one line each: state, id, name, steps, start, duration and the run's summary metrics.
 * Without --project, every project's. The filter, sort and limit are the server's (RunQuery.ts).
 * Its subcommand `delete` is RunsDelete.ts.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as ApiClient from "../actors/ApiClient.js"
import { FilterText, MAX_RUNS_LIMIT, SortText } from "../schemas/RunQuery.js"
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

const filter = Options.text("filter").pipe(
  Options.withAlias("f"),
  Options.withDescription(
    'Only the runs that meet every clause, joined by "and": a field (state, name, group, jobType, host, tags, runId, startedAt, updatedAt, text: all the names and notes at once, config.<key>, summary.<key> or summary["val/acc"]), ' +
      'an operator (= != < <= > >=, ~ contains, has for tags) and a value. Example: \'state = finished and config.lr < 0.01 and summary["val/acc"] > 0.9\'. The server filters.'
  ),
  Options.withSchema(FilterText),
  Options.optional
)

const sort = Options.text("sort").pipe(
  Options.withAlias("s"),
  Options.withDescription('Order by a field, descending with a "-" in front: -summary["val/acc"], config.lr, name. Runs without the value come last. Default -startedAt (newest first). Needs --project.'),
  Options.withSchema(SortText),
  Options.optional
)

const limit = Options.integer("limit").pipe(
  Options.withAlias("n"),
  Options.withDescription(`At most this many runs (1 to ${MAX_RUNS_LIMIT}), the first in the sort's order. Default: every run. Needs --project.`),
  Options.withSchema(Schema.Int.pipe(Schema.between(1, MAX_RUNS_LIMIT))),
  Options.optional
)

/** The command line asks for something it cannot have. */
export class RunsOptionsInvalid extends Data.TaggedError("RunsOptionsInvalid")<{ readonly detail: string }> {
  override get message(): string {
    return `steplog runs: ${this.detail}`
  }
}

/** The `runs` command. */
export const runs = Command.make("runs", { project, filter, sort, limit, baseUrl, json }, (options) =>
  Effect.gen(function* () {
    const params = { ...Option.match(options.filter, { onNone: () => ({}), onSome: (text) => ({ filter: text }) }), ...Option.match(options.sort, { onNone: () => ({}), onSome: (text) => ({ sort: text }) }) }
    if (Option.isNone(options.project) && (Option.isSome(options.sort) || Option.isSome(options.limit))) {
      return yield* new RunsOptionsInvalid({ detail: "--sort and --limit order and cut one project's runs: pass --project too" })
    }
    const conn = yield* connection(options.baseUrl)
    const projects = Option.isSome(options.project)
      ? [options.project.value]
      : (yield* request(conn, (api) => api.query.listProjects())).projects.map((p) => p.name)
    const all: Array<RunDetail> = []
    for (const name of projects) {
      const limited = options.limit
      all.push(...(yield* request(conn, (api) =>
        Option.isSome(limited)
          ? Effect.map(api.query.listRuns({ path: { project: name }, urlParams: { ...params, limit: limited.value } }), (page) => page.runs)
          : ApiClient.allRuns(api, name, params))))
    }
    // Several projects' runs (each newest first) are merged newest first.
    if (projects.length > 1) all.sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0))
    if (options.json) {
      if (all.length > 0) yield* Console.log(all.map(jsonLine).join("\n"))
    } else {
      yield* Console.log(all.length === 0 ? "no runs" : table(all))
    }
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))
).pipe(
  Command.withDescription(
    "List the runs a steplog server holds, newest first: state, id, name, steps, start, duration and summary metrics. --filter, --sort and --limit pick and order them on the server. `steplog runs delete` deletes runs."
  ),
  Command.withSubcommands([runsDelete])
)
