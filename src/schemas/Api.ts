/**
 * The HTTP API, declared once with @effect/platform's HttpApi: the upload protocol and the query
 * API (DESIGN.md, "Upload protocol"), their paths, query and header schemas, payloads, answers and
 * refusals (ApiErrors.ts, each with its status). The server implements it with HttpApiBuilder
 * (server/ApiServer.ts); the uploader, RunUpload, the CLI and steplog/testing call it through the
 * HttpApiClient derived from it (actors/ApiClient.ts), so no URL is written twice.
 *
 * It lives in src/schemas rather than src/server (where DESIGN.md and STYLE.md put "Api.ts"):
 * the uploader in src/actors calls it, and actors may not import the server.
 *
 *   query   GET  /api/v1/whoami                                   → WhoAmI
 *           GET  /api/v1/projects                                 → ProjectList
 *           GET  /api/v1/projects/:project/runs                   ?filter=…&sort=…&limit=N&cursor=C → RunList
 *           GET  /api/v1/projects/:project/runs/:runId            → RunDetail
 *           GET  /api/v1/projects/:project/runs/:runId/history    ?keys=a,b&samples=N&minStep=A&maxStep=B → History
 *           GET  /api/v1/projects/:project/runs/:runId/output     ?after=SEQ&limit=N → OutputLines
 *   upload  PUT  /api/v1/projects/:project/runs/:runId            RunMetadata (JSON) → RunDetail
 *           POST /api/v1/projects/:project/runs/:runId/records    msgpack UploadRecord[], gzip or identity → Ack
 *           DELETE /api/v1/projects/:project/runs/:runId          → DeletedRun; then 410 Gone to its writes
 *
 * Every endpoint is behind a security middleware: a Bearer API key, or the dashboard's session
 * cookie (Sessions.ts signs it in). The upload group's takes the cookie only from the dashboard's
 * own origin (`Origin` and `Sec-Fetch-Site: same-origin` both saying so), since a page on another
 * port of the same host is "same site" to the cookie.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as Context from "effect/Context"
import * as Schema from "effect/Schema"
import {
  AccessRefused,
  BodyTooLarge,
  Gone,
  MediaUnsupported,
  MethodNotAllowed,
  NotFound,
  RequestInvalid,
  ServerFailed,
  StoreFull,
  Unauthenticated
} from "./ApiErrors.js"
import { RunId } from "./Record.js"
import { CursorText, FilterText, MAX_RUNS_LIMIT, SortText } from "./RunQuery.js"
import { Ack, DeletedRun, History, OutputLines, ProjectList, ProjectName, RunDetail, RunList, RunMetadata, WhoAmI } from "./Wire.js"

/** What the server accepts at most, and the query defaults; bytes unless named otherwise. */
export const limits = {
  /** A records body as sent (compressed or not), and once inflated. */
  maxBodyBytes: 16 * 1024 * 1024,
  maxInflatedBytes: 64 * 1024 * 1024,
  /** A PUT run body is a small JSON object. */
  maxMetadataBytes: 1024 * 1024,
  /**
   * Levels of nesting in a PUT body or an uploaded record, checked before the schema decodes it:
   * decoding recurses once a level, and a config nested a few thousand levels overflowed the stack.
   */
  maxNesting: 64,
  /** Buckets `?samples=` may ask for. */
  maxSamples: 10_000,
  /** Output lines one `GET …/output` answers at most, and by default. */
  maxOutputLines: 10_000,
  defaultOutputLines: 1_000
} as const

/** The cookie that carries a dashboard session id. */
export const SESSION_COOKIE = "steplog_session"

/** Whom a request acts for: a key's name and projects (a sign-in-link session: every project). */
export class Principal extends Context.Tag("steplog/schemas/Principal")<Principal, WhoAmI>() {}

const security = {
  bearer: HttpApiSecurity.bearer,
  session: HttpApiSecurity.apiKey({ in: "cookie", key: SESSION_COOKIE })
}
const refusals = Schema.Union(Unauthenticated, AccessRefused, ServerFailed, StoreFull)

/** The key or session of a read, checked against the path's project (server/Authorization.ts). */
export class ReadAccess extends HttpApiMiddleware.Tag<ReadAccess>()("steplog/schemas/ReadAccess", {
  provides: Principal,
  failure: refusals,
  security
}) {}

/** The same for a write: a session cookie counts only from the dashboard's own origin. */
export class WriteAccess extends HttpApiMiddleware.Tag<WriteAccess>()("steplog/schemas/WriteAccess", {
  provides: Principal,
  failure: refusals,
  security
}) {}

const ProjectPath = Schema.Struct({ project: ProjectName })
const RunPath = Schema.Struct({ project: ProjectName, runId: RunId })

/** A whole number from `min` to `max`, as a query parameter writes it (`?samples=100`). */
const WholeNumber = (min: number, max: number) =>
  Schema.compose(
    Schema.String.pipe(Schema.pattern(/^-?[0-9]{1,16}$/)),
    Schema.NumberFromString
  ).pipe(Schema.between(min, max), Schema.annotations({ message: () => `a whole number from ${min} to ${max}` }))

