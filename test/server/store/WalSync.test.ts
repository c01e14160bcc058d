/**
 * Group commit of the WAL's sync (sqlite/WalSync.ts): a write is answered after a sync that began
 * after it committed, never one already under way, and one sync serves every write that asked
 * while the previous one ran. The sync here is a promise each test settles by hand.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { groupSync } from "../../../src/server/store/sqlite/WalSync.js"

/** A sync whose runs are counted and settled by the test, in the order they began. */
const manualSync = () => {
  const runs: Array<{ readonly resolve: () => void; readonly reject: (error: Error) => void }> = []
  const sync = () => new Promise<void>((resolve, reject) => void runs.push({ resolve, reject }))
  return { runs, synced: groupSync(sync) }
}

/** "pending" while a fiber runs, else how it ended. */
const state = (polled: Option.Option<Exit.Exit<unknown, unknown>>) => (Option.isNone(polled) ? "pending" : polled.value._tag)

/** Lets promise callbacks and forked fibers run. */
const settle = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 0)))

describe("groupSync", () => {
  it.live("starts a sync at once when none runs, and answers when it ends", () =>
    Effect.gen(function* () {
      const { runs, synced } = manualSync()
      const waiting = yield* Effect.fork(synced)
      yield* settle
      expect(runs).toHaveLength(1)
      expect(state(yield* Fiber.poll(waiting))).toBe("pending")
      runs[0]!.resolve()
      expect(yield* Fiber.await(waiting)).toEqual(Exit.void)
    }))

  it.live("answers a write that asks while a sync runs only after the next sync, which serves every such write", () =>
    Effect.gen(function* () {
      const { runs, synced } = manualSync()
      const first = yield* Effect.fork(synced)
      yield* settle
      const later = yield* Effect.forEach([1, 2, 3], () => Effect.fork(synced))
      yield* settle
      expect(runs).toHaveLength(1)
      runs[0]!.resolve()
      expect(yield* Fiber.await(first)).toEqual(Exit.void)
      yield* settle
      // The running sync may have begun before their commits: they wait for one that began after.
      expect(runs).toHaveLength(2)
      for (const fiber of later) expect(state(yield* Fiber.poll(fiber))).toBe("pending")
      runs[1]!.resolve()
      for (const fiber of later) expect(yield* Fiber.await(fiber)).toEqual(Exit.void)
      expect(runs).toHaveLength(2)
    }))

  it.live("fails the writes a failed sync served, as a SqlError, and every later one without syncing again (its pages may be lost)", () =>
    Effect.gen(function* () {
      const { runs, synced } = manualSync()
      const waiting = yield* Effect.fork(Effect.flip(synced))
      yield* settle
      runs[0]!.reject(new Error("EIO"))
      const error = yield* Fiber.join(waiting)
      expect(error._tag).toBe("SqlError")
      expect(error.message).toBe("syncing the write-ahead log to disk failed")
      const later = yield* Effect.flip(synced)
      expect(later.message).toBe("syncing the write-ahead log to disk failed")
      expect(runs).toHaveLength(1)
    }))
})
