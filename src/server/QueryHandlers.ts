/**
 * The query group of the API (src/schemas/Api.ts) over the RecordStore: the key's identity (and
 * the server's facts: version, protocol, stored kinds, routes), the listings, one run, its history and its console output. The builder has decoded the path and the
 * query with the declared schemas, and ReadAccess has checked the key and the project, before any
 * of these runs; a store failure is the API's 500 (Refusals.ts).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Api, API_ROUTES, limits, Principal } from "../schemas/Api.js"
import { NotFound } from "../schemas/ApiErrors.js"
import type { RunId } from "../schemas/Record.js"
import { parseRunQuery } from "../schemas/RunQuery.js"
import { PROTOCOL_VERSION, STEPLOG_VERSION } from "../schemas/Version.js"
import { History, historyCarries, HistoryRow, type ProjectName, rowCarries } from "../schemas/Wire.js"
import { allows } from "./store/KeyStore.js"
import { RecordStore } from "./store/RecordStore.js"
import { stored } from "./Refusals.js"
import { StoredKinds } from "./StoredKinds.js"

/** What a run's read found; 404 when the run does not exist. */
const found = <A>(path: { readonly project: ProjectName; readonly runId: RunId }) => (read: Option.Option<A>) =>
  Option.match(read, {
    onNone: () => Effect.fail(new NotFound({ detail: `no run "${path.runId}" in project "${path.project}"` })),
    onSome: Effect.succeed
  })

const encodeHistory = Schema.encodeSync(History)
const encodeRow = Schema.encodeSync(HistoryRow)

/** A history as its JSON answer: as it is when JSON carries it so (the schema's encoding would change nothing), else encoded. */
const historyAnswer = (history: History) => HttpServerResponse.unsafeJson(historyCarries(history) ? history : encodeHistory(history))

/**
 * A sampled history's JSON answer, made a row at a time: the JSON of each row object, in UTF-8, is
 * kept for as long as the object lives (in memory of its own: a Buffer of a short string would be
 * a slice of a shared 8 KiB pool, and keep all of it). The store answers the rows of buckets
 * unchanged since its last read of the range as the same objects (sampling.ts), so a dashboard
 * following a live run pays for the JSON of its few new rows, not of a thousand. A read of a
 * 25k-step run of ten keys, every row kept, spent ~2 of its ~7 ms of CPU on joining the rows' JSON
 * and encoding it before (a scratch probe of 300 reads, profiled).
 */
const sampledAnswer = (json: WeakMap<HistoryRow, Uint8Array>) => (history: History) => {
  const parts: Array<Uint8Array> = [ROWS_OPEN]
  history.rows.forEach((row, i) => {
    let bytes = json.get(row)
    if (bytes === undefined) json.set(row, (bytes = utf8.encode(JSON.stringify(rowCarries(row) ? row : encodeRow(row)))))
    if (i > 0) parts.push(COMMA)
    parts.push(bytes)
  })
  parts.push(utf8.encode(`],"next":${JSON.stringify(history.next)}}`))
  return HttpServerResponse.uint8Array(Buffer.concat(parts), { contentType: "application/json" })
}
const utf8 = new TextEncoder()
const ROWS_OPEN = utf8.encode(`{"rows":[`)
const COMMA = utf8.encode(",")

/** The query group's handlers, over the RecordStore of its context. */
export const layer = HttpApiBuilder.group(Api, "query", (handlers) =>
  Effect.gen(function* () {
    const store = yield* RecordStore
    const server = { version: STEPLOG_VERSION, protocol: PROTOCOL_VERSION, kinds: [...(yield* StoredKinds)], routes: API_ROUTES }
    const rowJson = new WeakMap<HistoryRow, Uint8Array>()
    return handlers
      .handle("whoami", () => Effect.map(Principal, (principal) => ({ ...principal, server })))
      .handle("listProjects", () =>
        Effect.gen(function* () {
          const principal = yield* Principal
          const all = yield* stored(store.listProjects)
          // A key sees only the projects it may use.
          return { projects: all.projects.filter((project) => allows(principal.projects, project.name)) }
        }))
      // The declared schemas have parsed every text already: a refusal here would be a bug.
      .handle("listRuns", ({ path, urlParams }) => stored(store.listRuns(path.project, Either.getOrThrow(parseRunQuery(urlParams)))))
      .handle("getRun", ({ path }) => stored(store.getRun(path.project, path.runId)).pipe(Effect.flatMap(found(path))))
      .handle("history", ({ path, urlParams }) =>
        stored(
          store.history(path.project, path.runId, {
            ...(urlParams.keys !== undefined && urlParams.keys.length > 0 ? { keys: urlParams.keys } : {}),
            ...(urlParams.samples !== undefined ? { samples: urlParams.samples } : {}),
            ...(urlParams.minStep !== undefined ? { minStep: urlParams.minStep } : {}),
            ...(urlParams.maxStep !== undefined ? { maxStep: urlParams.maxStep } : {})
          })
        ).pipe(Effect.flatMap(found(path)), Effect.map(urlParams.samples === undefined ? historyAnswer : sampledAnswer(rowJson))))
      .handle("output", ({ path, urlParams }) =>
        stored(
          store.output(path.project, path.runId, { after: urlParams.after ?? -1, limit: urlParams.limit ?? limits.defaultOutputLines })
        ).pipe(Effect.flatMap(found(path))))
  }))
