/**
 * The server's HTTP face: the upload protocol's endpoints (src/schemas/Wire.ts lists them) on top
 * of a RecordStore, behind the KeyStore's Bearer keys or a dashboard session (Sessions.ts) made
 * from one. Dashboard.ts serves everything outside /api/ and hands /api/ to `app` here.
 *
 * Every request is checked in the same order, and a rejected request changes nothing:
 *   route (404, or 405 with Allow) → key (401) → path (400) → the key's projects (403) →
 *   body / query (400, 413, 415) → the store.
 * Every 4xx and 5xx body is an ApiError: `{ "error": code, "detail": what exactly was wrong }`.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Unpackr } from "msgpackr"
import { RunId, UploadRecord } from "../schemas/Record.js"
import { Ack, ApiError, History, OutputLines, ProjectList, ProjectName, RunDetail, RunList, RunMetadata, WhoAmI } from "../schemas/Wire.js"
import { allows, KeyStore, type KeyInfo } from "./store/KeyStore.js"
import { readBody } from "./internal/body.js"
import { asHistoryRecord } from "./internal/historyRow.js"
import { RecordStore } from "./store/RecordStore.js"
import { SESSION_COOKIE, Sessions } from "./store/SessionStore.js"

/** Most bytes a request body may have as sent (compressed or not), and once inflated. */
export const limits = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxInflatedBytes: 64 * 1024 * 1024,
  /** A PUT run body is a small JSON object. */
  maxMetadataBytes: 1024 * 1024,
  maxSamples: 10_000,
  /** Output lines one `GET …/output` answers at most, and by default. */
  maxOutputLines: 10_000,
  defaultOutputLines: 1_000
} as const

/** A request the server turns down: its status, error code and detail, as an ApiError body. */
export class RequestRejected extends Data.TaggedError("RequestRejected")<{
  readonly status: number
  readonly error: string
  readonly detail: ApiError["detail"]
  readonly headers?: Readonly<globalThis.Record<string, string>>
}> {}

export const reject = (status: number, error: string, detail: ApiError["detail"]) => new RequestRejected({ status, error, detail })

const errorResponse = (status: number, error: string, detail: ApiError["detail"], headers?: Readonly<globalThis.Record<string, string>>) =>
  HttpServerResponse.unsafeJson({ error, detail } satisfies ApiError, { status, ...(headers ? { headers } : {}) })

const formatParseError = (error: ParseResult.ParseError): string => ParseResult.TreeFormatter.formatErrorSync(error)

// The SDK packs batches with msgpackr's record extension (as the journal does); this reads both that
// and plain msgpack.
const unpackr = new Unpackr({ useRecords: true })
const decodeRecord = Schema.decodeUnknownEither(UploadRecord)
const decodeMetadata = Schema.decodeUnknownEither(RunMetadata)
const decodeProject = Schema.decodeUnknownEither(ProjectName)
const decodeRunId = Schema.decodeUnknownEither(RunId)

// ---------------------------------------------------------------------------------------------
// Keys and paths

/** Whom a request acts for: a key's name and projects (a sign-in-token session: every project). */
export type Principal = Pick<KeyInfo, "name" | "projects">

/**
 * Whom the request's session cookie signs in, if it names a live session whose key (when it was
 * made from one) is not revoked since. The key is looked up afresh each time because `steplog keys
 * revoke` changes the store from another process; the keys table is small.
 */
export const signedIn = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const id = request.cookies[SESSION_COOKIE]
  if (id === undefined) return Option.none<Principal>()
  const session = yield* Effect.flatMap(Sessions, (sessions) => sessions.get(id))
  if (Option.isNone(session)) return Option.none<Principal>()
  const made = session.value.key
  if (made === null) return Option.some<Principal>({ name: "sign-in link", projects: "*" })
  const key = (yield* Effect.flatMap(KeyStore, (keys) => keys.list)).find((k) => k.id === made.id && k.revokedAt === null)
  return Option.fromNullable<Principal | undefined>(key)
})

/**
 * Whom the request acts for: the unrevoked key of its `Authorization: Bearer …` header, else the
 * dashboard session of its cookie; 401 otherwise. A bad Bearer key is refused even with a session.
 */
