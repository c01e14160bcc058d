/**
 * How the CLI commands that read from a steplog server (`runs`, `export`, `login`) talk to it:
 * which server (`--base-url`, else STEPLOG_BASE_URL, else http://127.0.0.1:7077), with which key
 * (STEPLOG_API_KEY, else the credentials file entry for that server), through the API's client
 * (actors/ApiClient.ts), and what a failure means to a person at a terminal.
 */
import * as Options from "@effect/cli/Options"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ApiClient from "../../actors/ApiClient.js"
import { resolveServer } from "../../actors/Credentials.js"

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

/** The `--base-url` option of the commands that talk to a server. */
export const baseUrl = Options.text("base-url").pipe(
  Options.withDescription("The steplog server. Default: STEPLOG_BASE_URL, else http://127.0.0.1:7077. The API key comes from STEPLOG_API_KEY, else the credentials file entry for that server (see `steplog login`)."),
  Options.optional
)

/** The server and key a command uses. */
export interface Connection {
  readonly baseUrl: string
  readonly apiKey: string
}

/** The server a command talks to: `--base-url`, else STEPLOG_BASE_URL, else the local default. */
export const serverUrl = (baseUrlOption: Option.Option<string>): string => resolveServer({ baseUrl: Option.getOrUndefined(baseUrlOption), apiKey: "" }).baseUrl

/** Resolves the server and key from the `--base-url` option, the environment and the credentials file. */
export const connection = (baseUrlOption: Option.Option<string>): Effect.Effect<Connection, ServerRequestFailed> => {
  const { baseUrl, apiKey } = resolveServer({ baseUrl: Option.getOrUndefined(baseUrlOption) })
  return apiKey === null
    ? Effect.fail(new ServerRequestFailed({ reason: "no-key", baseUrl, detail: "" }))
    : Effect.succeed({ baseUrl, apiKey })
}

/** Calls the API on the connection's server with its key: what `call` answers, or why a person gets nothing. */
export const request = <A>(
  conn: Connection,
  call: (api: ApiClient.ApiClient) => Effect.Effect<A, ApiClient.ApiCallFailure>
): Effect.Effect<A, ServerRequestFailed, HttpClient.HttpClient> =>
  Effect.flatMap(ApiClient.make({ baseUrl: conn.baseUrl, key: conn.apiKey }), (api) =>
    Effect.catchAll(call(api), (failure) =>
      Effect.flatMap(ApiClient.refusalOf(failure), (refusal) => {
        const fail = (reason: ServerRequestFailed["reason"], detail: string) =>
          Effect.fail(new ServerRequestFailed({ reason, baseUrl: conn.baseUrl, detail }))
        if (Option.isSome(refusal)) {
          const { status, detail } = refusal.value
          return fail(status === 401 || status === 403 ? "key-refused" : "rejected", `HTTP ${status}: ${detail}`)
        }
        return fail(failure._tag === "RequestError" ? "unreachable" : "malformed", failure.message)
      })))
