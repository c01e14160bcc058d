/**
 * The dashboard's sign-ins, held in the server process's memory (a restart signs everyone out):
 *
 * - a session is what the `steplog_session` cookie names: made from an API key (and then limited
 *   to that key's projects, and ended by the key's revocation) or from a sign-in token (every
 *   project: the token is only ever shown to the server's operator). It lasts SESSION_TTL.
 * - a sign-in token is what `ServerInfo.signInUrl` puts in the dashboard URL it prints: usable
 *   once, for TOKEN_TTL.
 *
 * Ids and tokens are 32 bytes from the OS's CSPRNG, base64url (43 characters). Time is read
 * through Clock, so tests drive expiry with TestClock. Expired entries are swept whenever a new
 * one is made, so the maps hold only live sessions and tokens.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import type { KeyInfo } from "./ApiKeys.js"

/** How long a sign-in token may wait to be used. */
export const TOKEN_TTL = Duration.hours(24)
/** How long a session lasts (the cookie's Max-Age says the same to the browser). */
export const SESSION_TTL = Duration.days(30)
/** The cookie that carries a session id (declared with the API, whose security reads it). */
export { SESSION_COOKIE } from "../schemas/Api.js"

/** One signed-in browser. */
export interface Session {
  /** The key it signed in with; null for a session from a sign-in token (every project). */
  readonly key: KeyInfo | null
  /** ms since the epoch, by Clock. */
  readonly expiresAt: number
}

/** The sessions and sign-in tokens of this server process. */
export class Sessions extends Context.Tag("steplog/server/Sessions")<
  Sessions,
  {
    /** A fresh sign-in token, good for one session within TOKEN_TTL. */
    readonly mintToken: Effect.Effect<string>
    /** Spends a token: the id of a new every-project session, or none when the token is unknown, used or expired. */
    readonly redeemToken: (token: string) => Effect.Effect<Option.Option<string>>
    /** A new session for a key (already verified by the caller); answers its id. */
    readonly open: (key: KeyInfo) => Effect.Effect<string>
    /** The unexpired session with this id, if any. */
    readonly get: (id: string) => Effect.Effect<Option.Option<Session>>
    /** Ends a session; ending an unknown one is harmless. */
    readonly drop: (id: string) => Effect.Effect<void>
  }
>() {}

const newSecret = (): string => crypto.randomBytes(32).toString("base64url")

/** Sessions and tokens in two maps; every operation is synchronous, so no lock is needed. */
export const make = Effect.sync(() => {
  const sessions = new Map<string, Session>()
  /** token → expiresAt (ms) */
  const tokens = new Map<string, number>()
  const sweep = (now: number) => {
    for (const [id, session] of sessions) if (session.expiresAt <= now) sessions.delete(id)
    for (const [token, expiresAt] of tokens) if (expiresAt <= now) tokens.delete(token)
  }
  const openFor = (key: KeyInfo | null) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      sweep(now)
      const id = newSecret()
      sessions.set(id, { key, expiresAt: now + Duration.toMillis(SESSION_TTL) })
      return id
    })

  return Sessions.of({
    mintToken: Effect.map(Clock.currentTimeMillis, (now) => {
      sweep(now)
      const token = newSecret()
      tokens.set(token, now + Duration.toMillis(TOKEN_TTL))
      return token
    }),
    redeemToken: (token) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const expiresAt = tokens.get(token)
        // Deleted whether or not it is still valid: a token is spent by its first use.
        tokens.delete(token)
        return expiresAt !== undefined && now < expiresAt ? Effect.asSome(openFor(null)) : Effect.succeedNone
      }),
    open: openFor,
    get: (id) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const session = sessions.get(id)
        return session !== undefined && now < session.expiresAt ? Option.some(session) : Option.none()
      }),
    drop: (id) => Effect.sync(() => void sessions.delete(id))
  })
})

/** This process's sessions, empty at start. */
export const layer: Layer.Layer<Sessions> = Layer.effect(Sessions, make)
