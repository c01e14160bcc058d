/**
 * The contract every store's KeyStore passes (src/server/store/KeyStore.ts): keys shown once and
 * kept as hashes, names unique among unrevoked keys, revocation for good. A backend's test file
 * calls `keyStoreContract(name, layer)`; the layer is built once, so every test names keys of its own.
 */
import { expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { KeyStore } from "../../src/server/store/KeyStore.js"

let names = 0
/** A key name nothing else in this process has used. */
const freshName = (): string => `key-${process.pid}-${names++}`

/** Registers the contract suite against one backend. */
export const keyStoreContract = <E>(name: string, store: Layer.Layer<KeyStore, E>) =>
  layer(store)(`KeyStore contract: ${name}`, (it) => {
    it.effect("makes a key that verifies as itself until revoked, and lists it revoked after", () =>
      Effect.gen(function* () {
        const keys = yield* KeyStore
        const name = freshName()
        const created = yield* keys.create({ name, projects: ["alpha" as never, "beta" as never] })
        expect(created.key).toMatch(/^slk_[A-Za-z0-9_-]{43}$/)
        expect(created.info).toMatchObject({ name, projects: ["alpha", "beta"], revokedAt: null })
        expect(yield* keys.verify(created.key)).toEqual(Option.some(created.info))
        expect(yield* keys.verify(`${created.key}x`)).toEqual(Option.none())
        const revoked = yield* keys.revoke(name)
        expect(revoked.revokedAt).not.toBeNull()
        expect(yield* keys.verify(created.key)).toEqual(Option.none())
        // Revoking twice is harmless; the id still finds it.
        expect(yield* keys.revoke(created.info.id)).toEqual(revoked)
        expect((yield* keys.list).find((k) => k.id === created.info.id)).toEqual(revoked)
      }))

    it.effect("keeps names unique among unrevoked keys, and frees a name when its key is revoked", () =>
      Effect.gen(function* () {
        const keys = yield* KeyStore
        const name = freshName()
        const first = yield* keys.create({ name, projects: "*" })
        expect((yield* Effect.flip(keys.create({ name, projects: "*" })))._tag).toBe("KeyNameTaken")
        yield* keys.revoke(name)
        const second = yield* keys.create({ name, projects: "*" })
        expect(second.info.id).not.toBe(first.info.id)
        const listed = (yield* keys.list).filter((k) => k.name === name)
        expect(listed.map((k) => [k.id, k.revokedAt === null])).toEqual([[first.info.id, false], [second.info.id, true]])
      }))

    it.effect("lets one of two creations of one name at once through", () =>
      Effect.gen(function* () {
        const keys = yield* KeyStore
        const name = freshName()
        const both = yield* Effect.all([keys.create({ name, projects: "*" }), keys.create({ name, projects: "*" })].map(Effect.either), { concurrency: 2 })
        expect(both.map((r) => (r._tag === "Right" ? "made" : r.left._tag)).sort()).toEqual(["KeyNameTaken", "made"])
      }))

    it.effect("names a key key-<id> by default and tells an unknown id or name", () =>
      Effect.gen(function* () {
        const keys = yield* KeyStore
        const { info } = yield* keys.create({ projects: "*" })
        expect(info.name).toBe(`key-${info.id.slice(4)}`)
        expect((yield* Effect.flip(keys.revoke("no-such-key")))._tag).toBe("KeyNotFound")
      }))
  })
