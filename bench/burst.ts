/**
 * Burst: 1,000 back-to-back calls, then one event-loop turn, repeated; wall time divided by calls,
 * including every flush the runtime does on the training thread, until `finish()` (pino: the
 * destination's close) has everything on disk. Against pino in the same run: both are timed in
 * several interleaved rounds (a fresh run and a fresh pino file each), and the table gives the
 * median round. Target: at most 0.1× pino's figure.
 */
import { init } from "steplog"
import { type Log, nanos, openPino, quantile, report, row, tempDir, turn } from "./fixtures.js"

const ROUNDS = 5
const BURSTS = 200
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
const measure = async () => {
  const run = await init({ dir, mode: "offline", name: "burst" })
  const steplog = await burst(run.log, run.finish)
  const pino = openPino(dir)
  const baseline = await burst(pino.log, pino.close)
  return { steplog, baseline }
}
await measure() // warms the JIT for both
const rounds: Array<{ steplog: number; baseline: number }> = []
for (let round = 0; round < ROUNDS; round++) rounds.push(await measure())
const median = (values: Array<number>) => quantile(values.sort((a, b) => a - b), 0.5)
const steplog = median(rounds.map((r) => r.steplog))
const baseline = median(rounds.map((r) => r.baseline))
const ratio = median(rounds.map((r) => r.steplog / r.baseline))
report(`burst: ${BURSTS} × ${BURST} calls, one event-loop turn between bursts, until all is on disk; median of ${ROUNDS} rounds (target ≤ 0.1× pino)`, [
  { logger: "steplog run.log()", "µs per call": +(steplog / 1000).toFixed(3), "× pino": +ratio.toFixed(3) },
  { logger: "pino logger.info()", "µs per call": +(baseline / 1000).toFixed(3), "× pino": 1 }
])
