/**
 * Call cost: the median and p99 of one `run.log()` call, each call timed alone, against pino's
 * `logger.info()` of the same row in the same run. The clock's own cost (an empty pair of
 * readings, measured here) is subtracted. The loop yields to the event loop every 1,000 calls, as
 * a training loop does, so flushes run between calls and are not in these figures (see burst.ts).
 * Target: median under 0.3 µs, p99 under 2 µs.
 */
import { init } from "steplog"
import { type Log, nanos, openPino, quantile, report, row, tempDir, turn } from "./fixtures.js"

const CALLS = 200_000
const WARMUP = 50_000

const timeCalls = async (log: Log): Promise<Float64Array> => {
  const times = new Float64Array(CALLS)
  for (let i = 0; i < WARMUP + CALLS; i++) {
    const data = row(i)
    const start = process.hrtime.bigint()
    log(data)
    const end = process.hrtime.bigint()
    if (i >= WARMUP) times[i - WARMUP] = nanos(start, end)
    if (i % 1000 === 999) await turn()
  }
  return times.sort()
}

const clockCost = (): number => {
  const times = new Float64Array(CALLS)
  for (let i = 0; i < CALLS; i++) {
    const start = process.hrtime.bigint()
    times[i] = nanos(start, process.hrtime.bigint())
  }
  return quantile(times.sort(), 0.5)
}

const dir = tempDir("call-cost")
const overhead = clockCost()
const run = await init({ dir, mode: "offline", name: "call-cost" })
const steplog = await timeCalls(run.log)
await run.finish()
const pino = openPino(dir)
const baseline = await timeCalls(pino.log)
await pino.close()

const figures = (name: string, times: Float64Array) => ({
  logger: name,
  "median µs": +((quantile(times, 0.5) - overhead) / 1000).toFixed(3),
  "p99 µs": +((quantile(times, 0.99) - overhead) / 1000).toFixed(3),
  "p99.9 µs": +((quantile(times, 0.999) - overhead) / 1000).toFixed(3)
})
report(`call cost: one call timed alone (clock overhead ${overhead} ns subtracted; target median < 0.3 µs, p99 < 2 µs)`, [
  figures("steplog run.log()", steplog),
  figures("pino logger.info()", baseline)
])
