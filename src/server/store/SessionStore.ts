/**
 * The dashboard's sign-ins, kept in the server's store (store/internal/sessions.ts), so that any
 * server process of one store answers any request, and a restart signs no one out:
 *
 * - a session is what the `steplog_session` cookie names: made from an API key (and then limited
 *   to that key's projects, and ended by the key's revocation) or from a sign-in token (every
 *   project: the token is only ever shown to the server's operator). It lasts SESSION_TTL.
 * - a sign-in token is what `ServerInfo.signInUrl` puts in the dashboard URL it prints: usable
 *   once, for TOKEN_TTL, by whichever process gets it first.
 *
 * Ids and tokens are 32 bytes from the OS's CSPRNG, base64url (43 characters); the store keeps
 * only their SHA-256 hashes, so a copy of the database opens no session. Time is read through
 * Clock, so tests drive expiry with TestClock. Expired entries are swept whenever a new one is made.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { KeyInfo } from "./KeyStore.js"
import type { StoreFailed } from "./RecordStore.js"

/** How long a sign-in token may wait to be used. */
export const TOKEN_TTL = Duration.hours(24)
/** How long a session lasts (the cookie's Max-Age says the same to the browser). */
export const SESSION_TTL = Duration.days(30)

/** One signed-in browser. */
export interface Session {
  /** The key it signed in with (as it is now: revoked since, when it was); null for a session from a sign-in token (every project). */
  readonly key: KeyInfo | null
  /** ms since the epoch, by Clock. */
  readonly expiresAt: number
}

/** The sessions and sign-in tokens of the server's store. */
export class Sessions extends Context.Tag("steplog/server/Sessions")<
  Sessions,
  {
    /** A fresh sign-in token, good for one session within TOKEN_TTL. */
    readonly mintToken: Effect.Effect<string, StoreFailed>
    /** Spends a token: the id of a new every-project session, or none when the token is unknown, used or expired. */
    readonly redeemToken: (token: string) => Effect.Effect<Option.Option<string>, StoreFailed>
    /** A new session for a key (already verified by the caller); answers its id. */
    readonly open: (key: KeyInfo) => Effect.Effect<string, StoreFailed>
    /** The unexpired session with this id, if any. */
    readonly get: (id: string) => Effect.Effect<Option.Option<Session>, StoreFailed>
    /** Ends a session; ending an unknown one is harmless. */
    readonly drop: (id: string) => Effect.Effect<void, StoreFailed>
  }
>() {}
