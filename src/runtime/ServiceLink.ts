/**
 * The training process's side of the upload service (ServiceMain.ts): connects to the machine's
 * service on the first online run of the process (ServiceSocket.ts: one service for every training
 * process with the same settings), starting it when none listens, tells it about each run
 * (`OpenRun`), each flush (`Flushed`, at most one message per flush) and each end (`Finished`), and
 * hears back `Progress` and `UploadStopped`.
 *
 * The service is spawned detached, so it has a process group of its own and a Ctrl-C aimed at the
 * training job does not kill an upload in flight, and unreferenced (child and socket), so it never
 * keeps the training process alive. When the connection closes (the service died), the link
 * connects again, starting a service if none listens, after the delay `CrashLoop.ts` gives, and
 * tells it about every open run again; each run resumes from its `upload.cursor`, and the server
 * ignores records it already has. When the service dies too often (CrashLoop.ts) the link gives
 * up with one clear warning: runs stay on disk for sync.
 *
 * Every wait (restart delays, `finish()`'s timeout, the progress bar's delay) is an Effect sleep on
 * the Clock of the runtime the link was made in: the real one for the promise facade, a TestClock
 * in tests; only the few milliseconds a starting service takes to listen are waited in real time.
 * Each run's upload state is plain state that the service's messages update, and a Deferred that
 * `finish()` awaits, completed once the upload is done or has stopped; nothing polls. (A
 * SubscriptionRef's stream of changes cost every training process milliseconds of cold code in
 * `finish()`.)
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Ipc from "../schemas/Ipc.js"
import { stopMessage } from "../schemas/StopReason.js"
import * as CrashLoop from "./CrashLoop.js"
import { progressBar } from "./ProgressBar.js"
import type { UploadOutcome } from "./Run.js"
import * as ServiceSocket from "./ServiceSocket.js"
import * as ServiceStartLock from "./ServiceStartLock.js"

/** The connection to the service closed, or no service could be started (the link tries again unless it gives up). */
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
   * The run has ended with its journal at `offset` bytes and `records` records: succeeds when the
   * server has acknowledged all of them, or after `timeoutMs`, never later.
   */
  readonly finish: (offset: number, records: number, timeoutMs: number) => Effect.Effect<UploadOutcome>
  /** Forgets the run without finishing it (init failed after registering). */
  readonly forget: () => void
}

/** The link to one service process, shared by every run of the process. */
export interface ServiceLink {
  readonly register: (run: LinkedRunOptions) => LinkedRun
}

/** How a run's upload stands, as the service last told. */
interface UploadState {
  readonly ackSeq: number
  /** Every record of the finished run is acknowledged. */
  readonly done: boolean
  /** Why the upload stopped for good, or why the link gave up (a clause for `finish()`'s hint); null while it goes on. */
  readonly stopped: string | null
  /** Whether `steplog sync` could upload what is left later (not for a run deleted on the server). */
  readonly syncable: boolean
  /** Once done: the records kept on disk because the server does not store their kinds; null if none. */
  readonly kept: { readonly records: number; readonly kinds: ReadonlyArray<string> } | null
}

interface Entry {
  readonly options: LinkedRunOptions
  flushed: number
  final: number | null
  sendPending: boolean
  state: UploadState
  /** Completed with `state` once the upload is done or has stopped: what `finish()` waits for. */
  readonly settled: Deferred.Deferred<UploadState>
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

/** How long a service being started may take to listen, and how often a link tries meanwhile. */
const LISTEN_TIMEOUT_MS = 15_000
const CONNECT_RETRY_MS = 10

/** How long `finish()` waits before it draws a progress bar (on a terminal only). */
const BAR_DELAY = Duration.seconds(1)
const BAR_INTERVAL = Duration.millis(200)

/**
 * Builds a link in the current runtime, whose Clock times every wait; it connects to the service
 * (starting one if none listens) on the first `register`. `restartClock` times the restart delays
 * alone (the process's link passes one with unreferenced timers, so that a pending restart never
 * holds the training process open).
 */
export const make = (options: {
  readonly servicePath?: string
  readonly env?: NodeJS.ProcessEnv
  readonly restartClock?: Clock.Clock
  /** Where a terminal's progress bar goes; default process.stderr. */
  readonly terminal?: NodeJS.WriteStream
} = {}): Effect.Effect<ServiceLink> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const servicePath = options.servicePath ?? defaultServicePath()
    const terminal = options.terminal ?? process.stderr
    const run = Runtime.runSync(runtime)
    const entries = new Map<string, Entry>()
    const env = options.env ?? process.env
    const socketFile = ServiceSocket.socketPath(servicePath, env)
    /** Where messages to the service go while connected, and the service's pid. */
    let toService: NodeJS.WritableStream | null = null
    let servicePid: number | null = null
    let started = false
    /** Why the link gave up on the service, once it has. */
    let gaveUp: string | null = null

