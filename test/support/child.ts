/**
 * Child Node processes running a fixture script from test/fixtures (or any script), for tests where
 * real process death is the point. Each child's stdout is split into lines as it arrives;
 * `waitForLine` polls them against a deadline. `killChildren` (in afterEach) ends every child a test
 * started. With `terminal`, the child runs on a pseudo-terminal made by util-linux `script`, so
 * that its stdout and stderr are a TTY; its stdout here is then all it wrote to that terminal.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures")

/** A running fixture: its process, its stdout lines so far, its stderr, and how it ended. */
export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  /** Its stdout lines; on a terminal, each as the terminal shows it (the text after its last `\r`, a cleared line's clearing dropped). */
  readonly lines: ReadonlyArray<string>
  /** All it wrote to stdout (on a terminal: to the terminal, stderr included, with `\r\n` line ends). */
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves with the first line (already read or still to come) that `match` accepts. */
  readonly waitForLine: (match: (line: string) => boolean, timeoutMs?: number) => Promise<string>
  /**
   * Resolves when the process has ended (and been reaped) and its stdout has been read to the end;
   * rejects, with what the child printed, if that takes longer than `timeoutMs`.
   */
  readonly exited: (timeoutMs?: number) => Promise<Ended>
}

/** How a child ended: its exit code, or the signal that killed it. */
export interface Ended {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** How to start a child. */
export interface StartOptions {
  /** Run it on a pseudo-terminal (`script -qfec`): stdin, stdout and stderr are a TTY. */
  readonly terminal?: boolean
}

const running = new Set<ChildProcess>()

/** Starts `node test/fixtures/<script>` with `env` on top of this environment minus any STEPLOG_*. */
export const startFixture = (script: string, env: { readonly [key: string]: string }, cwd: string, options: StartOptions = {}): Child => {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("STEPLOG_")))
  return startNode(path.join(fixtures, script), [], { ...base, STEPLOG_MODE: "offline", ...env }, cwd, options)
}

/** One word of the shell command `script -c` runs. */
const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`

/** What a terminal shows of a line (`\r\n`-ended): the text after its last carriage return, without the clear-line escape. */
const shown = (line: string): string => {
  const text = line.replace(/\r$/, "")
  return text.slice(text.lastIndexOf("\r") + 1).replace(/^\x1b\[2K/, "")
}

/** Starts `node <file> <args>` with exactly `env`. */
export const startNode = (
  file: string,
  args: ReadonlyArray<string>,
  env: { readonly [key: string]: string | undefined },
  cwd: string,
  options: StartOptions = {}
): Child => {
  const script = path.basename(file)
  const argv = [process.execPath, file, ...args]
  const child = options.terminal === true
    ? spawn("script", ["-qfec", argv.map(shellQuote).join(" "), "/dev/null"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    : spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
  running.add(child)
  const lines: Array<string> = []
  let partial = ""
  let stdout = ""
  let stderr = ""
  const waiters = new Set<() => void>()
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
    const parts = (partial + chunk).split("\n")
    partial = parts.pop()!
    lines.push(...(options.terminal === true ? parts.map(shown) : parts))
    for (const wake of [...waiters]) wake()
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  // Set once the process is gone and its stdout is read to the end: no line can come after.
  let closed = false
  const ended = new Promise<Ended>((resolve) => {
    child.on("close", (code: number | null, signal: NodeJS.Signals | null) => {
      closed = true
      running.delete(child)
      resolve({ code, signal })
      for (const wake of [...waiters]) wake()
    })
  })
  const describe = () => `stdout (last lines): ${lines.slice(-5).join(" | ")}\nstderr: ${stderr}`

  const exited = (timeoutMs = 20_000): Promise<Ended> => {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${script} still running after ${timeoutMs} ms\n${describe()}`)), timeoutMs)
    })
    return Promise.race([ended, late]).finally(() => clearTimeout(timer))
  }

  const waitForLine = (match: (line: string) => boolean, timeoutMs = 20_000): Promise<string> =>
    new Promise((resolve, reject) => {
      let checked = 0
      const check = () => {
        for (; checked < lines.length; checked++) {
          if (match(lines[checked]!)) return done(() => resolve(lines[checked]!))
        }
        if (closed) {
          done(() => reject(new Error(`${script} ended (${child.exitCode ?? child.signalCode}) before the expected line\n${describe()}`)))
        }
      }
      const timer = setTimeout(
        () => done(() => reject(new Error(`no expected line from ${script} within ${timeoutMs} ms\n${describe()}`))),
        timeoutMs
      )
      const done = (settle: () => void) => {
        clearTimeout(timer)
        waiters.delete(check)
        settle()
      }
      waiters.add(check)
      check()
    })

  return { process: child, pid: child.pid!, lines, stdout: () => stdout, stderr: () => stderr, waitForLine, exited }
}

/** Kills every child still running and waits for each to be gone; for afterEach. */
export const killChildren = async (): Promise<void> => {
  const gone = [...running].map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  }))
  await Promise.all(gone)
}
