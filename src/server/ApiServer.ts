/**
 * The API (src/schemas/Api.ts) as an HttpApp, built with HttpApiBuilder from its handlers
 * (QueryHandlers.ts, UploadHandlers.ts) and security middlewares (Authorization.ts). Dashboard.ts
 * hands it every /api/ request.
 *
 * Around what the builder makes:
 *   - a path, query or header the declared schemas refuse is answered as the API declares it, not
 *     with the builder's own HttpApiDecodeError: a bad Content-Encoding 415, anything else 400 with
 *     a code naming what was wrong (`bad_project`, `bad_run_id`, `bad_query`);
 *   - a request no route matches is answered from the declaration's table of paths and methods: a
 *     known path with another method 405 with `Allow`, a path parameter over the router's length
 *     cap 400 by the path's schema (as a shorter bad one is), anything else 404;
 *   - every answer carries `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Api } from "../schemas/Api.js"
import { MediaUnsupported, MethodNotAllowed, RequestInvalid } from "../schemas/ApiErrors.js"
import { PROJECT_NAME_MAX_LENGTH } from "../schemas/Wire.js"
import * as Authorization from "./Authorization.js"
import * as QueryHandlers from "./QueryHandlers.js"
import { answer, answerFailures, noEndpoint } from "./Refusals.js"
import * as UploadHandlers from "./UploadHandlers.js"

/** The API as an HttpApp. */
export class ApiApp extends Context.Tag("steplog/server/ApiApp")<ApiApp, HttpApp.Default<never, HttpRouter.HttpRouter.DefaultServices>>() {}

const apiHeaders = { "x-content-type-options": "nosniff", "cache-control": "no-store" } as const

const acceptedEncodings = { "accept-encoding": "gzip, identity" } as const

/** What a refusal of the declared schemas says, by where it was: its first issue's path. */
const refusalOf = (issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>): RequestInvalid | MediaUnsupported => {
  const [first] = issues
  const where = first?.path[0]
  const detail = issues.map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message)).join("; ")
  switch (where) {
    case "project":
      return new RequestInvalid({ error: "bad_project", detail })
    case "runId":
      return new RequestInvalid({ error: "bad_run_id", detail })
    case "content-encoding":
      return new MediaUnsupported({ error: "unsupported_encoding", detail: `Content-Encoding: ${first!.message}; send gzip or identity` })
    default:
      return new RequestInvalid({ error: "bad_query", detail })
  }
}

/**
 * The builder's HttpApiDecodeError, answered as the API declares its refusals. HttpApp.Default
 * types the router's app as failing with nothing; it fails with the API's errors, which the
 * builder encodes after this middleware.
 */
const declaredRefusals = HttpApiBuilder.middleware((app) =>
  Effect.catchTag(app as HttpApp.Default<HttpApiDecodeError>, "HttpApiDecodeError", (error): Effect.Effect<never, RequestInvalid | MediaUnsupported> => {
    const refusal = refusalOf(error.issues)
    return refusal._tag === "MediaUnsupported"
      ? Effect.zipRight(HttpApp.appendPreResponseHandler((_, response) => Effect.succeed(HttpServerResponse.setHeaders(response, acceptedEncodings))), Effect.fail(refusal))
      : Effect.fail(refusal)
  }) as HttpApp.Default)

/** One declared endpoint's method and path pattern, split into segments. */
interface Route {
  readonly method: string
  readonly segments: ReadonlyArray<string>
  readonly decodePath: Option.Option<(params: unknown) => Either.Either<unknown, ParseResult.ParseError>>
}

const routes: Array<Route> = []
HttpApi.reflect(Api, {
  onGroup: () => {},
  onEndpoint: ({ endpoint }) => {
    routes.push({ method: endpoint.method, segments: endpoint.path.split("/"), decodePath: Option.map(endpoint.pathSchema, (schema) => Schema.decodeUnknownEither(schema)) })
  }
})

/** The path parameters of `segments` under a route's pattern, or null when the pattern does not match. */
const paramsOf = (route: Route, segments: ReadonlyArray<string>): Record<string, string> | null => {
  if (segments.length !== route.segments.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < segments.length; i++) {
    const pattern = route.segments[i]!
    if (pattern.startsWith(":")) {
      if (segments[i] === "") return null
      try {
        params[pattern.slice(1)] = decodeURIComponent(segments[i]!)
      } catch {
        params[pattern.slice(1)] = segments[i]!
      }
    } else if (pattern !== segments[i]) {
      return null
    }
  }
  return params
}

/** The answer to a request no route took: 405, 400 or 404, as the module comment says. */
const unrouted = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.sync(() => {
    const pathname = request.url.split("?")[0]!
    const method = request.method === "HEAD" ? "GET" : request.method
    const matching = routes.flatMap((route) => {
      const params = paramsOf(route, pathname.split("/"))
      return params === null ? [] : [{ route, params }]
    })
    const same = matching.find(({ route }) => route.method === method)
    if (same !== undefined) {
      // The route exists: the router refused a parameter over its length cap. The schema says why.
      const decoded = Option.map(same.route.decodePath, (decode) => decode(same.params))
      if (Option.isSome(decoded) && decoded.value._tag === "Left") {
        return answer(refusalOf(ParseResult.ArrayFormatter.formatErrorSync(decoded.value.left)))
      }
      return answer(noEndpoint(request))
    }
    if (matching.length === 0) return answer(noEndpoint(request))
    const allow = matching.flatMap(({ route }) => (route.method === "GET" ? ["GET", "HEAD"] : [route.method])).join(", ")
    return answer(new MethodNotAllowed({ detail: `${request.method} is not allowed on ${pathname}; allowed: ${allow}` }), { allow })
  })

/** The API's HttpApp over the RecordStore, KeyStore and Sessions of its context. */
export const layer = Layer.effect(
  ApiApp,
  Effect.map(
    HttpApiBuilder.httpApp.pipe(HttpRouter.withRouterConfig({ maxParamLength: PROJECT_NAME_MAX_LENGTH })),
    (app): ApiApp["Type"] => answerFailures(app, unrouted).pipe(Effect.map((response) => HttpServerResponse.setHeaders(response, apiHeaders)))
  )
).pipe(
  Layer.provide(
    HttpApiBuilder.api(Api).pipe(
      Layer.provide([QueryHandlers.layer, UploadHandlers.layer]),
      Layer.provide([Authorization.layerRead, Authorization.layerWrite])
    )
  ),
  Layer.provide(declaredRefusals),
  Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer])
)