    const post = (message: Ipc.ToServiceLine): void => {
      if (toService !== null) ServiceSocket.sendLine(toService, message)
    }

    const update = (entry: Entry, f: (state: UploadState) => UploadState): void => {
      const state = (entry.state = f(entry.state))
      if (state.done || state.stopped !== null) Deferred.unsafeDone(entry.settled, Exit.succeed(state))
    }

    const onMessage = (raw: unknown): void => {
      const message = Ipc.decodeFromService(raw)
      if (message === null) {
        // A message of another steplog version: the schemas word why, loaded for it alone.
        const runDirs = [...entries.values()].map((entry) => entry.options.runDir)
        // Wording it is for debug.log alone: whatever happens there must not reach the training.
        void import("../schemas/IpcSchema.js")
          .then(({ decodeFromService, describeUndecodable }) => {
            const decoded = decodeFromService(raw)
            if (Either.isRight(decoded)) return
            for (const runDir of runDirs) debug(runDir, `ignored a message from the upload service: ${describeUndecodable(raw, decoded.left)}`)
          })
          .catch(() => {})
        return
      }
      if (message._tag === "Welcome") {
        servicePid = message.pid
        for (const entry of entries.values()) debug(entry.options.runDir, `upload service ${message.pid} takes this run`)
        return
      }
      const entry = entries.get(message.runId)
      if (entry === undefined) return
      if (message._tag === "Progress") {
        const done = message.done && entry.final !== null
        if (done) entries.delete(message.runId)
        const keptRecords = message.kept ?? 0
        const kept = done && keptRecords > 0 ? { records: keptRecords, kinds: message.keptKinds ?? [] } : null
        update(entry, (state) => ({ ...state, ackSeq: Math.max(state.ackSeq, message.ackSeq), done: state.done || done, kept: kept ?? state.kept }))
      } else if (message._tag === "UploadNotice") {
        entry.options.warn(message.message)
      } else {
        entries.delete(message.runId)
        entry.options.warn(stopMessage(message))
        // A deleted run is refused by the server for good: no sync would take it either.
        const stopped = message.reason === "deleted" ? `the run was deleted on the server (${message.detail})` : `uploading stopped: ${message.detail}`
        update(entry, (state) => ({ ...state, stopped, syncable: message.reason !== "deleted" }))
      }
    }

    const openMessage = (entry: Entry): Ipc.ToServiceLine => {
      const { runId, runDir, baseUrl, apiKey } = entry.options
      return { _tag: "OpenRun", runId, runDir, baseUrl, apiKey, flushed: entry.flushed }
    }

    /** The connection is up (to the socket, or to the pipes of a service started here): tell the service about every open run. */
    const attach = (connection: ServiceSocket.Connection): void => {
      ServiceSocket.onLines(connection.input, onMessage)
      connection.output.on("error", () => {}) // the connection's end is reported on its own
      toService = connection.output
      for (const entry of entries.values()) {
        post(openMessage(entry))
        if (entry.final !== null) post({ _tag: "Finished", runId: entry.options.runId, offset: entry.final })
      }
    }

