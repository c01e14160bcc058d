/**
 * `npm run demo`: starts `steplog server`, trains three small networks on handwritten digits at
 * once (examples/train.ts, each with other hyper-parameters) uploading as they go, prints the
 * dashboard's address and serves until Ctrl-C. `npm run demo -- --once` stops the server once the
 * runs are uploaded and says where the data is.
 *
 * Everything stays in ./steplog-demo: the server's data, the runs' directories, and the
 * credentials file that the server's first start writes (XDG_CONFIG_HOME points there, so the
 * user's own is left alone). A later demo serves the earlier runs too.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as readline from "node:readline"
import type { Readable } from "node:stream"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const { values: flags } = parseArgs({ options: { once: { type: "boolean", default: false } } })

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const cli = path.join(root, "dist", "cli", "main.js")
const dirs = { server: "steplog-demo/server", runs: "steplog-demo/runs", config: "steplog-demo/config" }
// The user's own STEPLOG_* settings (an API key, another server) are not the demo's.
const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("STEPLOG_")))
const env = { ...inherited, XDG_CONFIG_HOME: path.join(root, dirs.config) }
const project = "digits"
// The runs of one demo share a group, by which the summary picks them out of the earlier ones.
const group = `demo-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-")}`
const sweep = [
  ["--lr", "0.001", "--hidden", "32", "--seed", "1"],
  ["--lr", "0.003", "--hidden", "64", "--seed", "2"],
  ["--lr", "0.03", "--hidden", "16", "--seed", "3"]
]

// Set by Ctrl-C (or a kill), and by --once when the runs are in: the server is being stopped.
let stopping = false

const fail = (message: string): never => {
  console.error(`demo: ${message}`)
  process.exit(2)
}

const exited = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once("exit", resolve))

const eachLine = (stream: Readable | null, onLine: (line: string) => void) => {
  if (stream !== null) readline.createInterface({ input: stream }).on("line", onLine)
}

const portIsFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const probe = net.createServer().once("error", () => resolve(false))
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)))
  })

/** Resolves with the server's URL once it listens; echoes its lines, the dashboard's link set apart. */
const listening = (server: ChildProcess) => {
  let dashboard: string | null = null
  const earlyExit = (status: number | null) => stopping || fail(`steplog server stopped before it was listening (status ${status})`)
  return new Promise<{ baseUrl: string; dashboard: () => string }>((resolve) => {
    // Its own message (such as a taken port) is on stderr already.
    server.once("exit", earlyExit)
    eachLine(server.stdout, (line) => {
      const signIn = /^steplog server: dashboard at (\S+)/.exec(line)?.[1]
      if (signIn !== undefined) dashboard = signIn
      console.log(signIn === undefined ? line : `\n  dashboard: ${signIn}\n`)
      const baseUrl = /^steplog server: listening on (\S+),/.exec(line)?.[1]
      if (baseUrl === undefined) return
      server.off("exit", earlyExit)
      resolve({ baseUrl, dashboard: () => dashboard ?? baseUrl })
    })
  })
}

/**
 * The server's first start stored its "local" key for the URL it had then; started again on
 * another port (7077 was taken), it needs a key stored for this URL too, made with its own CLI.
 */
