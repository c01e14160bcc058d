/**
 * The dashboard's Sessions over a store's `sessions` and `sign_in_tokens` tables, shared by both
 * backends: every server process of one store sees every session, and a restart keeps them. Only
 * SHA-256 hashes of ids and tokens are stored (keys.ts `hash`). A token is spent by one
 * `DELETE … RETURNING`, so of two processes redeeming it at once exactly one gets a session.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import type { KeyInfo } from "../KeyStore.js"
import { SESSION_TTL, Sessions, TOKEN_TTL } from "../SessionStore.js"
import { hash, toKeyInfo } from "./keys.js"
import { failed, type StoreSql } from "./sql.js"

const newSecret = (): string => crypto.randomBytes(32).toString("base64url")

/** The Sessions of a store. */
export const makeSessions = (sql: StoreSql) => {
  const openFor = (key: KeyInfo | null) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const id = newSecret()
      yield* sql.write(`DELETE FROM sessions WHERE expires_at <= ?`, [now])
      yield* sql.write(`INSERT INTO sessions (hash, key_id, expires_at) VALUES (?, ?, ?)`, [hash(id), key?.id ?? null, now + Duration.toMillis(SESSION_TTL)])
      return id
    })

  return Sessions.of({
    mintToken: Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const token = newSecret()
      yield* sql.write(`DELETE FROM sign_in_tokens WHERE expires_at <= ?`, [now])
      yield* sql.write(`INSERT INTO sign_in_tokens (hash, expires_at) VALUES (?, ?)`, [hash(token), now + Duration.toMillis(TOKEN_TTL)])
      return token
    }).pipe(Effect.zipLeft(sql.synced), Effect.mapError(failed("mint a sign-in token"))),
    redeemToken: (token) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        // Deleted whether or not it is still valid: a token is spent by its first use.
        const [spent] = yield* sql.write(`DELETE FROM sign_in_tokens WHERE hash = ? RETURNING expires_at`, [hash(token)])
        return spent !== undefined && now < spent.expires_at ? Option.some(yield* openFor(null)) : Option.none()
      }).pipe(Effect.zipLeft(sql.synced), Effect.mapError(failed("redeem a sign-in token"))),
    open: (key) => openFor(key).pipe(Effect.zipLeft(sql.synced), Effect.mapError(failed("open a session"))),
    get: (id) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const [row] = yield* sql.read(
          `SELECT s.key_id, s.expires_at, k.id, k.name, k.projects, k.created_at, k.revoked_at
             FROM sessions s LEFT JOIN api_keys k ON k.id = s.key_id WHERE s.hash = ?`,
          [hash(id)]
        )
        if (row === undefined || now >= row.expires_at || (row.key_id !== null && row.id === null)) return Option.none()
        return Option.some({ key: row.key_id === null ? null : toKeyInfo(row), expiresAt: row.expires_at as number })
      }).pipe(Effect.mapError(failed("read a session"))),
    drop: (id) => sql.write(`DELETE FROM sessions WHERE hash = ?`, [hash(id)]).pipe(Effect.zipRight(sql.synced), Effect.mapError(failed("end a session")))
  })
}
