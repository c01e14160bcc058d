/**
 * The server's API keys. A key is `slk_` + 32 random bytes (base64url), shown once when it is
 * created and never again: the store keeps only its SHA-256 hash, with a name, the projects it may
 * use (a list, or "*" for all) and when it was created and revoked. A revoked key stays listed (so
 * `keys list` shows what was revoked and when) but never verifies again.
 *
 * Two backends: `layerSqlite` (the `api_keys` table, in the same SQLite file as the records) and
 * `layerMemory` (for tests).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import { ProjectName } from "../schemas/Wire.js"
import { StoreFailed } from "./RecordStore.js"

/** The projects a key may use: every project ("*") or the listed ones. */
export const KeyScope = Schema.Union(Schema.Literal("*"), Schema.Array(ProjectName))
export type KeyScope = typeof KeyScope.Type

/** A key's name: what `keys list` shows and `keys revoke` accepts. */
export const KeyName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_.@-]{1,64}$/, { message: () => "a key name of 1 to 64 letters, digits, '.', '@', '-' or '_'" })
)

/** What the store knows about a key: everything but the key itself. */
export interface KeyInfo {
  readonly id: string
  readonly name: string
  readonly projects: KeyScope
  /** ms since the epoch. */
  readonly createdAt: number
  readonly revokedAt: number | null
}

/** A key just made: the only time `key` is seen. */
export interface CreatedKey {
  readonly key: string
  readonly info: KeyInfo
}

/** `revoke` was given an id or name that no key (or, for a name, no unrevoked key) has. */
export class KeyNotFound extends Data.TaggedError("KeyNotFound")<{ readonly idOrName: string }> {
  override get message(): string {
    return `steplog: no API key with id or name "${this.idOrName}" (see \`steplog keys list\`)`
  }
}

/** `create` was given a name that an unrevoked key already has. */
export class KeyNameTaken extends Data.TaggedError("KeyNameTaken")<{ readonly name: string }> {
  override get message(): string {
    return `steplog: an API key named "${this.name}" already exists; pick another --name or revoke it first`
  }
}

/** Whether `scope` lets a key use `project`. */
export const allows = (scope: KeyScope, project: string): boolean => scope === "*" || scope.includes(project as ProjectName)

/** The store of API keys. */
export class KeyStore extends Context.Tag("steplog/server/KeyStore")<
  KeyStore,
  {
    /** Makes a key; `name` defaults to `key-<id>`. */
    readonly create: (options: { readonly name?: string; readonly projects: KeyScope }) => Effect.Effect<CreatedKey, KeyNameTaken | StoreFailed>
    /** Every key, revoked ones included, oldest first. */
    readonly list: Effect.Effect<ReadonlyArray<KeyInfo>, StoreFailed>
    /** Revokes the key with this id, else the unrevoked key with this name; revoking twice is harmless. */
    readonly revoke: (idOrName: string) => Effect.Effect<KeyInfo, KeyNotFound | StoreFailed>
    /** The unrevoked key this secret is, if any. Changes nothing. */
    readonly verify: (key: string) => Effect.Effect<Option.Option<KeyInfo>, StoreFailed>
  }
>() {}

const newSecret = (): string => `slk_${crypto.randomBytes(32).toString("base64url")}`
const newId = (): string => `key_${crypto.randomBytes(6).toString("hex")}`
const hash = (key: string): string => crypto.createHash("sha256").update(key).digest("hex")

