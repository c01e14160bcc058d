/**
 * Paced: one event-loop turn after every call, as a training loop that awaits once per step.
 * Reports the cost each step adds over the same loop without logging, for steplog and for pino.
 * Target: steplog adds at most 1 µs a step.
 */
import { init } from "steplog"
import { type Log, nanos, openPino, report, row, tempDir, turn } from "./fixtures.js"

const STEPS = 100_000

const paced = async (log: Log): Promise<number> => {
  const start = process.hrtime.bigint()
  for (let i = 0; i < STEPS; i++) {
    log(row(i))
    await turn()
  }
  return nanos(start, process.hrtime.bigint()) / STEPS
}

const dir = tempDir("paced")
const measure = async () => {
  const empty = await paced(() => {})
  const run = await init({ dir, mode: "offline", name: "paced" })
  const steplog = await paced(run.log)
  await run.finish()
  const pino = openPino(dir)
  const baseline = await paced(pino.log)
  await pino.close()
  return { empty, steplog, baseline }
}
await measure()
const { empty, steplog, baseline } = await measure()
report(`paced: ${STEPS} steps, one event-loop turn per step (empty loop: ${(empty / 1000).toFixed(2)} µs a step; target: steplog adds ≤ 1 µs)`, [
  { logger: "steplog run.log()", "µs added per step": +((steplog - empty) / 1000).toFixed(3) },
  { logger: "pino logger.info()", "µs added per step": +((baseline - empty) / 1000).toFixed(3) }
])
