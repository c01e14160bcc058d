/**
 * Supervision for actors: an actor is a loop forked in a scope; when it fails or dies with a
 * defect, it is started again after the delay its restart `Schedule` gives. Interruption (the
 * scope closing) is not a failure and is never restarted.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

/**
 * Restart delays: 10 ms doubling to at most 1 s, for as long as the actor keeps failing; after a
 * minute without a failure the delays start again from 10 ms.
 */
export const restartSchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential("10 millis").pipe(
  Schedule.union(Schedule.spaced("1 second")),
  Schedule.resetAfter("1 minute")
)

/**
 * Forks `loop` in the current scope, restarted by `schedule` after each failure or defect.
 * `report` hears about every restart, with the cause.
 */
export const supervise = <E>(
  name: string,
  loop: Effect.Effect<never, E>,
  options: {
    readonly schedule?: Schedule.Schedule<unknown, Cause.Cause<E>>
    readonly report: (message: string) => void
  }
): Effect.Effect<Fiber.RuntimeFiber<void>, never, Scope.Scope> =>
  loop.pipe(
    Effect.sandbox,
    Effect.tapError((cause) =>
      Effect.sync(() => options.report(`${name} failed and will be restarted: ${Cause.pretty(cause)}`))
    ),
    Effect.retry(options.schedule ?? restartSchedule),
    Effect.catchAll((cause) =>
      Effect.sync(() => options.report(`${name} stopped: its restart schedule gave up after ${Cause.pretty(cause)}`))
    ),
    // A fiber inherits its parent's interruptibility: forked inside an uninterruptible region
    // (such as the acquire of `Effect.acquireRelease`, which is how `Steplog.layer` opens a run)
    // the actor could never be stopped, and closing its scope would wait for it forever.
    Effect.interruptible,
    Effect.forkScoped
  )
