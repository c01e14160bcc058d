/**
 * How the read-only CLI commands (`runs`, `export`) talk to a steplog server: which server
 * (`--base-url`, else STEPLOG_BASE_URL, else http://127.0.0.1:7077), with which key
 * (STEPLOG_API_KEY, else the credentials file entry for that server), and what a failure means
 * to a person at a terminal.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { storedKey } from "../../runtime/Credentials.js"
import { DEFAULT_BASE_URL } from "../../schemas/Settings.js"
import { ApiError } from "../../schemas/Wire.js"

/** A server request of a CLI command that could not be done. */
export class ServerRequestFailed extends Data.TaggedError("ServerRequestFailed")<{
  readonly reason: "no-key" | "unreachable" | "key-refused" | "rejected" | "malformed"
  readonly baseUrl: string
  readonly detail: string
}> {
  override get message(): string {
    switch (this.reason) {
      case "no-key":
        return `steplog: no API key for ${this.baseUrl}: set STEPLOG_API_KEY, or run \`steplog login --base-url ${this.baseUrl} <key>\``
      case "unreachable":
        return `steplog: no steplog server answers at ${this.baseUrl} (${this.detail}); start one with \`steplog server\`, or pass --base-url`
      case "key-refused":
        return `steplog: the server at ${this.baseUrl} refused the API key (${this.detail}); run \`steplog login\` with a valid key`
      case "rejected":
        return `steplog: the server at ${this.baseUrl} rejected the request: ${this.detail}`
      case "malformed":
        return `steplog: the server at ${this.baseUrl} answered something this steplog cannot read: ${this.detail}`
    }
  }
}

/** The server and key a command uses. */
export interface Connection {
  readonly baseUrl: string
  readonly apiKey: string
}

/** The server a command talks to: `--base-url`, else STEPLOG_BASE_URL, else the local default. */
export const serverUrl = (baseUrlOption: Option.Option<string>): string =>
  Option.getOrElse(baseUrlOption, () => process.env["STEPLOG_BASE_URL"] || DEFAULT_BASE_URL).replace(/\/+$/, "")

/** Resolves the server and key from the `--base-url` option, the environment and the credentials file. */
export const connection = (baseUrlOption: Option.Option<string>): Effect.Effect<Connection, ServerRequestFailed> => {
  const baseUrl = serverUrl(baseUrlOption)
  const apiKey = process.env["STEPLOG_API_KEY"] || storedKey(baseUrl)
  return apiKey === null
    ? Effect.fail(new ServerRequestFailed({ reason: "no-key", baseUrl, detail: "" }))
    : Effect.succeed({ baseUrl, apiKey })
}

/** GETs `path` from the server and decodes the JSON answer with `schema`. */
export const getJson = <A, I>(
  conn: Connection,
  path: string,
  schema: Schema.Schema<A, I>
): Effect.Effect<A, ServerRequestFailed, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const fail = (reason: ServerRequestFailed["reason"], detail: string) =>
      new ServerRequestFailed({ reason, baseUrl: conn.baseUrl, detail })
    const client = yield* HttpClient.HttpClient
    const response = yield* client
      .execute(HttpClientRequest.get(conn.baseUrl + path).pipe(HttpClientRequest.bearerToken(conn.apiKey)))
      .pipe(Effect.mapError((error) => fail("unreachable", error.message)))
    const body = yield* response.json.pipe(Effect.mapError((error) => fail("malformed", error.message)))
    if (response.status === 401 || response.status === 403) {
      return yield* fail("key-refused", `HTTP ${response.status}: ${describeError(body)}`)
    }
    if (response.status >= 400) return yield* fail("rejected", `HTTP ${response.status}: ${describeError(body)}`)
    return yield* Schema.decodeUnknown(schema)(body).pipe(Effect.mapError((error) => fail("malformed", error.message)))
  }).pipe(Effect.scoped)

const describeError = (body: unknown): string =>
  Schema.is(ApiError)(body) ? `${body.error}: ${JSON.stringify(body.detail)}` : JSON.stringify(body)