/** `?keys=a,b`: the keys, comma-separated; empty names are dropped. */
const KeyList = Schema.transform(Schema.String, Schema.Array(Schema.String), {
  strict: true,
  decode: (text) => text.split(",").filter((key) => key.length > 0),
  encode: (keys) => keys.join(",")
})

/** `GET …/history`'s query: some keys (default all), steps from minStep to maxStep, at most `samples` buckets. */
export const HistoryParams = Schema.Struct({
  keys: Schema.optional(KeyList),
  samples: Schema.optional(WholeNumber(1, limits.maxSamples)),
  minStep: Schema.optional(WholeNumber(0, Number.MAX_SAFE_INTEGER)),
  maxStep: Schema.optional(WholeNumber(0, Number.MAX_SAFE_INTEGER))
}).pipe(
  Schema.filter((query) =>
    query.minStep === undefined || query.maxStep === undefined || query.minStep <= query.maxStep ||
    `?minStep=${query.minStep} is past ?maxStep=${query.maxStep}`)
)

/** `GET …/runs`' query (RunQuery.ts): a filter, a sort, at most `limit` runs (default 1,000), after `cursor` (a page's `next`). */
export const RunsParams = Schema.Struct({
  filter: Schema.optional(FilterText),
  sort: Schema.optional(SortText),
  limit: Schema.optional(WholeNumber(1, MAX_RUNS_LIMIT)),
  cursor: Schema.optional(CursorText)
})

/** `GET …/output`'s query: lines with seq > `after` (-1, the default: from the start), at most `limit`. */
export const OutputParams = Schema.Struct({
  after: Schema.optional(WholeNumber(-1, Number.MAX_SAFE_INTEGER)),
  limit: Schema.optional(WholeNumber(1, limits.maxOutputLines))
})

/** How a records body is sent: gzip, or as it is (the default; what a loopback upload uses). */
export const ContentEncoding = Schema.transform(Schema.String, Schema.Literal("gzip", "identity"), {
  strict: false,
  decode: (text) => text.trim().toLowerCase(),
  encode: (encoding) => encoding
})

/** Reading what the server holds. */
export class QueryGroup extends HttpApiGroup.make("query")
  .add(HttpApiEndpoint.get("whoami", "/whoami").addSuccess(WhoAmI))
  .add(HttpApiEndpoint.get("listProjects", "/projects").addSuccess(ProjectList))
  .add(HttpApiEndpoint.get("listRuns", "/projects/:project/runs").setPath(ProjectPath).setUrlParams(RunsParams).addSuccess(RunList))
  .add(HttpApiEndpoint.get("getRun", "/projects/:project/runs/:runId").setPath(RunPath).addSuccess(RunDetail).addError(NotFound))
  .add(
    HttpApiEndpoint.get("history", "/projects/:project/runs/:runId/history")
      .setPath(RunPath)
      .setUrlParams(HistoryParams)
      .addSuccess(History)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("output", "/projects/:project/runs/:runId/output")
      .setPath(RunPath)
      .setUrlParams(OutputParams)
      .addSuccess(OutputLines)
      .addError(NotFound)
  )
  .middleware(ReadAccess)
{}

/** The writes: the upload protocol's (each idempotent), and deleting a run. */
export class UploadGroup extends HttpApiGroup.make("upload")
  .add(
    HttpApiEndpoint.put("putRun", "/projects/:project/runs/:runId")
      .setPath(RunPath)
      .setPayload(RunMetadata)
      .addSuccess(RunDetail)
      .addError(BodyTooLarge)
      .addError(Gone)
  )
  .add(
    HttpApiEndpoint.post("postRecords", "/projects/:project/runs/:runId/records")
      .setPath(RunPath)
      .setHeaders(Schema.Struct({ "content-encoding": Schema.optional(ContentEncoding) }))
      .setPayload(HttpApiSchema.Uint8Array({ contentType: "application/msgpack" }))
      .addSuccess(Ack)
      .addError(BodyTooLarge)
      .addError(MediaUnsupported)
      .addError(Gone)
  )
  .add(HttpApiEndpoint.del("deleteRun", "/projects/:project/runs/:runId").setPath(RunPath).addSuccess(DeletedRun).addError(NotFound).addError(Gone))
  .middleware(WriteAccess)
{}

/**
 * The API. Refusals any endpoint may answer are declared once here; 404 and 405 also answer
 * paths and methods no endpoint declares (the server derives its `Allow` table from this).
 */
export class Api extends HttpApi.make("steplog")
  .add(QueryGroup)
  .add(UploadGroup)
  .addError(RequestInvalid)
  .addError(NotFound)
  .addError(MethodNotAllowed)
  .addError(ServerFailed)
  .addError(StoreFull)
  .prefix("/api/v1")
{}

/** Every declared endpoint as `METHOD /path`: what `whoami` says the server has. */
export const API_ROUTES: ReadonlyArray<string> = (() => {
  const routes: Array<string> = []
  HttpApi.reflect(Api, { onGroup: () => {}, onEndpoint: ({ endpoint }) => void routes.push(`${endpoint.method} ${endpoint.path}`) })
  return routes
})()