    /**
     * Starts the service, talking to it over its stdin and stdout: what is written there waits in
     * the pipe until the service reads it, so a training process that dies right after still has
     * its runs uploaded, and the pipe's end tells the service it is gone.
     */
    const spawnService = (lost: (detail: string) => void): void => {
      const spawned = spawn(process.execPath, [...process.execArgv, servicePath, socketFile], { detached: true, stdio: ["pipe", "pipe", "ignore"], env })
      spawned.unref()
      const input = spawned.stdout as net.Socket
      const output = spawned.stdin as net.Socket
      input.unref()
      output.unref()
      spawned.once("exit", (code, signal) => lost(signal !== null ? `killed by ${signal}` : `exit status ${code}`))
      spawned.once("error", (error) => lost(error.message))
      servicePid = spawned.pid ?? null
      for (const entry of entries.values()) debug(entry.options.runDir, `upload service ${spawned.pid} started`)
      attach({ input, output })
    }

    /**
     * One connection to the service: to the one listening on the socket, or, when none does, to a
     * service started here (ServiceStartLock.ts: one process starts it, the others wait for it
     * to listen, trying every CONNECT_RETRY_MS in real time, up to LISTEN_TIMEOUT_MS). Fails with
     * ServiceDied when the connection ends or none could be made.
     */
    const serveOnce = Effect.async<never, ServiceDied>((resume) => {
      let ended = false
      const deadline = Date.now() + LISTEN_TIMEOUT_MS
      const died = (detail: string) => {
        if (ended) return
        ended = true
        toService = null
        servicePid = null
        resume(Effect.fail(new ServiceDied({ detail })))
      }
      const tryConnect = () => {
        const connecting = net.createConnection(socketFile)
        connecting.once("connect", () => {
          connecting.removeAllListeners("error")
          connecting.unref()
          connecting.once("close", () => died("its connection closed"))
          attach({ input: connecting, output: connecting })
        })
        connecting.once("error", (error: NodeJS.ErrnoException) => {
          if (ServiceStartLock.take(socketFile, LISTEN_TIMEOUT_MS)) {
            // The service started here is gone (or never started): the lock goes too, if still this process's.
            const lost = (detail: string) => {
              ServiceStartLock.release(socketFile, process.pid)
              died(detail)
            }
            try {
              return spawnService(lost)
            } catch (spawnError) {
              return lost((spawnError as Error).message)
            }
          }
          if (Date.now() > deadline) return died(`no upload service listened on ${socketFile} within ${LISTEN_TIMEOUT_MS} ms (${error.code ?? error.message})`)
          setTimeout(tryConnect, CONNECT_RETRY_MS).unref()
        })
      }
      tryConnect()
    })

    const giveUp = (died: ServiceDied, restarts: number) =>
      Effect.sync(() => {
        gaveUp = `the upload service kept dying (last: ${died.detail}) and was restarted ${restarts} times, so uploading stopped`
        const dirs = [...entries.values()].map((entry) => entry.options.runDir)
        for (const dir of dirs) debug(dir, gaveUp)
        process.emitWarning(
          `steplog: ${gaveUp}. Runs keep logging to disk; upload them with \`steplog sync ${dirs.length === 0 ? "<run dir>" : dirs.join(" ")}\`.`,
          { type: "SteplogWarning" }
        )
        for (const entry of [...entries.values()]) update(entry, (state) => ({ ...state, stopped: gaveUp }))
      })

    /** Starts the service and restarts it when it dies, by CrashLoop's delays, until it gives up. */
    const supervise = Effect.gen(function* () {
      let deaths: ReadonlyArray<number> = []
      let restarts = 0
      for (;;) {
        const died = yield* Effect.flip(serveOnce)
        const next = CrashLoop.afterDeath(deaths, yield* Clock.currentTimeMillis, yield* CrashLoop.jitter)
        deaths = next.deaths
        if (next.restartIn === null) return yield* giveUp(died, restarts)
        for (const entry of entries.values()) {
          debug(entry.options.runDir, `upload service died (${died.detail}); restarting it in ${Duration.format(next.restartIn)}`)
        }
        yield* Effect.sleep(next.restartIn)
        restarts++
      }
    })
    const supervised = options.restartClock === undefined ? supervise : Effect.withClock(supervise, options.restartClock)

