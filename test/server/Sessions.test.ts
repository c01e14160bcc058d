/**
 * The dashboard's sessions and one-time sign-in tokens, on the TestClock: a token signs in once,
 * within 24 h; a session lasts 30 days and ends when dropped.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import type { KeyInfo } from "../../src/server/ApiKeys.js"
import { Sessions, layer } from "../../src/server/Sessions.js"

const alphaKey: KeyInfo = { id: "key_1", name: "alpha-only", projects: ["alpha" as never], createdAt: 0, revokedAt: null }
const secret = /^[A-Za-z0-9_-]{43}$/

describe("sign-in tokens", () => {
  it.effect("open one every-project session: a second use is refused", () =>
    Effect.gen(function* () {
      const sessions = yield* Sessions
      const token = yield* sessions.mintToken
      expect(token).toMatch(secret)
      const id = Option.getOrThrow(yield* sessions.redeemToken(token))
      expect(id).toMatch(secret)
      expect(Option.map(yield* sessions.get(id), (session) => session.key)).toEqual(Option.some(null))
      expect(yield* sessions.redeemToken(token)).toEqual(Option.none())
      expect(yield* sessions.redeemToken("not-a-token")).toEqual(Option.none())
    }).pipe(Effect.provide(layer)))

  it.effect("expire 24 hours after they were made, used or not", () =>
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
    }).pipe(Effect.provide(layer)))

  it.effect("are each different", () =>
    Effect.gen(function* () {
      const sessions = yield* Sessions
      const tokens = yield* Effect.all(Array.from({ length: 100 }, () => sessions.mintToken))
      expect(new Set(tokens).size).toBe(100)
    }).pipe(Effect.provide(layer)))
})

describe("sessions", () => {
  it.effect("remember the key they were made with until dropped", () =>
    Effect.gen(function* () {
      const sessions = yield* Sessions
      const id = yield* sessions.open(alphaKey)
      const other = yield* sessions.open(alphaKey)
      expect(id).toMatch(secret)
      expect(other).not.toBe(id)
      expect(Option.map(yield* sessions.get(id), (session) => session.key)).toEqual(Option.some(alphaKey))
      yield* sessions.drop(id)
      expect(yield* sessions.get(id)).toEqual(Option.none())
      expect(Option.isSome(yield* sessions.get(other))).toBe(true)
      yield* sessions.drop(id)
      expect(yield* sessions.get("never-made")).toEqual(Option.none())
    }).pipe(Effect.provide(layer)))

  it.effect("end 30 days after sign-in", () =>
    Effect.gen(function* () {
      const sessions = yield* Sessions
      const id = yield* sessions.open(alphaKey)
      yield* TestClock.adjust("29 days")
      expect(Option.isSome(yield* sessions.get(id))).toBe(true)
      yield* TestClock.adjust("1 day")
      expect(yield* sessions.get(id)).toEqual(Option.none())
    }).pipe(Effect.provide(layer)))
})