const authenticate = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const header = request.headers["authorization"]
  if (header === undefined) {
    const session = yield* signedIn
    if (Option.isSome(session)) return session.value
    return yield* reject(
      401,
      "unauthorized",
      "this endpoint needs an API key: send `Authorization: Bearer <key>` (see `steplog keys create`), or sign in to the dashboard"
    )
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (match === null) {
    return yield* reject(401, "unauthorized", "this endpoint needs an API key: send `Authorization: Bearer <key>` (see `steplog keys create`)")
  }
  const keys = yield* KeyStore
  const key = yield* keys.verify(match[1]!)
  if (Option.isNone(key)) return yield* reject(401, "unauthorized", "the API key is unknown or revoked")
  return key.value
})

const projectParam = Effect.gen(function* () {
  const params = yield* HttpRouter.params
  const project = decodeProject(params["project"])
  if (project._tag === "Left") return yield* reject(400, "bad_project", formatParseError(project.left))
  return project.right
})

const runIdParam = Effect.gen(function* () {
  const params = yield* HttpRouter.params
  const runId = decodeRunId(params["runId"])
  if (runId._tag === "Left") return yield* reject(400, "bad_run_id", formatParseError(runId.left))
  return runId.right
})

/** The key, after checking it may use the path's project (403 otherwise). */
const authorize = (project: ProjectName, key: Principal) =>
  allows(key.projects, project)
    ? Effect.succeed(key)
    : Effect.fail(
        reject(403, "forbidden", `the API key "${key.name}" may not use project "${project}"; it is scoped to ${(key.projects as ReadonlyArray<string>).join(", ")}`)
      )

/** Authenticates, then reads and authorizes the path's project (and run id, when the path has one). */
const projectAccess = Effect.gen(function* () {
  const key = yield* authenticate
  const project = yield* projectParam
  yield* authorize(project, key)
  return { key, project }
})

const runAccess = Effect.gen(function* () {
  const key = yield* authenticate
  const project = yield* projectParam
  const runId = yield* runIdParam
  yield* authorize(project, key)
  return { key, project, runId }
})

/**
 * The request body under the caps. Read from Node's request directly rather than
 * `request.stream`, whose end destroys the request (and with it the connection) when reading stops
 * early; here the rest of a refused body is read and dropped instead, so that the client gets to
 * read the answer (Node's requestTimeout bounds how long that may take).
 */
export const requestBody = (request: HttpServerRequest.HttpServerRequest, options: { readonly gzip: boolean; readonly maxBytes: number; readonly maxInflated: number }) => {
  const incoming = NodeHttpServerRequest.toIncomingMessage(request)
  const chunks = NodeStream.fromReadable<Error, Uint8Array>(() => incoming, (cause) => cause as Error, { closeOnDone: false })
  return readBody(chunks, options).pipe(
    Effect.ensuring(Effect.sync(() => {
      if (!incoming.readableEnded) incoming.resume()
    }))
  )
}

const runNotFound = (project: string, runId: string) => reject(404, "not_found", `no run "${runId}" in project "${project}"`)

// ---------------------------------------------------------------------------------------------
// Handlers

const whoami = Effect.gen(function* () {
  const key = yield* authenticate
  return yield* HttpServerResponse.schemaJson(WhoAmI)({ name: key.name, projects: key.projects })
})

const listProjects = Effect.gen(function* () {
  const key = yield* authenticate
  const store = yield* RecordStore
  const all = yield* store.listProjects
  // A key sees only the projects it may use.
  return yield* HttpServerResponse.schemaJson(ProjectList)({ projects: all.projects.filter((p) => allows(key.projects, p.name)) })
})

const listRuns = Effect.gen(function* () {
  const { project } = yield* projectAccess
  const store = yield* RecordStore
  return yield* HttpServerResponse.schemaJson(RunList)(yield* store.listRuns(project))
})

const getRun = Effect.gen(function* () {
  const { project, runId } = yield* runAccess
  const store = yield* RecordStore
  const run = yield* store.getRun(project, runId)
  if (Option.isNone(run)) return yield* runNotFound(project, runId)
  return yield* HttpServerResponse.schemaJson(RunDetail)(run.value)
})

const putRun = Effect.gen(function* () {
  const { project, runId } = yield* runAccess
  const request = yield* HttpServerRequest.HttpServerRequest
  const body = yield* requestBody(request, {
    gzip: false,
    maxBytes: limits.maxMetadataBytes,
    maxInflated: limits.maxMetadataBytes
  })
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(body).toString("utf8"))
  } catch (error) {
    return yield* reject(400, "malformed_json", `the body is not JSON: ${(error as Error).message}`)
  }
  const metadata = decodeMetadata(json)
  if (metadata._tag === "Left") return yield* reject(400, "invalid_metadata", formatParseError(metadata.left))
  const store = yield* RecordStore
  return yield* HttpServerResponse.schemaJson(RunDetail)(yield* store.putRun(project, runId, metadata.right))
})