    /** What `finish()` answers when not everything was acknowledged. */
    const notUploaded = (entry: Entry, records: number, ackSeq: number, why: string, syncable = true): UploadOutcome => ({
      uploaded: false,
      pending: Math.max(0, records - ackSeq),
      hint: `${why}; the run is on disk in ${entry.options.runDir}` + (syncable ? `: \`steplog sync ${entry.options.runDir}\` uploads what is left` : "")
    })

    /**
     * How far the server has acknowledged the run: the latest `Progress`, or the upload cursor on
     * disk when that is further (the service tells progress only once the run has ended, and
     * writes the cursor as the upload goes and when it stops). UploadCursor.ts, which loads
     * effect/Schema, is imported only when a run ends not fully uploaded (Ipc.ts says why).
     */
    const acknowledged = (entry: Entry, told: number) =>
      Effect.promise(() => import("../journal/UploadCursor.js")).pipe(
        Effect.flatMap((UploadCursor) => UploadCursor.read(UploadCursor.cursorPath(entry.options.runDir), entry.options.baseUrl)),
        Effect.map((cursor) => Math.max(told, cursor.ackSeq))
      )

    /** Draws the progress bar on a terminal, from a second into the wait until it is interrupted, then wipes it. */
    const drawProgress = (entry: Entry, records: number) =>
      Effect.gen(function* () {
        yield* Effect.sleep(BAR_DELAY)
        yield* Effect.addFinalizer(() => Effect.sync(() => terminal.write("\r\x1b[2K")))
        const draw = Effect.sync(() => terminal.write(`\rsteplog: uploading ${entry.options.runId} ${progressBar(entry.state.ackSeq, records)}`))
        return yield* Effect.repeat(draw, Schedule.spaced(BAR_INTERVAL))
      }).pipe(Effect.scoped)

    const register = (linked: LinkedRunOptions): LinkedRun => {
      const entry: Entry = {
        options: linked,
        flushed: linked.flushed,
        final: null,
        sendPending: false,
        state: { ackSeq: 0, done: false, stopped: null, syncable: true, kept: null },
        settled: run(Deferred.make<UploadState>())
      }
      update(entry, (state) => ({ ...state, stopped: gaveUp }))
      entries.set(linked.runId, entry)
      if (!started) {
        started = true
        Runtime.runFork(runtime)(supervised)
      } else {
        if (servicePid !== null) debug(linked.runDir, `upload service ${servicePid} takes this run`)
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
          post({ _tag: "Flushed", runId: linked.runId, offset: entry.flushed })
        })
      }

      const finish = (offset: number, records: number, timeoutMs: number): Effect.Effect<UploadOutcome> =>
        Effect.gen(function* () {
          entry.final = offset
          entry.flushed = Math.max(entry.flushed, offset)
          post({ _tag: "Finished", runId: linked.runId, offset })
          const bar = terminal.isTTY ? yield* Effect.fork(drawProgress(entry, records)) : null
          const ended = yield* Deferred.await(entry.settled).pipe(Effect.timeoutOption(Duration.millis(timeoutMs)))
          if (bar !== null) yield* Fiber.interrupt(bar)
          if (Option.isSome(ended)) {
            const state = ended.value
            if (state.done && state.kept !== null) {
              const kinds = state.kept.kinds.map((kind) => `"${kind}"`).join(", ")
              return notUploaded(entry, state.kept.records, 0, `${state.kept.records} records were kept back: the server does not store ${kinds} records`)
            }
            return state.done ? { uploaded: true } : notUploaded(entry, records, yield* acknowledged(entry, state.ackSeq), state.stopped!, state.syncable)
          }
          const { ackSeq } = entry.state
          return notUploaded(
            entry,
            records,
            yield* acknowledged(entry, ackSeq),
            `the server had not acknowledged every record after ${timeoutMs} ms (finishTimeoutMs); the upload service keeps sending in the background until its upload deadline`
          )
        })

      return { flushed, finish, forget: () => void entries.delete(linked.runId) }
    }

    return { register }
  })

let shared: ServiceLink | null = null

/** The process's link, made on first use: every online run of the process shares its connection. */
export const processLink = (): ServiceLink => (shared ??= Effect.runSync(make({ restartClock: unrefClock })))
