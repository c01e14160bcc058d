/**
 * When the training process restarts its dead upload service, and when it gives up. Deaths are
 * counted in a sliding window of CRASH_WINDOW (10 minutes): the restart after the n-th death in the
 * window waits 100 ms · 2^(n-1), capped at 5 s, times a jitter in [0.8, 1.2]; a death past
 * MAX_RESTARTS in the window is the last. So a service that dies at once is given up on within
 * seconds, one that dies every half minute within five minutes, and one that dies once an hour
 * never (each restart resumes from the runs' upload cursors, so it costs little).
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Random from "effect/Random"

/** Restarts within one window before the link gives up. */
export const MAX_RESTARTS = 10

/** How far back deaths count. */
export const CRASH_WINDOW = Duration.minutes(10)

const FIRST_DELAY_MS = 100
const MAX_DELAY_MS = 5_000

/** The factor a restart delay is multiplied by, drawn from Effect's Random (fixed in tests). */
export const jitter: Effect.Effect<number> = Random.nextRange(0.8, 1.2)

/**
 * After a death at `now` (ms): the deaths still in the window, this one included, and the delay
 * before the next start, or null to give up.
 */
export const afterDeath = (
  deaths: ReadonlyArray<number>,
  now: number,
  factor: number
): { readonly deaths: ReadonlyArray<number>; readonly restartIn: Duration.Duration | null } => {
  const since = now - Duration.toMillis(CRASH_WINDOW)
  const recent = [...deaths.filter((at) => at > since), now]
  if (recent.length > MAX_RESTARTS) return { deaths: recent, restartIn: null }
  const base = Math.min(FIRST_DELAY_MS * 2 ** (recent.length - 1), MAX_DELAY_MS)
  return { deaths: recent, restartIn: Duration.millis(Math.round(base * factor)) }
}
