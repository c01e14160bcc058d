/**
 * A repeating task: runs it, waits `intervalMs` after it settles (so two never overlap), and again,
 * until the task answers "done" or the poll is stopped. Stopping aborts the request in flight.
 */

/** Whether an error is the abort of a stopped poll's request (not worth showing). */
export const isAbort = (error: unknown): boolean => error instanceof DOMException && error.name === "AbortError"

export interface Poll {
  readonly stop: () => void
}

/**
 * Starts polling after `intervalMs`. A failing task is reported to `onError` and tried again at the
 * next tick (the server may be restarting).
 */
export const poll = (
  intervalMs: number,
  task: (signal: AbortSignal) => Promise<"continue" | "done">,
  onError: (error: unknown) => void
): Poll => {
  const controller = new AbortController()
  let timer: number | undefined
  const tick = async () => {
    let next: "continue" | "done" = "continue"
    try {
      next = await task(controller.signal)
    } catch (error) {
      if (!controller.signal.aborted) onError(error)
    }
    if (next === "continue" && !controller.signal.aborted) timer = window.setTimeout(tick, intervalMs)
  }
  timer = window.setTimeout(tick, intervalMs)
  return {
    stop: () => {
      controller.abort()
      window.clearTimeout(timer)
    }
  }
}
