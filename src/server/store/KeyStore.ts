/**
 * The server's API keys. A key is `slk_` + 32 random bytes (base64url), shown once when it is
 * created and never again: the store keeps only its SHA-256 hash, with a name, the projects it may
 * use (a list, or "*" for all) and when it was created and revoked. A revoked key stays listed (so
 * `keys list` shows what was revoked and when) but never verifies again.
 *
 * Kept in the server's store (the `api_keys` table of SQLite or PostgreSQL: store/internal/keys.ts),
 * so every server process of one store knows the same keys, and `steplog keys` changes them while
 * the servers run. Names are unique among unrevoked keys by a unique index, so two processes that
 * create one name at once get one key and one KeyNameTaken.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { ProjectName } from "../../schemas/Wire.js"
import type { StoreFailed } from "./RecordStore.js"

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
