/**
 * The contract every store's Sessions pass (src/server/store/SessionStore.ts), on the TestClock: a
 * sign-in token signs in once, within 24 h; a session lasts 30 days, ends when dropped, and knows
 * its key as the store has it now. A backend's test file calls `sessionsContract(name, layer)`.
 */
import { expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { KeyStore } from "../../src/server/store/KeyStore.js"
import { Sessions } from "../../src/server/store/SessionStore.js"

const secret = /^[A-Za-z0-9_-]{43}$/
let names = 0
const aKey = Effect.flatMap(KeyStore, (keys) => keys.create({ name: `session-${process.pid}-${names++}`, projects: ["alpha" as never] }))

/** Registers the contract suite against one backend. */
export const sessionsContract = <E>(name: string, store: Layer.Layer<Sessions | KeyStore, E>) =>
  layer(store)(`Sessions contract: ${name}`, (it) => {
    it.effect("open one every-project session with a token: a second use is refused", () =>
      Effect.gen(function* () {
        const sessions = yield* Sessions
        const token = yield* sessions.mintToken
        expect(token).toMatch(secret)
        const id = Option.getOrThrow(yield* sessions.redeemToken(token))
        expect(id).toMatch(secret)
        expect(Option.map(yield* sessions.get(id), (session) => session.key)).toEqual(Option.some(null))
        expect(yield* sessions.redeemToken(token)).toEqual(Option.none())
        expect(yield* sessions.redeemToken("not-a-token")).toEqual(Option.none())
      }))

    it.effect("let a token be redeemed once when two redeem it at once", () =>
      Effect.gen(function* () {
        const sessions = yield* Sessions
        const token = yield* sessions.mintToken
        const both = yield* Effect.all([sessions.redeemToken(token), sessions.redeemToken(token)], { concurrency: 2 })
        expect(both.filter(Option.isSome)).toHaveLength(1)
      }))

    it.effect("expire tokens 24 hours after they were made, used or not", () =>
      Effect.gen(function* () {
        const sessions = yield* Sessions
        const early = yield* sessions.mintToken
        const late = yield* sessions.mintToken
        yield* TestClock.adjust("23 hours")
        yield* TestClock.adjust("59 minutes")
        yield* TestClock.adjust("59 seconds")
        expect(Option.isSome(yield* sessions.redeemToken(early))).toBe(true)
        yield* TestClock.adjust("1 second")
        expect(yield* sessions.redeemToken(late)).toEqual(Option.none())
        // An expired token is gone for good, even once new ones are made.
        expect(Option.isSome(yield* sessions.redeemToken(yield* sessions.mintToken))).toBe(true)
        expect(yield* sessions.redeemToken(late)).toEqual(Option.none())
      }))

    it.effect("make every token different", () =>
      Effect.gen(function* () {
        const sessions = yield* Sessions
        const tokens = yield* Effect.all(Array.from({ length: 100 }, () => sessions.mintToken))
        expect(new Set(tokens).size).toBe(100)
      }))

    it.effect("remember the key a session was made with, as revoked once it is, until dropped", () =>
      Effect.gen(function* () {
        const sessions = yield* Sessions
        const { info } = yield* aKey
        const id = yield* sessions.open(info)
        const other = yield* sessions.open(info)
        expect(id).toMatch(secret)
        expect(other).not.toBe(id)
        expect(Option.map(yield* sessions.get(id), (session) => session.key)).toEqual(Option.some(info))
        const revoked = yield* Effect.flatMap(KeyStore, (keys) => keys.revoke(info.id))
        expect(Option.map(yield* sessions.get(id), (session) => session.key)).toEqual(Option.some(revoked))
        yield* sessions.drop(id)
        expect(yield* sessions.get(id)).toEqual(Option.none())
        expect(Option.isSome(yield* sessions.get(other))).toBe(true)
        yield* sessions.drop(id)
        expect(yield* sessions.get("never-made")).toEqual(Option.none())
      }))

    it.effect("end a session 30 days after sign-in", () =>
      Effect.gen(function* () {
        const sessions = yield* Sessions
        const id = yield* sessions.open((yield* aKey).info)
        yield* TestClock.adjust("29 days")
        expect(Option.isSome(yield* sessions.get(id))).toBe(true)
        yield* TestClock.adjust("1 day")
        expect(yield* sessions.get(id)).toEqual(Option.none())
      }))
  })
