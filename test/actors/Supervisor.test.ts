import { expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import { supervise } from "../../src/actors/Supervisor.js"

/** An actor that notes when it starts, then fails each time it is told to. */
const failingOnCommand = Effect.gen(function* () {
  const commands = yield* Queue.unbounded<"fail" | "die">()
  const starts: Array<number> = []
  const reports: Array<string> = []
  const loop = Effect.gen(function* () {
    starts.push(yield* Clock.currentTimeMillis)
    const command = yield* Queue.take(commands)
    if (command === "die") return yield* Effect.die(new Error("a defect"))
    return yield* Effect.fail("a failure")
  }) as Effect.Effect<never, string>
  yield* supervise("test actor", loop, { report: (message) => reports.push(message) })
  yield* Effect.yieldNow()
  return { commands, starts, reports }
})

it.scoped("restarts a failing actor after 10 ms, doubling the delay while it keeps failing", () =>
  Effect.gen(function* () {
    const { commands, starts, reports } = yield* failingOnCommand
    expect(starts).toEqual([0])
    for (const [delay, at] of [[10, 10], [20, 30], [40, 70]] as const) {
      yield* Queue.offer(commands, "fail")
      yield* TestClock.adjust(delay - 1)
      expect(starts.at(-1)).not.toBe(at)
      yield* TestClock.adjust(1)
      expect(starts.at(-1)).toBe(at)
    }
    expect(reports).toHaveLength(3)
    expect(reports[0]).toContain("test actor failed and will be restarted")
  }))

it.scoped("restarts after a defect as after a failure", () =>
  Effect.gen(function* () {
    const { commands, starts, reports } = yield* failingOnCommand
    yield* Queue.offer(commands, "die")
    yield* TestClock.adjust(10)
    expect(starts).toEqual([0, 10])
    expect(reports[0]).toContain("a defect")
  }))

it.scoped("caps the restart delay at one second", () =>
  Effect.gen(function* () {
    const { commands, starts } = yield* failingOnCommand
    const delays: Array<number> = []
    for (let i = 0; i < 10; i++) {
      const failedAt = yield* Clock.currentTimeMillis
      yield* Queue.offer(commands, "fail")
      yield* TestClock.adjust(1000)
      delays.push(starts.at(-1)! - failedAt)
    }
    expect(delays).toEqual([10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000])
  }))

it.scoped("starts the delays again from 10 ms after a minute without a failure", () =>
  Effect.gen(function* () {
    const { commands, starts } = yield* failingOnCommand
    for (let i = 0; i < 8; i++) {
      yield* Queue.offer(commands, "fail")
      yield* TestClock.adjust(1000)
    }
    yield* TestClock.adjust("2 minutes")
    const before = starts.length
    const failedAt = yield* Clock.currentTimeMillis
    yield* Queue.offer(commands, "fail")
    yield* TestClock.adjust(10)
    expect(starts.length).toBe(before + 1)
    expect(starts.at(-1)).toBe(failedAt + 10)
  }))
