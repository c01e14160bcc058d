/**
 * A run's directory: `<dir>/run-<YYYYMMDD_HHMMSS>-<runId>/` holding `journal.slog`, `debug.log`,
 * `files/` and, while a process writes the run, `lock`. `<dir>/latest-run` links to the newest.
 * The lock is what keeps two processes from writing one journal.
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"

/** Another live process holds the run. */
export class RunLocked extends Data.TaggedError("RunLocked")<{ readonly dir: string; readonly pid: number }> {
  override get message(): string {
    return `steplog: run directory ${this.dir} is being written by process ${this.pid}; two processes may not write one run`
  }
}

/** The run directory could not be created or opened. */
export class RunDirUnusable extends Data.TaggedError("RunDirUnusable")<{ readonly dir: string; readonly detail: string }> {
  override get message(): string {
    return `steplog: cannot use run directory ${this.dir}: ${this.detail}`
  }
}

/** A run's directory and what is in it. */
export interface RunDir {
  readonly path: string
  readonly journal: string
  readonly debugLog: string
  readonly files: string
}

const at = (dirPath: string): RunDir => ({
  path: dirPath,
  journal: path.join(dirPath, "journal.slog"),
  debugLog: path.join(dirPath, "debug.log"),
  files: path.join(dirPath, "files")
})

const stamp = (ms: number): string => {
  const d = new Date(ms)
  const two = (n: number) => String(n).padStart(2, "0")
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}_${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`
}

/** The directory of run `runId` under `root`, if one exists. */
export const find = (root: string, runId: string): RunDir | null => {
  let names: Array<string>
  try {
    names = fs.readdirSync(root)
  } catch {
    return null
  }
  const suffix = `-${runId}`
  const name = names.filter((n) => /^run-\d{8}_\d{6}-/.test(n) && n.endsWith(suffix) && n.length === 20 + runId.length).sort().pop()
  return name === undefined ? null : at(path.join(root, name))
}

/** How many run directories `root` holds (for generated run names). */
export const count = (root: string): number => {
  try {
    return fs.readdirSync(root).filter((n) => n.startsWith("run-")).length
  } catch {
    return 0
  }
}

/** Creates the directory of a new run and points `latest-run` at it. */
export const create = (root: string, runId: string, startedAtMs: number): Either.Either<RunDir, RunDirUnusable> => {
  const dir = at(path.join(path.resolve(root), `run-${stamp(startedAtMs)}-${runId}`))
  try {
    fs.mkdirSync(dir.files, { recursive: true })
    pointLatestAt(dir)
    return Either.right(dir)
  } catch (cause) {
    return Either.left(new RunDirUnusable({ dir: dir.path, detail: String(cause) }))
  }
}

/** Swaps `latest-run` atomically: a new link under a temporary name, renamed over the old one. */
const pointLatestAt = (dir: RunDir): void => {
  const parent = path.dirname(dir.path)
  const temp = path.join(parent, `.latest-run-${process.pid}`)
  fs.rmSync(temp, { force: true })
  fs.symlinkSync(path.basename(dir.path), temp)
  fs.renameSync(temp, path.join(parent, "latest-run"))
}

/**
 * Whether the process `pid` runs. A zombie (exited, not yet reaped by its parent) does not: a
 * training process SIGKILLed under a busy parent stays one for a while, and its service must not
 * take it for alive and leave its run unmarked (Linux tells by /proc; elsewhere a signal-0 probe).
 */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat[stat.lastIndexOf(")") + 2] !== "Z"
  } catch {
    return true
  }
}

/**
 * Takes the run's lock for this process. A lock left by a process that is gone is taken over;
 * one held by a live process (this one included) is `RunLocked`. Returns the release.
 */
export const lock = (dir: RunDir): Either.Either<() => void, RunLocked | RunDirUnusable> => {
  const file = path.join(dir.path, "lock")
  const unusable = (error: unknown) => Either.left(new RunDirUnusable({ dir: dir.path, detail: String(error) }))
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      createHoldingPid(file)
      return Either.right(() => fs.rmSync(file, { force: true }))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") return unusable(error)
    }
    const pid = pidIn(file)
    if (pid === "gone") continue // released between our attempt and this read
    if (pid !== null && processAlive(pid)) return Either.left(new RunLocked({ dir: dir.path, pid }))
    // Stale: its process is gone. Moving it aside by rename succeeds for one process only; that
    // process then checks it moved the stale lock, not a fresh one that replaced it meanwhile.
    const aside = `${file}.stale.${process.pid}`
    try {
      fs.renameSync(file, aside)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue
      return unusable(error)
    }
    const moved = pidIn(aside)
    if (moved !== pid && moved !== "gone" && moved !== null && processAlive(moved)) {
      try {
        fs.linkSync(aside, file)
      } catch {
        // the holder's lock could not be put back: a third process took the run meanwhile
      }
      fs.rmSync(aside, { force: true })
      return Either.left(new RunLocked({ dir: dir.path, pid: moved }))
    }
    fs.rmSync(aside, { force: true })
  }
  return Either.left(new RunDirUnusable({ dir: dir.path, detail: "the lock file keeps reappearing" }))
}

/**
 * The pid of the live process writing the run in `dirPath`, or null when none is: no lock, a lock
 * naming no pid, or one left by a process that is gone (a crash). Used by `steplog sync` and the
 * service to tell a run being written from one that has ended.
 */
export const holder = (dirPath: string): number | null => {
  let pid: number | null | "gone"
  try {
    pid = pidIn(path.join(dirPath, "lock"))
  } catch {
    return null
  }
  return typeof pid === "number" && processAlive(pid) ? pid : null
}

/** The pid a lock file names: null when it names none, "gone" when the file is not there. */
const pidIn = (file: string): number | null | "gone" => {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, "utf8"), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "gone"
    throw error
  }
}

/**
 * Creates `file` holding this process's pid; throws EEXIST when it exists. The pid is written to
 * a file of our own and hard-linked into place, so a lock is never seen empty: an empty lock looks
 * stale, and a process opening the same run at that moment would take it over. Where hard links
 * are not supported, an exclusive create and then a write (that small window open again).
 */
const createHoldingPid = (file: string): void => {
  const own = `${file}.${process.pid}`
  fs.writeFileSync(own, String(process.pid))
  try {
    fs.linkSync(own, file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error
    const fd = fs.openSync(file, "wx")
    try {
      fs.writeSync(fd, String(process.pid))
    } finally {
      fs.closeSync(fd)
    }
  } finally {
    fs.rmSync(own, { force: true })
  }
}

/** Appends a line to the run's `debug.log` (rare events only: start, warnings, end). */
export const debug = (dir: RunDir, line: string): void => {
  try {
    fs.appendFileSync(dir.debugLog, `${new Date().toISOString()} ${line}\n`)
  } catch {
    // debug.log is a convenience; a run never fails because of it
  }
}