const apiKeyFor = (baseUrl: string): string => {
  const file = path.join(env.XDG_CONFIG_HOME, "steplog", "credentials.json")
  const stored = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as { keys?: Record<string, string> }).keys?.[baseUrl] : undefined
  if (stored !== undefined) return stored
  const key = execFileSync(process.execPath, [cli, "keys", "create", "--project", project, "--data", dirs.server], { cwd: root, env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  execFileSync(process.execPath, [cli, "login", "--base-url", baseUrl, key], { cwd: root, env, stdio: ["ignore", "inherit", "inherit"] })
  return key
}

/** One training run, online, its output lines marked with its number. */
const train = (args: ReadonlyArray<string>, index: number, baseUrl: string): ChildProcess => {
  const child = spawn(process.execPath, ["--import", "tsx", "examples/train.ts", ...args], {
    cwd: root,
    env: { ...env, STEPLOG_MODE: "online", STEPLOG_BASE_URL: baseUrl, STEPLOG_DIR: dirs.runs, STEPLOG_RUN_GROUP: group },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const mark = `run ${index + 1} │ `
  eachLine(child.stdout, (line) => console.log(mark + line))
  eachLine(child.stderr, (line) => console.error(mark + line))
  return child
}

/** What the demo reads of a run from the server (`GET /api/v1/projects/:project/runs`). */
interface RunOnServer {
  readonly name: string
  readonly state: string
  readonly group: string | null
  readonly records: number
  readonly config: { readonly [key: string]: unknown }
  readonly summary: { readonly [key: string]: unknown }
}

/**
 * This demo's runs as the server holds them, once there are at least `count` of them and none is
 * still running (each run's last record is in), or after 10 s.
 */
const settledRuns = async (baseUrl: string, apiKey: string, count: number): Promise<ReadonlyArray<RunOnServer>> => {
  const deadline = Date.now() + 10_000
  for (;;) {
    const response = await fetch(`${baseUrl}/api/v1/projects/${project}/runs`, { headers: { authorization: `Bearer ${apiKey}` } })
    if (!response.ok && response.status !== 404) throw new Error(`the server answered ${response.status} to the runs listing`)
    const runs = response.ok ? (await response.json() as { runs: ReadonlyArray<RunOnServer> }).runs.filter((run) => run.group === group) : []
    if ((runs.length >= count && runs.every((run) => run.state !== "running")) || Date.now() > deadline) return runs
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

if (!fs.existsSync(cli)) fail(`${path.relative(root, cli)} is missing: build steplog first (npm run build; npm run demo does it)`)
const started = Date.now()
const port = (await portIsFree(7077)) ? 7077 : 0
// In a process group of its own, so that a Ctrl-C does not stop it at once: the demo stops it once
// the runs' last records are in. It never outlives the demo, whichever way the demo ends but SIGKILL.
const server = spawn(process.execPath, [cli, "server", "--port", String(port), "--data", dirs.server, "--log-level", "warn"], { cwd: root, env, detached: true, stdio: ["ignore", "pipe", "inherit"] })
process.on("exit", () => server.kill("SIGKILL"))
const trainers: Array<ChildProcess> = []
let uploads: { readonly baseUrl: string; readonly apiKey: string } | null = null

const stopServer = async () => {
  server.kill("SIGINT")
  await exited(server)
}

// Ctrl-C (or a kill): the runs end (steplog writes their last records), their uploads finish, the
// server stops. Ending a demo that serves finished runs is its normal end (status 0).
let serving = false
const stop = async () => {
  if (stopping) return
  stopping = true
  console.log("\nstopping: ending the runs, then the server …")
  for (const trainer of trainers) trainer.kill("SIGINT")
  await Promise.all(trainers.map(exited))
  // A server that does not answer any more has nothing left to wait for.
  if (uploads !== null) await settledRuns(uploads.baseUrl, uploads.apiKey, 0).catch(() => [])
  await stopServer()
  process.exit(serving ? 0 : 130)
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void stop())

const { baseUrl, dashboard } = await listening(server)
uploads = { baseUrl, apiKey: apiKeyFor(baseUrl) }
console.log(`training three networks on handwritten digits, logging every step to ${baseUrl} …`)
trainers.push(...sweep.map((args, index) => train(args, index, baseUrl)))
const statuses = await Promise.all(trainers.map(exited))

if (!stopping) {
  const runs = await settledRuns(baseUrl, uploads.apiKey, trainers.length)
  console.log(`\n${runs.length} runs on the server after ${((Date.now() - started) / 1000).toFixed(1)} s:`)
  for (const run of runs) {
    const acc = run.summary["best_val_acc"]
    const hyper = `lr ${String(run.config["lr"]).padEnd(6)} hidden ${String(run.config["hidden"]).padEnd(4)}`
    console.log(`  ${run.name.padEnd(20)} ${hyper} best val/acc ${typeof acc === "number" ? acc.toFixed(3) : "-"}  ${run.state}, ${run.records} records uploaded`)
  }
  const failed = statuses.filter((status) => status !== 0).length
  if (failed > 0) console.log(`  ${failed} of the training runs failed (their output is above)`)
  console.log(`\n  dashboard: ${dashboard()}\n`)
  if (flags.once) {
    stopping = true
    await stopServer()
    console.log(`server stopped. Its data is in ${dirs.server}, the runs' journals in ${dirs.runs}; npm run demo serves them again.`)
    const complete = failed === 0 && runs.length === trainers.length && runs.every((run) => run.state === "finished")
    process.exitCode = complete ? 0 : 1
  } else {
    serving = true
    console.log("serving until Ctrl-C …")
    const status = await exited(server)
    if (!stopping) fail(`steplog server stopped by itself (status ${status})`)
  }
}
