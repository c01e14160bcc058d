/**
 * The KeyStore over a store's `api_keys` table, shared by both backends. `verify` and `list` read
 * from the reader, so that `/whoami` never queues behind an ingest. A name is unique among
 * unrevoked keys by a partial unique index, so two processes creating one name at once cannot both
 * succeed: the loser's insert fails, and is told KeyNameTaken.
 *
 * Every API request verifies its key: a verified key is taken as verified for VERIFIED_FOR_MS
 * without a look in the store, which was a round trip to PostgreSQL on every request, its scope
 * parsed again (8 runs uploading and a dashboard polling: some 130 requests a second).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import { type KeyInfo, KeyNameTaken, KeyNotFound, KeyScope, KeyStore } from "../KeyStore.js"
import { failed, type Run, type StoreSql } from "./sql.js"

/** The SHA-256 (hex) a store keeps of a secret (an API key, a session id, a sign-in token) instead of it. */
export const hash = (secret: string): string => crypto.createHash("sha256").update(secret).digest("hex")
/**
 * How long a key verified once passes without the store. A key this store revokes is refused at
 * once; one another process revokes (`steplog keys revoke`, another replica), within this.
 */
export const VERIFIED_FOR_MS = 1_000

const newSecret = (): string => `slk_${crypto.randomBytes(32).toString("base64url")}`
const newId = (): string => `key_${crypto.randomBytes(6).toString("hex")}`

interface KeyRow {
  readonly id: string
  readonly name: string
  readonly projects: string
  readonly created_at: number
  readonly revoked_at: number | null
}

/** A key's row as the store gives it back: what every read of a key selects. */
export const keyColumns = `id, name, projects, created_at, revoked_at`

/** A key row as KeyInfo. */
export const toKeyInfo = (row: KeyRow): KeyInfo => ({
  id: row.id,
  name: row.name,
  projects: Schema.decodeUnknownSync(KeyScope)(JSON.parse(row.projects)),
  createdAt: row.created_at,
  revokedAt: row.revoked_at
})

const unrevokedNamed = (run: Run, name: string) =>
  run(`SELECT ${keyColumns} FROM api_keys WHERE name = ? AND revoked_at IS NULL`, [name]).pipe(Effect.map((rows) => rows as ReadonlyArray<KeyRow>))

/** The KeyStore of a store. */
export const makeKeys = (sql: StoreSql) => {
  // hash → the key's info and until when it passes without the store
  const verified = new Map<string, { readonly info: KeyInfo; readonly until: number }>()
  const create = (options: { readonly name?: string; readonly projects: KeyScope }) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const id = newId()
      const name = options.name ?? `key-${id.slice(4)}`
      const key = newSecret()
      if ((yield* unrevokedNamed(sql.write, name)).length > 0) return yield* new KeyNameTaken({ name })
      const inserted = yield* Effect.either(
        sql.write(`INSERT INTO api_keys (id, name, hash, projects, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)`, [
          id, name, hash(key), JSON.stringify(options.projects), now
        ])
      )
      if (inserted._tag === "Left") {
        // Another process took the name since the check: the unique index refused this one.
        if ((yield* unrevokedNamed(sql.read, name)).length > 0) return yield* new KeyNameTaken({ name })
        return yield* inserted.left
      }
      return { key, info: { id, name, projects: options.projects, createdAt: now, revokedAt: null } }
    }).pipe(Effect.zipLeft(sql.synced), Effect.mapError(failed("create a key")))

  const revoke = (idOrName: string) =>
    sql.writeTransaction(
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const byId = yield* sql.write(`SELECT ${keyColumns} FROM api_keys WHERE id = ?`, [idOrName])
        const row = ((byId.length > 0 ? byId : yield* unrevokedNamed(sql.write, idOrName)) as ReadonlyArray<KeyRow>)[0]
        if (row === undefined) return yield* new KeyNotFound({ idOrName })
        if (row.revoked_at !== null) return toKeyInfo(row)
        yield* sql.write(`UPDATE api_keys SET revoked_at = ? WHERE id = ?`, [now, row.id])
        return toKeyInfo({ ...row, revoked_at: now })
      })
    ).pipe(Effect.zipLeft(sql.synced), Effect.mapError(failed("revoke a key")))

  return KeyStore.of({
    create,
    list: sql.read(`SELECT ${keyColumns} FROM api_keys ORDER BY created_at, key_pk`).pipe(
      Effect.map((rows) => rows.map(toKeyInfo)),
      Effect.mapError(failed("list keys"))
    ),
    // Forgotten once the revocation is committed: a verify between then and a clear inside the
    // transaction would read the key unrevoked and keep it.
    revoke: (idOrName) => Effect.tap(revoke(idOrName), () => verified.clear()),
    verify: (key) =>
      Effect.gen(function* () {
        const digest = hash(key)
        const now = yield* Clock.currentTimeMillis
        const known = verified.get(digest)
        if (known !== undefined && known.until > now) return Option.some(known.info)
        const rows = yield* sql.read(`SELECT ${keyColumns} FROM api_keys WHERE hash = ? AND revoked_at IS NULL`, [digest])
        const found = Option.map(Option.fromNullable(rows[0] as KeyRow | undefined), toKeyInfo)
        if (Option.isSome(found)) verified.set(digest, { info: found.value, until: now + VERIFIED_FOR_MS })
        else verified.delete(digest)
        return found
      }).pipe(Effect.mapError(failed("verify a key")))
  })
}
