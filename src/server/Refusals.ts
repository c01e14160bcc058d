/**
 * How the server's refusals (src/schemas/ApiErrors.ts) become answers outside the declared
 * endpoints, which HttpApiBuilder encodes itself: the API's fallbacks (ApiServer.ts: unknown paths,
 * wrong methods, a failure no endpoint declares) and the dashboard's own routes (Dashboard.ts).
 * Each answer is the refusal's JSON, `{ "_tag", "error", "detail" }`, with the status its class
 * declares. A failure that is not a refusal is a bug or a broken store: logged, answered 500.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { ApiFailure, NotFound, RequestInvalid, ServerFailed, statusOf, StoreFull } from "../schemas/ApiErrors.js"
import type { StoreFailed } from "./store/RecordStore.js"

const encodeFailure = Schema.encodeSync(ApiFailure)
const isFailure = Schema.is(ApiFailure)

/** The answer to a refusal, with any headers it needs (`Allow` on a 405). */
export const answer = (failure: ApiFailure, headers?: Readonly<Record<string, string>>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(encodeFailure(failure), { status: statusOf(failure), ...(headers === undefined ? {} : { headers }) })

/** The 404 of a path nothing serves. */
export const noEndpoint = (request: HttpServerRequest.HttpServerRequest) =>
  new NotFound({ detail: `no endpoint ${request.method} ${request.url.split("?")[0]}` })

const internal = new ServerFailed({ error: "internal", detail: "an unexpected server error" })

/**
 * A store failure, logged in one line, as the refusal that says nothing was changed: 507 when the
 * store's disk is full (the client sends it again later), else 500.
 */
export const storageFailed = (failure: StoreFailed): Effect.Effect<never, ServerFailed | StoreFull> =>
  failure.full
    ? Effect.zipRight(
      Effect.logWarning(`${failure.message}; answered 507, nothing was stored, and the client will send it again once space is freed`),
      Effect.fail(new StoreFull({ detail: "the server's store is full; nothing was stored; send it again later" }))
    )
    : Effect.zipRight(
      Effect.logError(failure.message),
      Effect.fail(new ServerFailed({ error: "storage_failed", detail: "the server could not read or write its store; nothing was changed" }))
    )

/** A store read or write, its failure turned into the API's 500 or 507. */
export const stored = <A, R>(effect: Effect.Effect<A, StoreFailed, R>): Effect.Effect<A, ServerFailed | StoreFull, R> => Effect.catchAll(effect, storageFailed)

/**
 * An HttpApp whose every failure is answered: a refusal as itself, a route nothing matched as
 * `unrouted` says (404 by default), a request that could not be read as a 400, anything else (a
 * defect included) as a logged 500.
 */
export const answerFailures = <E, R, R2 = never>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  unrouted: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, R2> = (request) =>
    Effect.succeed(answer(noEndpoint(request)))
) =>
  app.pipe(
    Effect.catchAll((failure): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R2 | HttpServerRequest.HttpServerRequest> => {
      if (isFailure(failure)) return Effect.succeed(answer(failure))
      switch ((failure as { readonly _tag?: unknown })._tag) {
        case "RouteNotFound":
          return Effect.flatMap(HttpServerRequest.HttpServerRequest, unrouted)
        case "RequestError":
          return Effect.succeed(answer(new RequestInvalid({ error: "bad_request", detail: "the request could not be read" })))
        default:
          return Effect.as(Effect.logError("steplog server: unexpected failure", failure), answer(internal))
      }
    }),
    Effect.catchAllDefect((defect) => Effect.as(Effect.logError("steplog server: defect", defect), answer(internal)))
  )
