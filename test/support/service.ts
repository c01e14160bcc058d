/**
 * Helpers of the real-process tests of online runs (test/runtime/Service*.test.ts): whether a pid
 * is alive, the rows a run's journal holds, and the pids of the upload services a run's debug.log
 * names (so that afterEach can kill their process groups).
 */
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"
import { readJournal } from "../../src/journal/JournalReader.js"
import type { HistoryRecord } from "../../src/schemas/Record.js"
import { startFixture, type Child, type StartOptions } from "./child.js"

/** Whether `pid` is a live process (a zombie, dead but not yet reaped, counts as gone). */
export const alive = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

/** The history rows (step and values) of the run in `runDir`, the text it printed (output records), and its record count, read from its journal. */
export const journalRows = (runDir: string) => {
  const scan = Either.getOrThrow(readJournal(path.join(runDir, "journal.slog")))
  const history = scan.records.filter((record): record is HistoryRecord => record.kind === "history")
  const output = scan.records.flatMap((record) => (record.kind === "output" ? [record.text] : []))
  return { rows: history.map(({ step, values }) => ({ step, values })), output, records: scan.records.length }
}

/** Remembers every upload service pid a test saw; `killAll` (afterEach) kills their process groups. */
export const serviceTracker = () => {
  const seen = new Set<number>()
  return {
    /** The pids of the services that served the run (started by its process or found listening), as its debug.log names them, in order. */
    pids: (runDir: string): Array<number> => {
      let log = ""
      try {
        log = fs.readFileSync(path.join(runDir, "debug.log"), "utf8")
      } catch {
        return []
      }
      const pids = [...new Set([...log.matchAll(/upload service (\d+) (?:started|takes this run)/g)].map((match) => Number(match[1])))]
      for (const pid of pids) seen.add(pid)
      return pids
    },
    /** Kills the process group of every service seen (a backstop: each should be gone already). */
    killAll: (): void => {
      for (const pid of seen) {
        try {
          process.kill(-pid, "SIGKILL")
        } catch {
          // already gone
        }
      }
      seen.clear()
    }
  }
}

/** Where an online training fixture uploads, and the folder it works in. */
export interface OnlineTarget {
  readonly baseUrl: string
  readonly key: string
  /** XDG_CONFIG_HOME for the child: its credentials file. */
  readonly config: string
  readonly workDir: string
}

/**
 * Starts test/fixtures/onlineRun.mjs online against `target`, with `env` on top. Its temporary
 * folder is `target.config`: the upload service's socket and start lock stay in the test's folder,
 * shared by the processes that share the config.
 */
export const trainOnline = (target: OnlineTarget, env: { readonly [key: string]: string }, options: StartOptions = {}): Child => {
  fs.mkdirSync(target.config, { recursive: true })
  return startFixture("onlineRun.mjs", {
    STEPLOG_MODE: "online",
    STEPLOG_BASE_URL: target.baseUrl,
    STEPLOG_API_KEY: target.key,
    STEPLOG_PROJECT: "svc",
    STEPLOG_DIR: path.join(target.workDir, "runs"),
    XDG_CONFIG_HOME: target.config,
    TMPDIR: target.config,
    ...env
  }, target.workDir, options)
}

/** The run id and directory the fixture announced. */
export const startedRun = async (child: Child) => {
  const [, runId, runDir] = (await child.waitForLine((line) => line.startsWith("started "))).split(" ")
  return { runId: runId!, runDir: runDir! }
}
