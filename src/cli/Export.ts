/**
 * `steplog export PROJECT/RUN [--format jsonl|csv] [--keys a,b]`: a run's history from the
 * server, in step order, on stdout: JSON lines (NaN and ±Infinity as strings) or CSV with one
 * column per key.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { HistoryRow } from "../schemas/Wire.js"
import { jsonLine } from "./internal/jsonLine.js"
import { runPath } from "./internal/runPath.js"
import { baseUrl, connection, request } from "./internal/ServerRequest.js"

const run = runPath("The run to export, as PROJECT/RUN_ID (see `steplog runs`).")

const format = Options.choice("format", ["jsonl", "csv"]).pipe(
  Options.withDescription("jsonl: one JSON object a row ({step, ts, values}). csv: a header of step, ts and every key, then one line a row."),
  Options.withDefault("jsonl" as const)
)

const keys = Options.text("keys").pipe(
  Options.withDescription("Export only these keys, comma-separated (rows with none of them are left out)."),
  Options.optional
)

/** A CSV field: quoted when it holds a comma, a quote or a line break. */
const csvField = (value: unknown): string => {
  const text = value === null || value === undefined ? "" : String(value)
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

const csvLine = (columns: ReadonlyArray<string>) => (row: HistoryRow): string =>
  [row.step, row.ts, ...columns.map((c) => row.values[c])].map(csvField).join(",")

/** The `export` command. */
export const exportRun = Command.make("export", { run, format, keys, baseUrl }, (options) =>
  Effect.gen(function* () {
    const conn = yield* connection(options.baseUrl)
    const keys = Option.map(options.keys, (list) => list.split(",").filter((key) => key.length > 0))
    const picked = Option.match(keys, { onNone: () => ({}), onSome: (list) => ({ keys: list }) })
    // CSV needs its columns before the first row: the run's keys (those asked for, in that order).
    const columns = options.format !== "csv"
      ? []
      : Option.isSome(keys) && keys.value.length > 0
      ? keys.value
      : (yield* request(conn, (api) => api.query.getRun({ path: options.run }))).historyKeys
    const line = options.format === "csv" ? csvLine(columns) : jsonLine
    let header = options.format === "csv"
    // Page after page (the server answers at most a page of rows at a time): never the whole run in memory.
    let minStep: number | undefined
    for (;;) {
      const page = yield* request(conn, (api) =>
        api.query.history({ path: options.run, urlParams: { ...picked, ...(minStep === undefined ? {} : { minStep }) } }))
      if (page.rows.length > 0) {
        if (header) yield* Console.log(["step", "ts", ...columns].map(csvField).join(","))
        header = false
        yield* Console.log(page.rows.map(line).join("\n"))
      }
      if (page.next === null) return
      minStep = page.next
    }
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))
).pipe(Command.withDescription("Print a run's history from a steplog server, in step order, as JSON lines or CSV."))
