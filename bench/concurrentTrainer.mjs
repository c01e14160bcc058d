// One training process of bench/concurrent.ts: a plain .mjs importing the built package ("steplog"
// resolves to dist/ through the package's exports), so that no TypeScript loader runs in it and its
// CPU is the SDK's own. Opens an online run from argv[2] (JSON: baseUrl, apiKey, dir, project,
// name, rows; paced runs also perTick and tickMs), says `{"ready":…}` on stdout, waits for a line
// on stdin (the bench starts every trainer at once, once every upload service is up), then logs
// `rows` benchmark rows (bench/fixtures.ts `row`: ten doubles built fresh for each call), all at
// once or `perTick` every `tickMs` ms on a fixed schedule (a late tick is logged at once, so the
// rate holds), awaits finish() and says `{"done":…}`: times in ms on CLOCK_MONOTONIC (comparable
// across processes), this process's CPU (µs) when told to start, after the last log() call and
// once finish() resolved, the time each tick was logged, and finish()'s result. Stdout lines are
// written synchronously.
import * as fs from "node:fs"
import { performance } from "node:perf_hooks"
import { init } from "steplog"
import { row } from "./row.mjs"

const options = JSON.parse(process.argv[2])
// A guard against orphans: the bench kills this process long before.
setTimeout(() => process.exit(99), 30 * 60_000).unref()

const say = (message) => {
  const line = `${JSON.stringify(message)}\n`
  for (;;) {
    try {
      return void fs.writeSync(1, line)
    } catch (error) {
      if (error.code !== "EAGAIN") throw error
    }
  }
}
/** Milliseconds on CLOCK_MONOTONIC, to the nanosecond: one clock for every process of the machine, which no adjustment of the wall clock moves. */
const now = () => Number(process.hrtime.bigint()) / 1e6

const run = await init({
  mode: "online",
  baseUrl: options.baseUrl,
  apiKey: options.apiKey,
  dir: options.dir,
  project: options.project,
  name: options.name,
  console: "off",
  finishTimeoutMs: 600_000
})
say({ ready: run.id, pid: process.pid })
await new Promise((resolve) => process.stdin.once("data", resolve))
process.stdin.destroy()

const cpuAtStart = process.cpuUsage()
const start = now()
/** When each tick's rows were logged (paced runs). */
const ticks = []
if (options.perTick === undefined) {
  for (let i = 0; i < options.rows; i++) run.log(row(i))
} else {
  const from = performance.now()
  for (let step = 0, tick = 0; step < options.rows; tick++) {
    const wait = from + tick * options.tickMs - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    ticks.push(now())
    for (let k = 0; k < options.perTick && step < options.rows; k++, step++) run.log(row(step))
  }
}
const lastCall = now()
const cpuAtLastCall = process.cpuUsage()
const result = await run.finish()
const done = now()
const cpu = process.cpuUsage()
say({
  done: run.id,
  start,
  lastCall,
  finished: done,
  cpuAtStartUs: cpuAtStart.user + cpuAtStart.system,
  cpuAtLastCallUs: cpuAtLastCall.user + cpuAtLastCall.system,
  cpuUs: cpu.user + cpu.system,
  ticks,
  result
})
