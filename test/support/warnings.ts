/** The SteplogWarnings (`process.emitWarning`) a test file's tests see, one test at a time. */
import { afterEach, beforeEach } from "vitest"

/**
 * One macrotask later. `process.emitWarning` delivers on the next tick, and a tick queued from
 * inside a promise chain waits until the chain's microtasks run out, so only a macrotask boundary
 * guarantees that every warning emitted before it has been delivered.
 */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Registers the hooks; `settled()` has the messages of every SteplogWarning the current test emitted before it was called. */
export const useSteplogWarnings = () => {
  let seen: Array<string> = []
  const listen = (warning: Error) => {
    if (warning.name === "SteplogWarning") seen.push(warning.message)
  }
  beforeEach(async () => {
    // Let the warnings of the test before (and its clean-up) go by unheard.
    await settle()
    seen = []
    process.on("warning", listen)
  })
  afterEach(() => {
    process.off("warning", listen)
  })
  return {
    /** What was emitted so far, without waiting for deliveries still queued. */
    now: (): ReadonlyArray<string> => [...seen],
    settled: async (): Promise<ReadonlyArray<string>> => {
      await settle()
      return [...seen]
    }
  }
}
