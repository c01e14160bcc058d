/**
 * Call cost: the median and p99 of one `run.log()` call, each call timed alone, against pino's
 * `logger.info()` of the same row in the same run. The clock's own cost (an empty pair of
 * readings, measured here) is subtracted. The loop yields to the event loop every 1,000 calls, as
 * a training loop does, so flushes run between calls and are not in these figures (see burst.ts).
 * This machine's neighbours come and go, so each logger is timed in several rounds and the table
 * gives the median round's figures. steplog's rounds come first: pino writes from a libuv thread
 * after its calls return, which would otherwise land on steplog's rounds. Target: median under 0.3 µs, p99 under 2 µs.
 */
import { init } from "steplog"
import { type Log, nanos, openPino, quantile, report, row, tempDir, turn } from "./fixtures.js"

const ROUNDS = 5
const CALLS = 100_000
const WARMUP = 20_000

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
const rounds = { steplog: [] as Array<Float64Array>, pino: [] as Array<Float64Array> }
const run = await init({ dir, mode: "offline", name: "call-cost" })
for (let round = 0; round < ROUNDS; round++) rounds.steplog.push(await timeCalls(run.log))
await run.finish()
const pino = openPino(dir)
for (let round = 0; round < ROUNDS; round++) rounds.pino.push(await timeCalls(pino.log))
await pino.close()

/** The median over rounds of one quantile, in µs, clock overhead subtracted. */
const figure = (times: Array<Float64Array>, q: number) => {
  const perRound = times.map((sorted) => quantile(sorted, q)).sort((a, b) => a - b)
  return +((quantile(perRound, 0.5) - overhead) / 1000).toFixed(3)
}
const figures = (name: string, times: Array<Float64Array>) => ({
  logger: name,
  "median µs": figure(times, 0.5),
  "p99 µs": figure(times, 0.99),
  "p99.9 µs": figure(times, 0.999)
})
report(`call cost: one call timed alone, median of ${ROUNDS} rounds (clock overhead ${overhead} ns subtracted; target median < 0.3 µs, p99 < 2 µs)`, [
  figures("steplog run.log()", rounds.steplog),
  figures("pino logger.info()", rounds.pino)
])
