/**
 * The training process's side of the service process (ServiceMain.ts): forks it on the first online
 * run of the process, tells it about each run (`OpenRun`), each flush (`Flushed`, at most one
 * message per flush) and each end (`Finished`), and hears back `Progress` and `UploadStopped`.
 * One service serves every run of the process.
 *
 * The service is forked detached, so it has a process group of its own and a Ctrl-C aimed at the
 * training job does not kill an upload in flight, and unreferenced (child and channel), so it
 * never keeps the training process alive. When it dies, the link restarts it by `restartSchedule`
 * (exponential with jitter, capped, at most `MAX_RESTARTS` in a row) and tells the new one about
 * every open run again; each run resumes from its `upload.cursor`, and the server ignores records
 * it already has. Past the cap it gives up with one clear warning: runs stay on disk for sync.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import { fork, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Ipc from "../schemas/Ipc.js"
import type { FinishResult } from "./Run.js"
import { progressBar } from "./internal/progressBar.js"

/** Restarts in one streak of deaths (at most a minute long, see `restartSchedule`) before the link gives up. */
export const MAX_RESTARTS = 10

/**
 * Delays between restarts of a dead service: 100 ms doubling, capped at 5 s, jittered; at most
 * `MAX_RESTARTS` of them in a streak. A streak ends a minute after its first death, so a service
 * that lived a minute, or one that dies only every half minute, starts the count again.
 */
export const restartSchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(MAX_RESTARTS)),
  Schedule.resetAfter("1 minute")
)

/** The service process ended (it is restarted unless the restarts gave up). */
class ServiceDied extends Data.TaggedError("ServiceDied")<{ readonly detail: string }> {}

/** What the link needs to know of a run. */
export interface LinkedRunOptions {
  readonly runId: string
  readonly runDir: string
  readonly baseUrl: string
  /** Null: the service reads the credentials file itself. */
  readonly apiKey: string | null
  /** Bytes of whole frames in the journal now. */
  readonly flushed: number
  /** Where the one message about a stopped upload goes (stderr). */
  readonly warn: (message: string) => void
}

/** A run registered with the link. */
export interface LinkedRun {
  /** The Writer's `onFlushed`: the journal holds whole frames up to `offset`. */
  readonly flushed: (offset: number) => void
  /**
   * The run has ended with its journal at `offset` bytes and `records` records: resolves when the
   * server has acknowledged all of them, or after `timeoutMs`, never later.
   */
  readonly finish: (offset: number, records: number, timeoutMs: number) => Promise<FinishResult>
  /** Forgets the run without finishing it (init failed after registering). */
  readonly forget: () => void
}

/** The link to one service process, shared by every run of the process. */
export interface ServiceLink {
  readonly register: (run: LinkedRunOptions) => LinkedRun
}

interface Entry {
  readonly options: LinkedRunOptions
  flushed: number
  final: number | null
  ackSeq: number
  done: boolean
  stopped: string | null
  sendPending: boolean
  readonly waiters: Set<() => void>
}

/** The compiled service entry: beside this file in dist/, or dist/ of the package when this runs from src/ (tests). */
const defaultServicePath = (): string => {
  const here = fileURLToPath(import.meta.url)
  if (here.endsWith(".js")) return path.join(path.dirname(here), "ServiceEntry.cjs")
  return path.resolve(path.dirname(here), "..", "..", "dist", "runtime", "ServiceEntry.cjs")
}

/** Effect's clock with unreferenced timers: a restart delay never keeps the training process alive. */
const unrefClock: Clock.Clock = (() => {
  const base = Clock.make()
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis(),
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
    currentTimeMillis: base.currentTimeMillis,
    currentTimeNanos: base.currentTimeNanos,
    sleep: (duration: Duration.Duration) =>
      Effect.async<void>((resume) => {
        const timer = setTimeout(() => resume(Effect.void), Duration.toMillis(duration))
        timer.unref()
        return Effect.sync(() => clearTimeout(timer))
      })
  }
})()

const debug = (runDir: string, line: string): void => {
  try {
    fs.appendFileSync(path.join(runDir, "debug.log"), `${new Date().toISOString()} ${line}\n`)
  } catch {
    // debug.log is a convenience
  }
}

