/**
 * What every benchmark logs and where: the ten-double row of the benchmark specification, built
 * fresh for every call (so no benchmark profits from logging one object twice), and temp dirs.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import pino from "pino"
import { storedKey } from "../src/actors/Credentials.js"
import type { HistoryBlock, HistoryRecord } from "../src/schemas/Record.js"
import { row } from "./row.mjs"

/** The benchmark row: ten full-precision doubles, built fresh for each call (row.mjs). */
export { row }

export type Row = ReturnType<typeof row>

/** `count` benchmark rows from step `from` as history records (seq = step), as a store ingests them. */
export const historyRecords = (from: number, count: number): Array<HistoryRecord> =>
  Array.from({ length: count }, (_, i) => {
    const { step, ...values } = row(from + i)
    return { kind: "history", seq: step, ts: 1_764_000_000_000 + step, step, values }
  })

/** `count` benchmark rows from step `from` as one history block (seq = step), as the uploader sends them. */
export const historyBlock = (from: number, count: number): HistoryBlock => {
  const rows = Array.from({ length: count }, (_, i) => row(from + i))
  const keys = Object.keys(rows[0]!).filter((key) => key !== "step")
  const column = (of: (r: Row) => number) => Buffer.from(Float64Array.from(rows, of).buffer)
  return {
    kind: "historyBlock",
    seq: from,
    rows: rows.length,
    keys,
    steps: column((r) => r.step),
    ts: column((r) => 1_764_000_000_000 + r.step),
    columns: keys.map((key) => column((r) => r[key as keyof Row]))
  }
}

/** A logging call under test. */
export type Log = (data: Row) => void

/** A fresh temp directory, removed when the process exits. */
export const tempDir = (name: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `steplog-bench-${name}-`))
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** One event-loop turn, as a training loop that awaits once per step gives. */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** The baseline: pino writing to a file through `pino.destination({ sync: false })`. */
export const openPino = (dir: string) => {
  const destination = pino.destination({ dest: path.join(dir, "pino.log"), sync: false, mkdir: true })
  const logger = pino(destination)
  return {
    log: ((data: Row) => logger.info(data)) as Log,
    /** Resolves once everything logged is in the file. */
    close: () =>
      new Promise<void>((resolve, reject) => {
        destination.once("close", () => resolve())
        destination.once("error", reject)
        destination.end()
      })
  }
}

/** Nanoseconds between two `process.hrtime.bigint()` readings, as a number. */
export const nanos = (from: bigint, to: bigint): number => Number(to - from)

/** The q-quantile of sorted numbers. */
export const quantile = (sorted: ArrayLike<number>, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

/** Prints a result table and, when BENCH_JSON names a file, appends the rows there for bench/run.ts. */
export const report = (title: string, rows: ReadonlyArray<{ readonly [column: string]: string | number }>): void => {
  console.log(`\n${title}`)
  console.table(rows)
  const out = process.env["BENCH_JSON"]
  if (out !== undefined) fs.appendFileSync(out, JSON.stringify({ title, rows }) + "\n")
}

/**
 * Starts `steplog server` (the built CLI, SQLite in `dir`/server, or the PostgreSQL database of
 * `options.database`) in a process of its own on a free port, with `options.nodeArgs` given to
 * Node (`--cpu-prof`), killed when this process exits; resolves to its URL, its dashboard's sign-in
 * link, the local key its first start stored in the credentials file of `env`, and its exit.
 */
export const startServerProcess = async (
  dir: string,
  env: NodeJS.ProcessEnv,
  options: { readonly database?: string; readonly nodeArgs?: ReadonlyArray<string> } = {}
) => {
  const main = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli", "main.js")
  const store = options.database === undefined ? ["--data", path.join(dir, "server")] : ["--database", options.database]
  const server = spawn(process.execPath, [...(options.nodeArgs ?? []), main, "server", "--port", "0", ...store], { env, stdio: ["ignore", "pipe", "inherit"] })
  const kill = () => server.kill("SIGKILL")
  process.on("exit", kill)
  const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)))
  void exited.then(() => process.off("exit", kill))
  // The server prints where it listens, then its dashboard's one-time sign-in link; then its access log.
  let out = ""
  const [baseUrl, signInUrl] = await new Promise<[string, string]>((resolve, reject) => {
    let started = false
    server.stdout!.on("data", (chunk) => {
      out += chunk
      if (started) return
      const listening = /listening on (http:\/\/[^\s,]+)/.exec(out)
      const dashboard = /dashboard at (http:\/\/\S+)/.exec(out)
      if (listening && dashboard) {
        started = true
        resolve([listening[1]!, dashboard[1]!])
      }
    })
    server.on("exit", (code) => reject(new Error(`steplog server exited with ${code}`)))
  })
  return {
    baseUrl,
    signInUrl,
    apiKey: storedKey(baseUrl, env) ?? "",
    pid: server.pid!,
    stop: () => server.kill("SIGTERM"),
    exited,
    /** Everything it has printed so far (one access log line a request). */
    output: () => out
  }
}