const postRecords = Effect.gen(function* () {
  const { project, runId } = yield* runAccess
  const request = yield* HttpServerRequest.HttpServerRequest

  const encoding = (request.headers["content-encoding"] ?? "identity").trim().toLowerCase()
  if (encoding !== "gzip" && encoding !== "identity") {
    return yield* new RequestRejected({
      status: 415,
      error: "unsupported_encoding",
      detail: `Content-Encoding "${encoding}" is not accepted; send gzip or identity`,
      headers: { "accept-encoding": "gzip, identity" }
    })
  }
  // A declared length over the cap is refused before a byte of the body is read.
  const declared = Number(request.headers["content-length"] ?? NaN)
  if (declared > limits.maxBodyBytes) return yield* tooLarge(`the request body is ${declared} bytes, over the ${limits.maxBodyBytes}-byte cap`)

  const body = yield* requestBody(request, {
    gzip: encoding === "gzip",
    maxBytes: limits.maxBodyBytes,
    maxInflated: limits.maxInflatedBytes
  }).pipe(
    Effect.catchTag("BodyRefused", (refused) =>
      refused.reason === "bad-gzip" ? Effect.fail(reject(400, "malformed_gzip", refused.detail)) : Effect.fail(tooLarge(refused.detail))
    )
  )

  let batch: unknown
  try {
    batch = unpackr.unpack(body)
  } catch (error) {
    return yield* reject(400, "malformed_msgpack", `the body is not msgpack: ${(error as Error).message}`)
  }
  if (!Array.isArray(batch)) return yield* reject(400, "malformed_batch", "the body must be a msgpack array of records")

  const records: Array<UploadRecord> = []
  for (let index = 0; index < batch.length; index++) {
    // A plain history row is checked cheaply; the rest by the schema, a history block once for
    // all of its rows.
    const row = asHistoryRecord(batch[index])
    if (row !== null) {
      records.push(row)
      continue
    }
    const decoded = decodeRecord(batch[index])
    if (decoded._tag === "Left") {
      return yield* reject(400, "invalid_record", { index, message: `record ${index} of the batch: ${formatParseError(decoded.left)}` })
    }
    const record = decoded.right
    if (record.kind === "run" && (record.runId !== runId || record.project !== project)) {
      return yield* reject(400, "wrong_run", {
        index,
        message: `record ${index} of the batch opens run "${record.runId}" of project "${record.project}", not "${runId}" of "${project}"`
      })
    }
    records.push(record)
  }

  const store = yield* RecordStore
  return yield* HttpServerResponse.schemaJson(Ack)(yield* store.ingest(project, runId, records))
})

/** 413: a request body over its cap. */
export const tooLarge = (detail: string) => reject(413, "payload_too_large", detail)

/** The query parameter `name`, given at most once (400 otherwise). */
const single = (name: string) =>
  Effect.flatMap(HttpServerRequest.ParsedSearchParams, (search) =>
    Array.isArray(search[name]) ? Effect.fail(reject(400, "bad_query", `give ?${name}= at most once`)) : Effect.succeed(search[name] as string | undefined))

/** The query parameter `name` as a whole number from `min` to `max`; undefined when absent. */
const wholeNumber = (name: string, min: number, max: number) =>
  Effect.flatMap(single(name), (text) => {
    if (text === undefined) return Effect.succeed(undefined)
    const value = /^-?[0-9]{1,16}$/.test(text) ? Number(text) : NaN
    return value >= min && value <= max
      ? Effect.succeed(value)
      : Effect.fail(reject(400, "bad_query", `?${name}= takes a whole number from ${min} to ${max}, not "${text}"`))
  })

