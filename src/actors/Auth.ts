/**
 * The API key the service process uploads with. It comes from the run's options, else
 * `STEPLOG_API_KEY`, else the credentials file's entry for the server (Credentials.ts). When the
 * server answers 401, the Uploader asks for `reloadAfterRefusal`: the credentials file is read
 * again once, and a key different from the refused one (the user ran `steplog login` meanwhile)
 * is used from then on; the same key, or none, means the run's upload stops.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { storedKey } from "./Credentials.js"

/** The API key in use, and its reload after a 401. */
export class Auth extends Context.Tag("steplog/actors/Auth")<Auth, {
  /** The key to send now; None when there is none anywhere. */
  readonly current: Effect.Effect<Option.Option<string>>
  /**
   * Called once per 401 with the key that was refused: re-reads the credentials file, and
   * returns the new key if it differs from `refused` (and uses it from then on), else None.
   */
  readonly reloadAfterRefusal: (refused: string) => Effect.Effect<Option.Option<string>>
}>() {}

/** Where keys come from: `apiKey` (the run's option) beats `STEPLOG_API_KEY` beats the credentials file. */
export interface AuthOptions {
  readonly baseUrl: string
  readonly apiKey?: string | undefined
  readonly env?: Readonly<Record<string, string | undefined>>
}

/** Builds the Auth service over the credentials file of `env`. */
export const make = (options: AuthOptions): Effect.Effect<Auth["Type"]> =>
  Effect.gen(function* () {
    const env = options.env ?? process.env
    const fromFile = () => Option.fromNullable(storedKey(options.baseUrl, env))
    const first = Option.fromNullable(options.apiKey || env["STEPLOG_API_KEY"] || null).pipe(Option.orElse(fromFile))
    const key = yield* Ref.make(first)
    return {
      current: Ref.get(key),
      reloadAfterRefusal: (refused) =>
        Effect.gen(function* () {
          const reloaded = fromFile().pipe(Option.filter((candidate) => candidate !== refused))
          if (Option.isSome(reloaded)) yield* Ref.set(key, reloaded)
          return reloaded
        })
    }
  })

/** The Auth service from `options`. */
export const layer = (options: AuthOptions): Layer.Layer<Auth> => Layer.effect(Auth, make(options))

/** The login hint of every "no key" and "key refused" message. */
export const loginHint = (baseUrl: string): string =>
  `run \`steplog login --base-url ${baseUrl} <KEY>\` (or set STEPLOG_API_KEY) with a key from \`steplog keys create\`, then \`steplog sync\` to upload what is on disk`
