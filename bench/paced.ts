/**
 * Paced: one event-loop turn after every call, as a training loop that awaits once per step.
 * Reports the cost each step adds over the same loop without logging, for steplog and for pino.
 * The empty loop costs about as much as what is measured, and its time drifts, so each round
 * times the three loops back to back and the table gives the median of the rounds' differences.
 * Target: steplog adds at most 1 µs a step.
 */
import { init } from "steplog"
import { type Log, nanos, openPino, quantile, report, row, tempDir, turn } from "./fixtures.js"

const ROUNDS = 7
const STEPS = 50_000

const paced = async (log: Log): Promise<number> => {
  const start = process.hrtime.bigint()
  for (let i = 0; i < STEPS; i++) {
    log(row(i))
    await turn()
  }
  return nanos(start, process.hrtime.bigint()) / STEPS
}

const dir = tempDir("paced")
const run = await init({ dir, mode: "offline", name: "paced" })
const pino = openPino(dir)
await paced(run.log) // warms the JIT for all three loops
await paced(pino.log)
const empty: Array<number> = []
const steplog: Array<number> = []
const baseline: Array<number> = []
for (let round = 0; round < ROUNDS; round++) {
  const nothing = await paced(() => {})
  empty.push(nothing)
  steplog.push((await paced(run.log)) - nothing)
  baseline.push((await paced(pino.log)) - nothing)
}
await run.finish()
await pino.close()

const median = (values: Array<number>) => quantile(values.sort((a, b) => a - b), 0.5)
report(
  `paced: ${ROUNDS} rounds of ${STEPS} steps, one event-loop turn per step (empty loop: ${(median(empty) / 1000).toFixed(2)} µs a step; target: steplog adds ≤ 1 µs)`,
  [
    { logger: "steplog run.log()", "µs added per step": +(median(steplog) / 1000).toFixed(3) },
    { logger: "pino logger.info()", "µs added per step": +(median(baseline) / 1000).toFixed(3) }
  ]
)
