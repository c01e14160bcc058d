import { init } from "steplog"
import { row } from "/work/main/bench/row.mjs"
import { performance } from "node:perf_hooks"
const rows = 100000, perTick = 100, tickMs = 10
const run = await init({ mode: process.argv[3] ?? "offline", dir: process.argv[2], project: "p", console: "off" })
const c0 = process.cpuUsage()
const from = performance.now()
for (let step = 0, tick = 0; step < rows; tick++) {
  const wait = from + tick * tickMs - performance.now()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  for (let k = 0; k < perTick && step < rows; k++, step++) run.log(row(step))
}
const c1 = process.cpuUsage()
await run.finish()
const c2 = process.cpuUsage()
const us = (c) => c.user + c.system
import fs from "node:fs"; for (const t of fs.readdirSync("/proc/self/task")) { const s = fs.readFileSync(`/proc/self/task/${t}/stat`, "utf8"); const f = s.slice(s.lastIndexOf(")") + 2).split(" "); console.log(t, s.slice(s.indexOf("(")+1, s.lastIndexOf(")")), "utime", f[11], "stime", f[12]) }
console.log(JSON.stringify({ user: process.cpuUsage().user/1000, system: process.cpuUsage().system/1000, logMs: (us(c1) - us(c0)) / 1000, finishMs: (us(c2) - us(c1)) / 1000 }))