/** Keys in memory, gone with the layer; for tests. */
export const layerMemory: Layer.Layer<KeyStore> = Layer.effect(
  KeyStore,
  Effect.gen(function* () {
    const keys = yield* Ref.make<ReadonlyArray<KeyInfo & { readonly hash: string }>>([])
    const strip = ({ hash: _, ...info }: KeyInfo & { readonly hash: string }): KeyInfo => info
    return KeyStore.of({
      create: (options) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const id = newId()
          const name = options.name ?? `key-${id.slice(4)}`
          const key = newSecret()
          const info: KeyInfo = { id, name, projects: options.projects, createdAt: now, revokedAt: null }
          const taken = (yield* Ref.get(keys)).some((k) => k.name === name && k.revokedAt === null)
          if (taken) return yield* new KeyNameTaken({ name })
          yield* Ref.update(keys, (all) => [...all, { ...info, hash: hash(key) }])
          return { key, info }
        }),
      list: Effect.map(Ref.get(keys), (all) => all.map(strip)),
      revoke: (idOrName) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const all = yield* Ref.get(keys)
          const found = all.find((k) => k.id === idOrName) ?? all.find((k) => k.name === idOrName && k.revokedAt === null)
          if (found === undefined) return yield* new KeyNotFound({ idOrName })
          const revoked = { ...found, revokedAt: found.revokedAt ?? now }
          yield* Ref.set(keys, all.map((k) => (k.id === found.id ? revoked : k)))
          return strip(revoked)
        }),
      verify: (key) =>
        Effect.map(Ref.get(keys), (all) => {
          const digest = hash(key)
          return Option.map(Option.fromNullable(all.find((k) => k.hash === digest && k.revokedAt === null)), strip)
        })
    })
  })
)

interface KeyRow {
  readonly id: string
  readonly name: string
  readonly projects: string
  readonly created_at: number
  readonly revoked_at: number | null
}

const fromRow = (row: KeyRow): KeyInfo => ({
  id: row.id,
  name: row.name,
  projects: Schema.decodeUnknownSync(KeyScope)(JSON.parse(row.projects)),
  createdAt: row.created_at,
  revokedAt: row.revoked_at
})

/**
 * Keys in the `api_keys` table of the SqlClient's database (the table name is distinct from the
 * record store's tables, so both share one file). Created if missing.
 */
export const layerSqlite: Layer.Layer<KeyStore, StoreFailed, SqlClient.SqlClient> = Layer.effect(
  KeyStore,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const failed = (operation: string) => Effect.mapError((cause: unknown) => new StoreFailed({ operation, cause }))
    yield* sql`CREATE TABLE IF NOT EXISTS api_keys (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      hash TEXT NOT NULL UNIQUE,
      projects TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      revoked_at INTEGER
    )`.pipe(failed("create the api_keys table"))
    const columns = sql`id, name, projects, created_at, revoked_at`

    const create = (options: { readonly name?: string; readonly projects: KeyScope }) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const id = newId()
        const name = options.name ?? `key-${id.slice(4)}`
        const key = newSecret()
        const taken = yield* sql<{ id: string }>`SELECT id FROM api_keys WHERE name = ${name} AND revoked_at IS NULL`.pipe(
          failed("create a key")
        )
        if (taken.length > 0) return yield* new KeyNameTaken({ name })
        yield* sql`INSERT INTO api_keys (id, name, hash, projects, created_at, revoked_at)
          VALUES (${id}, ${name}, ${hash(key)}, ${JSON.stringify(options.projects)}, ${now}, NULL)`.pipe(failed("create a key"))
        return { key, info: { id, name, projects: options.projects, createdAt: now, revokedAt: null } }
      }).pipe(sql.withTransaction, Effect.catchTag("SqlError", (cause) => new StoreFailed({ operation: "create a key", cause })))

    const revoke = (idOrName: string) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const byId = yield* sql<KeyRow>`SELECT ${columns} FROM api_keys WHERE id = ${idOrName}`
        const rows = byId.length > 0 ? byId : yield* sql<KeyRow>`SELECT ${columns} FROM api_keys WHERE name = ${idOrName} AND revoked_at IS NULL`
        const row = rows[0]
        if (row === undefined) return yield* new KeyNotFound({ idOrName })
        if (row.revoked_at !== null) return fromRow(row)
        yield* sql`UPDATE api_keys SET revoked_at = ${now} WHERE id = ${row.id}`
        return fromRow({ ...row, revoked_at: now })
      }).pipe(sql.withTransaction, Effect.catchTag("SqlError", (cause) => new StoreFailed({ operation: "revoke a key", cause })))

    return KeyStore.of({
      create,
      list: sql<KeyRow>`SELECT ${columns} FROM api_keys ORDER BY created_at, rowid`.pipe(Effect.map((rows) => rows.map(fromRow)), failed("list keys")),
      revoke,
      verify: (key) =>
        sql<KeyRow>`SELECT ${columns} FROM api_keys WHERE hash = ${hash(key)} AND revoked_at IS NULL`.pipe(
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromRow)),
          failed("verify a key")
        )
    })
  })
)