/** `?keys=a,b&samples=N&minStep=A&maxStep=B`. */
const historyQuery = Effect.gen(function* () {
  const keysParam = yield* single("keys")
  const samples = yield* wholeNumber("samples", 1, limits.maxSamples)
  const minStep = yield* wholeNumber("minStep", 0, Number.MAX_SAFE_INTEGER)
  const maxStep = yield* wholeNumber("maxStep", 0, Number.MAX_SAFE_INTEGER)
  if (minStep !== undefined && maxStep !== undefined && minStep > maxStep) {
    return yield* reject(400, "bad_query", `?minStep=${minStep} is past ?maxStep=${maxStep}`)
  }
  const keys = keysParam === undefined ? undefined : keysParam.split(",").filter((key) => key.length > 0)
  return {
    ...(keys !== undefined && keys.length > 0 ? { keys } : {}),
    ...(samples !== undefined ? { samples } : {}),
    ...(minStep !== undefined ? { minStep } : {}),
    ...(maxStep !== undefined ? { maxStep } : {})
  }
})

const history = Effect.gen(function* () {
  const { project, runId } = yield* runAccess
  const query = yield* historyQuery
  const store = yield* RecordStore
  const rows = yield* store.history(project, runId, query)
  if (Option.isNone(rows)) return yield* runNotFound(project, runId)
  return yield* HttpServerResponse.schemaJson(History)(rows.value)
})

/** `?after=SEQ&limit=N`: lines with seq > after (-1, the default: from the start), at most N. */
const output = Effect.gen(function* () {
  const { project, runId } = yield* runAccess
  const after = (yield* wholeNumber("after", -1, Number.MAX_SAFE_INTEGER)) ?? -1
  const limit = (yield* wholeNumber("limit", 1, limits.maxOutputLines)) ?? limits.defaultOutputLines
  const store = yield* RecordStore
  const lines = yield* store.output(project, runId, { after, limit })
  if (Option.isNone(lines)) return yield* runNotFound(project, runId)
  return yield* HttpServerResponse.schemaJson(OutputLines)(lines.value)
})

// ---------------------------------------------------------------------------------------------
// Routing

type Handler<R> = Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>

/**
 * One route a path, whatever the method, so that a known path with a wrong method gets 405 and
 * the methods it takes (HEAD is GET without the body).
 */
export const path = <R>(pattern: `/${string}`, methods: Partial<globalThis.Record<"GET" | "PUT" | "POST", Handler<R>>>) =>
  HttpRouter.all(
    pattern,
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const method = request.method === "HEAD" ? "GET" : request.method
      const handler = (methods as globalThis.Record<string, Handler<R> | undefined>)[method]
      if (handler === undefined) {
        const allow = Object.keys(methods).flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m])).join(", ")
        return yield* new RequestRejected({
          status: 405,
          error: "method_not_allowed",
          detail: `${request.method} is not allowed on ${pattern}; allowed: ${allow}`,
          headers: { allow }
        })
      }
      return yield* handler
    })
  )

const router = HttpRouter.empty.pipe(
  path("/api/v1/whoami", { GET: whoami }),
  path("/api/v1/projects", { GET: listProjects }),
  path("/api/v1/projects/:project/runs", { GET: listRuns }),
  path("/api/v1/projects/:project/runs/:runId", { GET: getRun, PUT: putRun }),
  path("/api/v1/projects/:project/runs/:runId/records", { POST: postRecords }),
  path("/api/v1/projects/:project/runs/:runId/history", { GET: history }),
  path("/api/v1/projects/:project/runs/:runId/output", { GET: output })
)

/** An HttpApp whose every failure becomes an ApiError answer (a 5xx one logged). */
export const answerFailures = <E, R>(routes: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  routes.pipe(
    Effect.catchAll((failure) => {
      const tag = (failure as { readonly _tag?: string })._tag
      switch (tag) {
        case "RequestRejected": {
          const rejected = failure as RequestRejected
          return Effect.succeed(errorResponse(rejected.status, rejected.error, rejected.detail, rejected.headers))
        }
        case "RouteNotFound": {
          return Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
            errorResponse(404, "not_found", `no endpoint ${request.method} ${request.url.split("?")[0]}`)
          )
        }
        case "StoreFailed":
          return Effect.as(Effect.logError(failure), errorResponse(500, "storage_failed", "the server could not read or write its store; nothing was changed"))
        case "RequestError":
          return Effect.succeed(errorResponse(400, "bad_request", "the request could not be read"))
        default:
          return Effect.as(Effect.logError("steplog server: unexpected failure", failure), errorResponse(500, "internal", "an unexpected server error"))
      }
    }),
    Effect.catchAllDefect((defect) =>
      Effect.as(Effect.logError("steplog server: defect", defect), errorResponse(500, "internal", "an unexpected server error"))
    )
  )

/** The API as an HttpApp: every failure becomes an ApiError answer. */
export const app = answerFailures(router)
