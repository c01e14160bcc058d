/**
 * The retry policy on its own: the exact delays of the Schedule under TestClock, the cap,
 * `Retry-After` in both forms, and which failures are not retried at all.
 *
 * Jitter stays in the policy (Schedule.jittered draws from Effect's Random); the tests pin it with
 * `Random.fixed`: 0.5 is a factor of exactly 1, 0 the lowest factor (0.8), 1 the highest (1.2).
 */
import { expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as TestClock from "effect/TestClock"
import { describe } from "vitest"
import {
  BatchTooLarge,
  KeyRefused,
  UploadFailed,
  UploadRejected,
  classifyStatus,
  parseRetryAfter,
  retrySchedule,
  type UploadFailure
} from "../../src/actors/UploadPolicy.js"

/**
 * Runs an attempt that fails with `failure(n)` (n = 0, 1, …) up to `attempts` times, then
 * succeeds, under the policy; returns the Clock time of each attempt, in ms.
 */
const attemptTimes = (failure: (attempt: number) => UploadFailure, attempts: number, random: Random.Random) =>
  Effect.gen(function* () {
    const times: Array<number> = []
    const attempt = Effect.gen(function* () {
      times.push(yield* Clock.currentTimeMillis)
      if (times.length <= attempts) return yield* Effect.fail(failure(times.length - 1))
      return "sent"
    })
    const fiber = yield* attempt.pipe(Effect.retry(retrySchedule()), Effect.withRandom(random), Effect.either, Effect.fork)
    // One jump far past every delay: TestClock wakes each sleep at its own instant on the way.
    yield* TestClock.adjust("1 hour")
    const result = yield* Fiber.join(fiber)
    // relative to the first attempt, so that a test may run several of these one after another
    return { times: times.map((time) => time - times[0]!), result }
  })

const gaps = (times: ReadonlyArray<number>) => times.slice(1).map((time, i) => time - times[i]!)

const network = () => new UploadFailed({ reason: "network", detail: "ECONNREFUSED" })

describe("UploadPolicy", () => {
  it.effect("waits 250 ms, then twice as long each time, capped at 30 s (jitter factor pinned at 1)", () =>
    Effect.gen(function* () {
      const { times, result } = yield* attemptTimes(network, 10, Random.fixed([0.5]))
      expect(result._tag).toBe("Right")
      expect(gaps(times)).toEqual([250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
    }))

  it.effect("jitter moves each delay within 0.8 to 1.2 of it, and the cap holds after the jitter", () =>
    Effect.gen(function* () {
      const { times } = yield* attemptTimes(network, 9, Random.fixed([0, 1]))
      // factors alternate 0.8 and 1.2; 32 000 × 1.2 and 64 000 × 0.8 are both past the cap, and a
      // cap applied before the jitter would have let 30 000 × 1.2 = 36 000 through
      expect(gaps(times)).toEqual([200, 600, 800, 2400, 3200, 9600, 12800, 30000, 30000])
    }))

  it.effect("Retry-After in seconds wins over the computed delay, shorter or longer, cap included", () =>
    Effect.gen(function* () {
      const asked = ["2", "45", "0"]
      const { times } = yield* attemptTimes(
        (n) => new UploadFailed({ reason: "status", status: 429, detail: "busy", retryAfter: parseRetryAfter(asked[n], 0)! }),
        3,
        Random.fixed([0.5])
      )
      expect(gaps(times)).toEqual([2000, 45000, 0])
    }))

  it.effect("Retry-After as an HTTP-date waits until that date, read by the Clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.parse("2025-01-01T00:00:00Z"))
      const at = (seconds: number) => new Date(Date.parse("2025-01-01T00:00:00Z") + seconds * 1000).toUTCString()
      const { times } = yield* attemptTimes(
        (n) => {
          // dated when the answer arrives, as the Uploader does
          const now = Date.parse("2025-01-01T00:00:00Z") + (n === 0 ? 0 : 7000)
          return classifyStatus(503, { "retry-after": n === 0 ? at(7) : at(10) }, "down", 1, now)
        },
        2,
        Random.fixed([0.5])
      )
      expect(gaps(times)).toEqual([7000, 3000])
    }))

  it("reads Retry-After: seconds, dates, a date in the past, and nonsense", () => {
    expect(parseRetryAfter("120", 0)).toEqual(Duration.seconds(120))
    expect(parseRetryAfter(" 3 ", 0)).toEqual(Duration.seconds(3))
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", Date.parse("2015-10-21T07:27:00Z"))).toEqual(Duration.millis(60_000))
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", Date.parse("2015-10-21T08:00:00Z"))).toEqual(Duration.millis(0))
    expect(parseRetryAfter("soon", 0)).toBeUndefined()
    expect(parseRetryAfter(undefined, 0)).toBeUndefined()
  })

  it.effect.each([
    ["400", 400],
    ["403", 403],
    ["404", 404],
    ["501", 501]
  ] as const)("does not retry a %s: one attempt, the refusal as the result", ([, status]) =>
    Effect.gen(function* () {
      const { times, result } = yield* attemptTimes(() => classifyStatus(status, {}, "no", 1, 0), 5, Random.fixed([0.5]))
      expect(times).toEqual([0])
      expect(result).toMatchObject({ _tag: "Left", left: { _tag: "UploadRejected", status } })
    }))

  it.effect("does not retry a 401 or a 413 either: they are handled by the Uploader", () =>
    Effect.gen(function* () {
      for (const status of [401, 413]) {
        const { times } = yield* attemptTimes(() => classifyStatus(status, {}, "no", 4, 0), 5, Random.fixed([0.5]))
        expect(times).toEqual([0])
      }
    }))

  it("classifies answers: 408, 429 and 5xx but 501 are retried; 401, 413 and other 4xx are not", () => {
    const tag = (status: number) => classifyStatus(status, {}, "", 2, 0)._tag
    for (const status of [408, 429, 500, 502, 503, 504, 599]) expect(tag(status)).toBe("UploadFailed")
    for (const status of [400, 403, 404, 409, 422, 501]) expect(tag(status)).toBe("UploadRejected")
    expect(classifyStatus(401, {}, "", 2, 0)).toBeInstanceOf(KeyRefused)
    expect(classifyStatus(413, {}, "", 2, 0)).toBeInstanceOf(BatchTooLarge)
    expect(classifyStatus(400, {}, "", 2, 0)).toBeInstanceOf(UploadRejected)
    expect(classifyStatus(429, { "retry-after": "4" }, "", 2, 0)).toMatchObject({ retryAfter: Duration.seconds(4) })
  })
})
