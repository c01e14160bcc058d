/**
 * Burst: 1,000 back-to-back calls, then one event-loop turn, repeated; wall time divided by calls,
 * including every flush the runtime does on the training thread, until `finish()` (pino: the
 * destination's close) has everything on disk. Against pino in the same run.
 * Target: at most 0.1× pino's figure.
 */
import { init } from "steplog"
import { type Log, nanos, openPino, report, row, tempDir, turn } from "./fixtures.js"

const BURSTS = 500
const BURST = 1_000

const burst = async (log: Log, close: () => Promise<unknown>): Promise<number> => {
  const start = process.hrtime.bigint()
  let step = 0
  for (let b = 0; b < BURSTS; b++) {
    for (let i = 0; i < BURST; i++) log(row(step++))
    await turn()
  }
  await close()
  return nanos(start, process.hrtime.bigint()) / (BURSTS * BURST)
}

const dir = tempDir("burst")
// A first pass of each warms the JIT; the second is measured.
const measure = async () => {
  const run = await init({ dir, mode: "offline", name: "burst" })
  const steplog = await burst(run.log, run.finish)
  const pino = openPino(dir)
  const baseline = await burst(pino.log, pino.close)
  return { steplog, baseline }
}
await measure()
const { steplog, baseline } = await measure()
report(`burst: ${BURSTS} × ${BURST} calls, one event-loop turn between bursts, until all is on disk (target ≤ 0.1× pino)`, [
  { logger: "steplog run.log()", "µs per call": +(steplog / 1000).toFixed(3), "× pino": +(steplog / baseline).toFixed(3) },
  { logger: "pino logger.info()", "µs per call": +(baseline / 1000).toFixed(3), "× pino": 1 }
])
