/**
 * Time to the first `log()`: milliseconds from a fresh Node process's start until `import "steplog"`
 * has loaded, and until an offline `init()` has opened its run and taken one `log()`, with the
 * process's RSS at that moment. The floor, measured in the same run: Node importing `effect/Effect`
 * alone (no Effect program starts faster), with bare Node, pino, and `effect/Effect` +
 * `effect/Schema` beside it. Each figure comes from a child process of its own (no module is
 * cached in memory from an earlier one), the scenarios taking turns round after round so that a
 * busy neighbour on the machine lands on all of them alike; a first round, which reads the files
 * into the page cache, is not counted. Leaves out: the child's own exit, and Node's on-disk compile
 * cache (only the CLI and the service process turn it on; NODE_COMPILE_CACHE is unset here).
 * Target (issue 8): import + first offline init() ≤ 1.3× the effect/Effect floor.
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { quantile, report, tempDir } from "./fixtures.js"

const ROUNDS = Number(process.env["FIRST_INIT_ROUNDS"] ?? 15)
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const dir = tempDir("first-init")

/** Prints the time since the process started (ms) and the RSS (bytes) as one JSON line. */
const measure = `console.log(JSON.stringify({ ms: performance.now(), rss: process.memoryUsage().rss }))`

const scenarios: ReadonlyArray<{ readonly name: string; readonly code: string }> = [
  { name: "bare node", code: measure },
  { name: "import pino", code: `import "pino"\n${measure}` },
  { name: "import effect/Effect (the floor)", code: `import "effect/Effect"\n${measure}` },
  { name: "import effect/Effect + effect/Schema", code: `import "effect/Effect"\nimport "effect/Schema"\n${measure}` },
  { name: "import steplog", code: `import "steplog"\n${measure}` },
  {
    name: "import steplog + offline init() + first log()",
    // Options as a training script passes them, config included (it is checked like any patch).
    code: [
      `import { init } from "steplog"`,
      `const run = await init({ dir: process.env.RUNS, mode: "offline", project: "bench", config: { lr: 0.001, layers: [64, 64], optimizer: { name: "adam" } } })`,
      `run.log({ loss: 0.5, acc: 0.25 })`,
      measure,
      `await run.finish()`
    ].join("\n")
  }
]

// The children resolve "steplog" from the repository (the package's own name points at dist/).
const env: NodeJS.ProcessEnv = { ...process.env, RUNS: path.join(dir, "runs"), XDG_CONFIG_HOME: path.join(dir, "config") }
delete env["NODE_COMPILE_CACHE"]
delete env["NODE_OPTIONS"]
for (const name of Object.keys(env)) if (name.startsWith("STEPLOG_")) delete env[name]

const once = (code: string): { ms: number; rss: number } => {
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", code], { cwd: root, env, encoding: "utf8" })
  return JSON.parse(out.trim().split("\n")[0]!) as { ms: number; rss: number }
}

const samples = scenarios.map(() => ({ ms: [] as Array<number>, rss: [] as Array<number> }))
for (let round = 0; round <= ROUNDS; round++) {
  scenarios.forEach((scenario, i) => {
    const { ms, rss } = once(scenario.code)
    if (round === 0) return
    samples[i]!.ms.push(ms)
    samples[i]!.rss.push(rss)
  })
}

const median = (values: Array<number>) => quantile(Float64Array.from(values).sort(), 0.5)
const floor = median(samples[2]!.ms)
report(`first log(): ms from a fresh node process's start, median of ${ROUNDS} rounds, each in its own process (target: import + offline init() ≤ 1.3× the effect/Effect floor)`, scenarios.map((scenario, i) => {
  const { ms, rss } = samples[i]!
  return {
    "node process": scenario.name,
    "median ms": +median(ms).toFixed(1),
    "spread ms (min–max)": `${Math.min(...ms).toFixed(0)}–${Math.max(...ms).toFixed(0)}`,
    "× floor": +(median(ms) / floor).toFixed(2),
    "RSS MiB": +(median(rss) / 2 ** 20).toFixed(1)
  }
}))
