/**
 * The API's client for one server and one key: the HttpApiClient derived from the declaration
 * (src/schemas/Api.ts), through which the Uploader, RunUpload, the CLI and steplog/testing call
 * every endpoint, with no URL written by hand. Not an actor: it lives here, the lowest layer that
 * talks to a server, so that every one of them can import it.
 *
 * Every answer a caller must go by the status of comes back as the status, not as a decoding
 * failure: a status no endpoint declares (a load balancer's 502 or 429) HttpApiClient already
 * fails as an HttpClientError.ResponseError carrying the answer; here, so does an answer at a
 * declared status whose body is not one of the API's refusals at that status (a proxy's HTML 500,
 * an older server's `{ error, detail }`). `refusalOf` reads either kind back as status, headers
 * and text.
 */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import type { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Api } from "../schemas/Api.js"
import { ApiFailure, describeFailure, statusByTag, statusOf } from "../schemas/ApiErrors.js"
import { MAX_RUNS_LIMIT } from "../schemas/RunQuery.js"
import type { ProjectName, RunDetail } from "../schemas/Wire.js"

const isRefusal = Schema.is(ApiFailure)
const utf8 = new TextDecoder()

/** Whether a non-2xx answer's body is one of the API's refusals, declared at the answer's status. */
const isOwnRefusal = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.map(Effect.option(response.arrayBuffer), (bytes) => {
    try {
      const tag: unknown = Option.isSome(bytes) ? JSON.parse(utf8.decode(bytes.value))?._tag : undefined
      return typeof tag === "string" && tag in statusByTag && statusByTag[tag as ApiFailure["_tag"]] === response.status
    } catch {
      return false
    }
  })

/**
 * Fails a non-2xx answer that is not one of the API's own refusals as a ResponseError carrying
 * it. The body is read once: both implementations of HttpClientResponse cache `arrayBuffer`, which
 * HttpApiClient's decoding and `refusalOf` read again.
 */
const ownAnswers = (response: HttpClientResponse.HttpClientResponse) =>
  response.status < 300
    ? Effect.succeed(response)
    : Effect.flatMap(isOwnRefusal(response), (own) =>
      own ? Effect.succeed(response) : Effect.fail(new HttpClientError.ResponseError({ request: response.request, response, reason: "StatusCode" })))

const build = (httpClient: HttpClient.HttpClient, baseUrl: string, key: string) =>
  HttpApiClient.makeWith(Api, {
    baseUrl,
    httpClient: httpClient.pipe(
      HttpClient.mapRequest(HttpClientRequest.bearerToken(key)),
      HttpClient.transformResponse(Effect.flatMap(ownAnswers))
    )
  })

/** The API's client. */
export type ApiClient = Effect.Effect.Success<ReturnType<typeof build>>

/**
 * The clients made, by HTTP client, then by server and key: making one reflects over the whole
 * API (~5 ms of CPU, ~30 the first time), and an upload service asks for one for every run it
 * uploads and every small request it makes.
 */
const made = new WeakMap<HttpClient.HttpClient, Map<string, ApiClient>>()

/** The API's client for the server at `baseUrl`, every request carrying `key` as its Bearer token. */
export const make = (options: { readonly baseUrl: string; readonly key: string }) =>
  Effect.flatMap(HttpClient.HttpClient, (httpClient): Effect.Effect<ApiClient> => {
    const baseUrl = options.baseUrl.replace(/\/+$/, "")
    let byTarget = made.get(httpClient)
    if (byTarget === undefined) made.set(httpClient, (byTarget = new Map()))
    const target = `${baseUrl} ${options.key}`
    const known = byTarget.get(target)
    // Made in an empty context: the client keeps the context it is made in, which would hold on to the first caller's.
    const fresh = build(httpClient, baseUrl, options.key).pipe(Effect.provide(Context.empty()))
    return known !== undefined ? Effect.succeed(known) : Effect.tap(fresh, (client) => byTarget.set(target, client))
  })

/**
 * How a call of the client can fail: a refusal, no answer or a foreign one, or an answer it could
 * not read. (HttpApiDecodeError is declared by every HttpApi; the server answers its own 400s
 * instead, and `ownAnswers` would hand one over as foreign.)
 */
export type ApiCallFailure = ApiFailure | HttpApiDecodeError | HttpClientError.HttpClientError | ParseResult.ParseError

/** A refused call as it was answered. */
export interface Refusal {
  readonly status: number
  readonly headers: { readonly [name: string]: string | undefined }
  /** What the answer said, for a person: the refusal's code and detail, or the start of a foreign body. */
  readonly detail: string
}

/**
 * The answer that refused a call: a declared refusal, or a foreign answer outside 2xx; none when
 * the call got no answer (the network) or a 2xx it could not read.
 */
export const refusalOf = (failure: ApiCallFailure): Effect.Effect<Option.Option<Refusal>> => {
  if (isRefusal(failure)) return Effect.succeedSome({ status: statusOf(failure), headers: {}, detail: describeFailure(failure) })
  if (failure._tag === "HttpApiDecodeError") return Effect.succeedSome({ status: 400, headers: {}, detail: failure.message })
  if (failure._tag !== "ResponseError" || (failure.response.status >= 200 && failure.response.status < 300)) return Effect.succeedNone
  const { response } = failure
  return Effect.map(Effect.option(response.arrayBuffer), (bytes) =>
    Option.some({
      status: response.status,
      headers: response.headers,
      detail: Option.match(bytes, { onNone: () => "", onSome: (body) => utf8.decode(body).slice(0, 500).trim() })
    }))
}

/** Which runs a listing keeps and in what order, as texts (src/schemas/RunQuery.ts). */
export interface RunsFilterTexts {
  readonly filter?: string
  readonly sort?: string
}

/** Every run of `project` that `params` keeps, in its order: the listing's pages followed to the end. */
export const allRuns = (client: ApiClient, project: ProjectName, params: RunsFilterTexts = {}) =>
  Effect.gen(function* () {
    const runs: Array<RunDetail> = []
    let cursor: string | undefined
    do {
      const page = yield* client.query.listRuns({ path: { project }, urlParams: { ...params, limit: MAX_RUNS_LIMIT, ...(cursor === undefined ? {} : { cursor }) } })
      runs.push(...page.runs)
      cursor = page.next
    } while (cursor !== undefined)
    return runs
  })