/** Builds a link; the service is forked on the first `register`. */
export const make = (options: {
  readonly servicePath?: string
  readonly schedule?: Schedule.Schedule<unknown, unknown>
  readonly env?: NodeJS.ProcessEnv
} = {}): ServiceLink => {
  const servicePath = options.servicePath ?? defaultServicePath()
  const entries = new Map<string, Entry>()
  let child: ChildProcess | null = null
  let started = false
  /** Starts of the service so far: the first and every restart. */
  let starts = 0
  let gaveUp: string | null = null

  const post = (message: Ipc.ToService): void => {
    const current = child
    if (current === null || !current.connected) return
    try {
      current.send(Ipc.encodeToService(message), () => {})
    } catch {
      // It died: the supervisor restarts it and sends everything again.
    }
  }

  const wake = (entry: Entry): void => {
    for (const waiter of [...entry.waiters]) waiter()
  }

  const onMessage = (raw: unknown): void => {
    const decoded = Ipc.decodeToParent(raw)
    if (Either.isLeft(decoded)) return
    const message = decoded.right
    const entry = entries.get(message.runId)
    if (entry === undefined) return
    if (message._tag === "Progress") {
      entry.ackSeq = Math.max(entry.ackSeq, message.ackSeq)
      if (message.done && entry.final !== null) {
        entry.done = true
        entries.delete(message.runId)
      }
    } else {
      entry.stopped = message.message
      entries.delete(message.runId)
      entry.options.warn(message.message)
    }
    wake(entry)
  }

  const start = (): ChildProcess => {
    const forked = fork(servicePath, [], {
      serialization: "advanced",
      detached: true,
      stdio: ["ignore", "ignore", "ignore", "ipc"],
      env: options.env ?? process.env
    })
    forked.unref()
    forked.channel?.unref()
    forked.on("message", onMessage)
    child = forked
    for (const entry of entries.values()) {
      debug(entry.options.runDir, `upload service ${forked.pid} started`)
      post(openMessage(entry))
      if (entry.final !== null) post(new Ipc.Finished({ runId: entry.options.runId, offset: entry.final }))
    }
    return forked
  }

  const openMessage = (entry: Entry) => {
    const { runId, runDir, baseUrl, apiKey } = entry.options
    return new Ipc.OpenRun({ runId, runDir, baseUrl, apiKey, flushed: entry.flushed })
  }

  /** One life of the service: fails with ServiceDied when it ends. */
  const serveOnce = Effect.async<never, ServiceDied>((resume) => {
    let forked: ChildProcess
    starts++
    try {
      forked = start()
    } catch (error) {
      resume(Effect.fail(new ServiceDied({ detail: (error as Error).message })))
      return
    }
    let ended = false
    const died = (detail: string) => {
      if (ended) return
      ended = true
      if (child === forked) child = null
      resume(Effect.fail(new ServiceDied({ detail })))
    }
    forked.once("exit", (code, signal) => died(signal !== null ? `killed by ${signal}` : `exit status ${code}`))
    forked.once("error", (error) => died(error.message))
  })

  const supervise = serveOnce.pipe(
    Effect.tapError((died) =>
      Effect.sync(() => {
        for (const entry of entries.values()) debug(entry.options.runDir, `upload service died (${died.detail}); restarting it`)
      })
    ),
    Effect.retry(options.schedule ?? restartSchedule),
    Effect.catchAll((died) =>
      Effect.sync(() => {
        gaveUp = `the upload service kept dying (last: ${died.detail}) and was restarted ${starts - 1} times, so uploading stopped`
        const dirs = [...entries.values()].map((entry) => entry.options.runDir)
        for (const dir of dirs) debug(dir, gaveUp)
        process.emitWarning(
          `steplog: ${gaveUp}. Runs keep logging to disk; upload them with \`steplog sync ${dirs.length === 0 ? "<run dir>" : dirs.join(" ")}\`.`,
          { type: "SteplogWarning" }
        )
        for (const entry of [...entries.values()]) wake(entry)
      })
    ),
    Effect.withClock(unrefClock)
  )

  const register = (run: LinkedRunOptions): LinkedRun => {
    const entry: Entry = { options: run, flushed: run.flushed, final: null, ackSeq: 0, done: false, stopped: null, sendPending: false, waiters: new Set() }
    entries.set(run.runId, entry)
    if (!started) {
      started = true
      Effect.runFork(supervise)
    } else {
      if (child !== null) debug(run.runDir, `upload service ${child.pid} takes this run`)
      post(openMessage(entry))
    }

    const flushed = (offset: number): void => {
      if (offset <= entry.flushed) return
      entry.flushed = offset
      if (entry.sendPending) return
      // Coalesced: the flushes of one turn of the event loop (durability "sync") make one message.
      entry.sendPending = true
      setImmediate(() => {
        entry.sendPending = false
        post(new Ipc.Flushed({ runId: run.runId, offset: entry.flushed }))
      })
    }

    const finish = (offset: number, records: number, timeoutMs: number): Promise<FinishResult> => {
      entry.final = offset
      entry.flushed = Math.max(entry.flushed, offset)
      post(new Ipc.Finished({ runId: run.runId, offset }))
      return new Promise<FinishResult>((resolve) => {
        let bar: NodeJS.Timeout | undefined
        const notUploaded = (why: string): FinishResult => {
          const pending = Math.max(0, records - entry.ackSeq)
          return { uploaded: false, records, pending, hint: `${why}; the run is on disk in ${run.runDir}: \`steplog sync ${run.runDir}\` uploads what is left` }
        }
        const settle = (result: FinishResult) => {
          clearTimeout(timer)
          if (bar !== undefined) {
            clearInterval(bar)
            process.stderr.write("\r\x1b[2K")
          }
          entry.waiters.delete(check)
          resolve(result)
        }
        const check = () => {
          if (entry.done) settle({ uploaded: true, records })
          else if (entry.stopped !== null) settle(notUploaded(`uploading stopped: ${entry.stopped}`))
          else if (gaveUp !== null) settle(notUploaded(gaveUp))
        }
        const timer = setTimeout(
          () => settle(notUploaded(`the server had not acknowledged every record after ${timeoutMs} ms (finishTimeoutMs); the upload service keeps sending in the background until its upload deadline`)),
          timeoutMs
        )
        if (process.stderr.isTTY) {
          // A progress bar when the upload takes longer than a second.
          const since = Date.now()
          bar = setInterval(() => {
            if (Date.now() - since >= 1000) process.stderr.write(`\rsteplog: uploading ${run.runId} ${progressBar(entry.ackSeq, records)}`)
          }, 200)
          bar.unref()
        }
        entry.waiters.add(check)
        check()
      })
    }

    return { flushed, finish, forget: () => void entries.delete(run.runId) }
  }

  return { register }
}

let shared: ServiceLink | null = null

/** The process's link, made on first use: every online run of the process shares its service. */
export const processLink = (): ServiceLink => (shared ??= make())
