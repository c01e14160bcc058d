/**
 * `steplog/api`: a tracking server's query API for scripts and notebooks, with promises. It is the
 * declared API's HttpApiClient (actors/ApiClient.ts) with a friendly face: which server and key as
 * the CLI finds them, plain arguments, and one error class for every refusal.
 *
 *   const api = await connect()     // STEPLOG_BASE_URL and STEPLOG_API_KEY, else the local server and its stored key
 *   const { runs } = await api.runs("mnist", { filter: "state = finished and config.lr < 0.01", sort: '-summary["val/acc"]', limit: 5 })
 *   const history = await api.history("mnist", runs[0]!.runId, { keys: ["loss"], samples: 1000 })
 *   await api.close()
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as ApiClient from "../actors/ApiClient.js"
import { resolveServer } from "../actors/Credentials.js"
import { RunId } from "../schemas/Record.js"
import type { DeletedRun, History, OutputLines, ProjectList, RunDetail, RunList, WhoAmI } from "../schemas/Wire.js"
import { ProjectName } from "../schemas/Wire.js"

/** A request the server refused, or could not be made: `status` 0 when no answer came. */
export class SteplogApiError extends Error {
  override readonly name = "SteplogApiError"
  constructor(
    readonly status: number,
    /** The refusal's code (`not_found`, `bad_query`, `unauthorized`, …), or `unreachable`, `no_key`, `bad_answer`, `internal`. */
    readonly error: string,
    readonly detail: string
  ) {
    super(`steplog/api: ${status === 0 ? "" : `HTTP ${status} `}${error}: ${detail}`)
  }
}

/** Which server, with which key; each defaults as the CLI's do. */
export interface ConnectOptions {
  readonly baseUrl?: string
  readonly apiKey?: string
}

/** What `runs` asks for (src/schemas/RunQuery.ts): a filter, a sort, at most `limit` runs (default 1,000), after `cursor`. */
export interface RunsOptions {
  readonly filter?: string
  readonly sort?: string
  readonly limit?: number
  /** The `next` of the page before. */
  readonly cursor?: string
}

/** What `history` reads: some keys (default all), steps from minStep to maxStep, at most `samples` buckets. */
export interface HistoryOptions {
  readonly keys?: ReadonlyArray<string>
  readonly samples?: number
  readonly minStep?: number
  readonly maxStep?: number
}

/** A server's query API. Every method rejects with SteplogApiError. */
export interface SteplogApi {
  readonly baseUrl: string
  /** The key's name and the projects it may use. */
  readonly whoami: () => Promise<WhoAmI>
  readonly projects: () => Promise<ProjectList["projects"]>
  /** A page of a project's runs; `next` (when set) is the cursor of the page after it. */
  readonly runs: (project: string, options?: RunsOptions) => Promise<RunList>
  /** Every run the filter keeps, in the sort's order: `runs`' pages followed to the end. */
  readonly allRuns: (project: string, options?: Omit<RunsOptions, "limit" | "cursor">) => Promise<ReadonlyArray<RunDetail>>
  readonly run: (project: string, runId: string) => Promise<RunDetail>
  /** One page of history (`next`: the `minStep` of the following page), or at most `samples` buckets. */
  readonly history: (project: string, runId: string, options?: HistoryOptions) => Promise<History>
  /** Console lines after seq `after` (default: from the start), at most `limit`. */
  readonly output: (project: string, runId: string, options?: { readonly after?: number; readonly limit?: number }) => Promise<OutputLines>
  /** Deletes a run for good. */
  readonly deleteRun: (project: string, runId: string) => Promise<DeletedRun>
  /** Lets go of the connections. */
  readonly close: () => Promise<void>
}

const decodePath = Schema.decodeUnknown(Schema.Struct({ project: ProjectName, runId: Schema.optional(RunId) }))

/** A failed call as the SteplogApiError it rejects with. */
const asApiError = (failure: ApiClient.ApiCallFailure | ParseResult.ParseError): Effect.Effect<SteplogApiError> => {
  // Refused before sending: an argument the declared schemas do not take (a project name, a filter).
  if (failure._tag === "ParseError") return Effect.succeed(new SteplogApiError(0, "bad_query", ParseResult.TreeFormatter.formatErrorSync(failure)))
  return Effect.map(ApiClient.refusalOf(failure), Option.match({
    onSome: (refusal) => {
      const [code, ...rest] = refusal.detail.split(": ")
      return rest.length > 0 ? new SteplogApiError(refusal.status, code!, rest.join(": ")) : new SteplogApiError(refusal.status, "http_error", refusal.detail)
    },
    onNone: () => new SteplogApiError(0, failure._tag === "RequestError" ? "unreachable" : "bad_answer", failure.message)
  }))
}

/** Connects to a server (nothing is sent until a method is called). Rejects when there is no key for it. */
export const connect = async (options: ConnectOptions = {}): Promise<SteplogApi> => {
  const { baseUrl, apiKey } = resolveServer(options)
  if (apiKey === null || apiKey === "") {
    throw new SteplogApiError(0, "no_key", `no API key for ${baseUrl}: pass apiKey, set STEPLOG_API_KEY, or run \`steplog login --base-url ${baseUrl} <key>\``)
  }
  const runtime = ManagedRuntime.make(NodeHttpClient.layerUndici)
  const client = await runtime.runPromise(ApiClient.make({ baseUrl, key: apiKey }))
  const call = async <A>(effect: Effect.Effect<A, ApiClient.ApiCallFailure | ParseResult.ParseError>): Promise<A> => {
    const exit = await runtime.runPromiseExit(Effect.catchAll(effect, (failure) => Effect.flatMap(asApiError(failure), Effect.fail)))
    if (Exit.isSuccess(exit)) return exit.value
    const error = Cause.squash(exit.cause)
    // A refusal as it is; anything else (a bug) still as the one error class every method rejects with.
    throw error instanceof SteplogApiError ? error : new SteplogApiError(0, "internal", error instanceof Error ? error.message : String(error))
  }
  const path = (project: string, runId?: string) =>
    Effect.map(decodePath({ project, ...(runId === undefined ? {} : { runId }) }), (decoded) => ({ project: decoded.project, runId: decoded.runId! }))
  const defined = <O extends object>(object: O) => Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as O

  return {
    baseUrl,
    whoami: () => call(client.query.whoami()),
    projects: () => call(Effect.map(client.query.listProjects(), (list) => list.projects)),
    runs: (project, runsOptions = {}) =>
      call(Effect.flatMap(path(project), ({ project }) => client.query.listRuns({ path: { project }, urlParams: defined({ ...runsOptions }) }))),
    allRuns: (project, runsOptions = {}) =>
      call(Effect.flatMap(path(project), ({ project }) => ApiClient.allRuns(client, project, defined({ ...runsOptions })))),
    run: (project, runId) => call(Effect.flatMap(path(project, runId), (at) => client.query.getRun({ path: at }))),
    history: (project, runId, historyOptions = {}) =>
      call(Effect.flatMap(path(project, runId), (at) => client.query.history({ path: at, urlParams: defined({ ...historyOptions, keys: historyOptions.keys === undefined ? undefined : [...historyOptions.keys] }) }))),
    output: (project, runId, outputOptions = {}) =>
      call(Effect.flatMap(path(project, runId), (at) => client.query.output({ path: at, urlParams: defined({ ...outputOptions }) }))),
    deleteRun: (project, runId) => call(Effect.flatMap(path(project, runId), (at) => client.upload.deleteRun({ path: at }))),
    close: () => runtime.dispose()
  }
}
