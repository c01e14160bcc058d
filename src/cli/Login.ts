/**
 * `steplog login [--base-url URL] [KEY]`: checks an API key against the server (`/whoami`) and
 * stores it in the credentials file (mode 0600) for that server, so that runs and commands on this
 * machine find it. Without KEY it asks for one, without echoing it.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Prompt from "@effect/cli/Prompt"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { storeKey } from "../actors/Credentials.js"
import { baseUrl, request, serverUrl } from "./internal/ServerRequest.js"

const key = Args.redacted({ name: "key" }).pipe(
  Args.withDescription("The API key (from `steplog keys create`, or printed by the server's first start). Asked for when left out."),
  Args.optional
)

/** The `login` command. */
export const login = Command.make("login", { key, baseUrl }, (options) =>
  Effect.gen(function* () {
    const server = serverUrl(options.baseUrl)
    const apiKey = Option.isSome(options.key)
      ? Redacted.value(options.key.value)
      : Redacted.value(yield* Prompt.password({ message: `API key for ${server}` }))
    const who = yield* request({ baseUrl: server, apiKey: apiKey.trim() }, (api) => api.query.whoami())
    const file = storeKey(server, apiKey.trim())
    const scope = who.projects === "*" ? "every project" : `projects ${who.projects.join(", ")}`
    yield* Console.log(`logged in to ${server} as "${who.name}" (${scope}); the key is stored in ${file}`)
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))
).pipe(Command.withDescription("Check an API key against a steplog server and store it in the credentials file (mode 0600) for that server."))
