/**
 * The upload service (DESIGN.md, "The service process"): spawned by ServiceLink.ts as compiled JS
 * (through the CommonJS entry `dist/runtime/ServiceEntry.cjs`), in a process group of its own, and
 * shared by every training process on the machine with the same settings (ServiceSocket.ts): each
 * connects to its socket. It uploads every run they open, one RunUpload (RunUpload.ts) per run,
 * reading the journal up to the offsets its training process reports (`Flushed`); only offsets
 * cross the socket, the data is read from disk.
 *
 * Nothing here polls. A `Flushed` message goes straight to the run's upload (its Tailer wakes);
 * `Finished` says where the journal ends, and from then on how far the server has acknowledged
 * goes back as `Progress` when it moves, at most once every PROGRESS_INTERVAL (the training
 * process reads it only while `finish()` waits, and the upload cursor for a run whose upload
 * stopped: told while it logs, each message woke both processes four times a second a run, ~0.2 ms
 * of CPU a wake-up on a 2-core VM); once all of it is acknowledged the run is reported `done` at
 * once and dropped.
 * When a training process dies (its connection closes: the kernel closes the socket however the
 * process dies, SIGKILL included), each of its runs ends at the journal's size on disk, is uploaded
 * to there, a run without an `exit` record is marked crashed (RunUpload does that), and what is
 * not uploaded by the upload deadline (`STEPLOG_UPLOAD_DEADLINE_MS`, default 10 minutes, counted
 * from the process's death, on Effect's Clock) is left for `steplog sync`. The service exits by
 * itself once no training process is connected and no run is left; nothing keeps it alive past that.
 *
 * Its stdin and stdout are pipes to the process that started it, never a terminal's or a training
 * job's own (a service holding those would keep them open); what it has to say goes to the runs'
 * `debug.log`, and what a training process must know goes over its connection.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as Auth from "../actors/Auth.js"
import * as Ipc from "../schemas/IpcSchema.js"
import { UploadStopped } from "../schemas/UploadStopped.js"
import * as RunUpload from "./RunUpload.js"
import * as ServiceSocket from "./ServiceSocket.js"
import * as ServiceStartLock from "./ServiceStartLock.js"

/** How long the service uploads a run after its training process died, in ms, unless STEPLOG_UPLOAD_DEADLINE_MS says. */
export const DEFAULT_UPLOAD_DEADLINE_MS = 10 * 60 * 1000

/** `Progress` goes to a run's training process at most this often, the latest each time. */
const PROGRESS_INTERVAL = Duration.millis(250)

/** Retries of opening a run: the server may be down. */
const openSchedule = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("2 seconds")))

/** A training process connected to the service. */
interface Client {
  readonly output: NodeJS.WritableStream
  /** The ids of the runs it opened. */
  readonly runs: Set<string>
}

/** One run as the service holds it. */
interface OpenRunState {
  readonly message: Ipc.OpenRun
  /** The training process logging it: where its messages go. */
  client: Client
  /** How far the training process reported the journal flushed; final once it ended (`Finished`, or the file size after the process died). */
  readonly flushed: SubscriptionRef.SubscriptionRef<RunUpload.Flushed>
  /** Done once the journal's end is known (the same moment `flushed` turns final). */
  readonly ended: Deferred.Deferred<void>
  /** Its training process is gone: once uploaded, a run without an `exit` record is marked crashed. */
  orphaned: boolean
  fiber: Fiber.RuntimeFiber<void> | null
}

/** What the service hears from a training process: a message, or (null) that it is gone. */
interface Inbound {
  readonly client: Client
  readonly message: Ipc.ToService | null
}

/** How long the service stays with no training process connected and nothing to upload: a sweep's next process finds it. */
const IDLE_GRACE = Duration.seconds(2)

const deadlineMs = (env: NodeJS.ProcessEnv): number => {
  const value = Number(env["STEPLOG_UPLOAD_DEADLINE_MS"])
  return Number.isFinite(value) && value >= 0 ? value : DEFAULT_UPLOAD_DEADLINE_MS
}

/** Appends to the run's debug.log; never fails (the log is a convenience). */
const debug = (runDir: string, line: string): void => {
  try {
    fs.appendFileSync(path.join(runDir, "debug.log"), `${new Date().toISOString()} upload service ${process.pid}: ${line}\n`)
  } catch {
    // nothing to do: there is nowhere else to write
  }
}

/** The run's journal ends at `offset`: its upload reads to there, and the run is done once all of it is acknowledged. */
const endAt = (state: OpenRunState, offset: number): Effect.Effect<void> =>
  RunUpload.flushedTo(state.flushed, offset, true).pipe(Effect.zipRight(Deferred.done(state.ended, Exit.void)))

const fileSize = (runDir: string): number => {
  try {
    return fs.statSync(path.join(runDir, "journal.slog")).size
  } catch {
    return 0
  }
}

/** Tells the run's training process; a closed connection drops it (the process is gone). */
const send = (state: OpenRunState, message: Ipc.FromService): void => ServiceSocket.sendLine(state.client.output, Ipc.encodeFromService(message))

/** An upload that could not even start, as the UploadStopped the training process is told. */
const stopOf = (runId: string, failed: RunUpload.RunUploadFailed): UploadStopped =>
  new UploadStopped({
    runId,
    reason: failed.reason === "no-key" || failed.reason === "key-refused" || failed.reason === "rejected" || failed.reason === "deleted"
      ? failed.reason
      : failed.reason === "unreachable" ? "rejected" : "unreadable",
    detail: failed.detail
  })

/**
 * Listens on the socket, taking over a stale one (left by a service that was killed), when it can:
 * not when another service listens there already (started at the same moment), or the folder
 * refuses a socket. The service then serves the process that started it alone.
 */
const listen = (listener: net.Server, socketFile: string): Effect.Effect<void> =>
  Effect.async((resume) => {
    const attempt = (removedStale: boolean) => {
      const listening = () => {
        listener.off("error", failed)
        resume(Effect.void)
      }
      const failed = (error: NodeJS.ErrnoException) => {
        listener.off("listening", listening)
        if (error.code !== "EADDRINUSE" || removedStale) return resume(Effect.void)
        const probe = net.createConnection(socketFile)
        probe.once("connect", () => {
          probe.destroy()
          resume(Effect.void)
        })
        probe.once("error", (probeError: NodeJS.ErrnoException) => {
          // Nobody listens there (a killed service left it): taken over. Any other answer (a
          // full backlog) may be a live service's.
          if (probeError.code !== "ECONNREFUSED" && probeError.code !== "ENOENT") return resume(Effect.void)
          try {
            fs.unlinkSync(socketFile)
          } catch {
            // another service took it over first: listening tells
          }
          attempt(true)
        })
      }
      listener.once("listening", listening)
      listener.once("error", failed)
      listener.listen(socketFile)
    }
    attempt(false)
  })

/**
 * The service on `socketFile`, serving the process that started it over its stdin and stdout and
 * every other over the socket; runs while one is connected or a run is left to upload.
 */
export const main = (socketFile: string) => Effect.gen(function* () {
  const runs = new Map<string, OpenRunState>()
  const clients = new Set<Client>()
  const inbox = yield* Queue.unbounded<Inbound>()
  const done = yield* Deferred.make<void>()
  const deadline = deadlineMs(process.env)
  const listener = net.createServer()
  const runtime = yield* Effect.runtime<never>()
  let ending = false

  /**
   * Once nothing is connected and nothing is left to upload for IDLE_GRACE: stop taking
   * connections, in the same tick as the last look, so that none is taken and then dropped (a
   * training process finding no one listening starts a new service), and end.
   */
  const endWhenIdle = (): void => {
    if (clients.size > 0 || runs.size > 0) return
    Runtime.runFork(runtime)(Effect.sleep(IDLE_GRACE).pipe(Effect.zipRight(Effect.sync(() => {
      if (clients.size > 0 || runs.size > 0 || ending) return
      ending = true
      if (listener.listening) listener.close()
      Deferred.unsafeDone(done, Exit.void)
    }))))
  }

  /** Takes messages from a training process until its connection ends. */
  const connect = (connection: ServiceSocket.Connection, ends: ReadonlyArray<string>): Client => {
    const client: Client = { output: connection.output, runs: new Set() }
    clients.add(client)
    let gone = false
    const leave = () => {
      if (gone) return
      gone = true
      inbox.unsafeOffer({ client, message: null })
    }
    for (const event of ends) connection.input.once(event, leave)
    connection.input.on("error", () => {}) // its end follows, and says it
    connection.output.on("error", () => {})
    ServiceSocket.onLines(connection.input, (raw) => {
      const decoded = Ipc.decodeToService(raw)
      if (Either.isRight(decoded)) inbox.unsafeOffer({ client, message: decoded.right })
      else {
        const why = `ignored a message from a training process: ${Ipc.describeUndecodable(raw, decoded.left)}`
        for (const runId of client.runs) {
          const state = runs.get(runId)
          if (state !== undefined) debug(state.message.runDir, why)
        }
      }
    })
    return client
  }

  // The process that started this service wrote its runs to the pipe already: they wait there.
  connect({ input: process.stdin, output: process.stdout }, ["end", "close"])
  listener.on("connection", (socket: net.Socket) => {
    const client = connect({ input: socket, output: socket }, ["close"])
    ServiceSocket.sendLine(client.output, Ipc.encodeFromService(new Ipc.Welcome({ pid: process.pid })))
  })
  // A connection it could not take (too many open files) fails that connection, not the service.
  listener.on("error", () => {})
  yield* listen(listener, socketFile)
  ServiceStartLock.release(socketFile)
  yield* Effect.addFinalizer(() => Effect.sync(() => listener.listening && listener.close()))

  /** Uploads one run until its final offset is acknowledged; reports progress and a stop to its training process. */
  const uploadRun = (state: OpenRunState): Effect.Effect<void, never, HttpClient.HttpClient> => {
    const { runId, runDir, baseUrl, apiKey } = state.message
    const report = (line: string) => debug(runDir, line)
    return Effect.gen(function* () {
      const notice = (message: string) => {
        report(message)
        send(state, new Ipc.UploadNotice({ runId, message }))
      }
      const upload = yield* RunUpload.open({ dir: runDir, baseUrl, flushed: state.flushed, report, notice }).pipe(
        Effect.tapError((error) => Effect.sync(() => report(`opening the upload: ${error.detail}`))),
        Effect.retry({ schedule: openSchedule, while: (error) => error.reason === "unreachable" }),
        Effect.provide(Auth.layer({ baseUrl, apiKey: apiKey ?? undefined }))
      )
      let told = upload.startAckSeq
      const tellProgress = upload.progress.pipe(
        Stream.filter(({ acknowledged }) => acknowledged !== told),
        Stream.runHead,
        Effect.map(Option.getOrThrow),
        Effect.flatMap(({ acknowledged, total }) => {
          told = acknowledged
          send(state, new Ipc.Progress({ runId, ackSeq: acknowledged, records: total, done: false }))
          return Effect.sleep(PROGRESS_INTERVAL)
        })
      )
      yield* Effect.forkScoped(Effect.zipRight(Deferred.await(state.ended), Effect.forever(tellProgress)))
      // Until the journal's end is known, the upload follows it (a stop meanwhile is told at once);
      // then it is done once all is acknowledged.
      yield* Effect.raceFirst(Deferred.await(state.ended), upload.stopped)
      const { acknowledged, total } = yield* upload.awaitUploaded
      if (state.orphaned) {
        const crashed = yield* upload.markCrashedIfAbandoned.pipe(
          Effect.catchAll((error) => Effect.sync(() => report(`marking the run crashed failed: ${error.detail}`)).pipe(Effect.as(false)))
        )
        if (crashed) report("marked the run crashed: no exit record, and its process is gone")
      }
      for (const damage of yield* upload.damage) report(`the journal had damage at byte ${damage.offset} (${damage.bytes} bytes, ${damage.kind}); its records are lost`)
      const kept = yield* upload.kept
      report(kept.records === 0 ? `uploaded: the server holds all ${total} records` : `uploaded all but ${kept.records} records kept on disk (${kept.kinds.join(", ")})`)
      send(state, new Ipc.Progress({ runId, ackSeq: acknowledged, records: total, done: true, kept: kept.records, keptKinds: kept.kinds }))
    }).pipe(
      Effect.scoped,
      Effect.catchAll((error) =>
        Effect.sync(() => {
          report(error.message)
          send(state, error._tag === "UploadStopped" ? error : stopOf(runId, error))
        })
      ),
      Effect.ensuring(Effect.sync(() => {
        if (runs.get(runId) === state) runs.delete(runId)
        endWhenIdle()
      }))
    )
  }

  /** After its training process died, a run has until the upload deadline; the rest stays on disk. */
  const uploadUntilDeadline = (state: OpenRunState, fiber: Fiber.RuntimeFiber<void>) =>
    Fiber.join(fiber).pipe(
      Effect.timeout(Duration.millis(deadline)),
      Effect.catchTag("TimeoutException", () => {
        debug(state.message.runDir, `upload deadline of ${deadline} ms passed; the rest stays on disk for: steplog sync ${state.message.runDir}`)
        return Fiber.interrupt(fiber)
      })
    )

  const clientGone = (client: Client): Effect.Effect<void> =>
    Effect.gen(function* () {
      clients.delete(client)
      for (const runId of client.runs) {
        const state = runs.get(runId)
        if (state === undefined || state.client !== client || state.fiber === null) continue
        state.orphaned = true
        const size = fileSize(state.message.runDir)
        debug(state.message.runDir, `the training process is gone; uploading what is on disk (${size} bytes)`)
        yield* endAt(state, size)
        yield* Effect.forkDaemon(uploadUntilDeadline(state, state.fiber))
      }
      endWhenIdle()
    })

  const handle = ({ client, message }: Inbound): Effect.Effect<void, never, HttpClient.HttpClient> =>
    Effect.gen(function* () {
      if (message === null) return yield* clientGone(client)
      const state = runs.get(message.runId)
      switch (message._tag) {
        case "OpenRun": {
          client.runs.add(message.runId)
          if (state !== undefined && state.client === client) return yield* RunUpload.flushedTo(state.flushed, message.flushed)
          if (state !== undefined) {
            // Another process opened the run: resumed after its process died (its upload ends at
            // the old end of the journal). That upload stops (its cursor saved) and a new one follows the run.
            debug(message.runDir, "the run was opened again by another process; its upload starts over from the cursor")
            runs.delete(message.runId)
            if (state.fiber !== null) yield* Fiber.interrupt(state.fiber)
          }
          const fresh: OpenRunState = {
            message,
            client,
            flushed: yield* SubscriptionRef.make({ offset: message.flushed, final: false }),
            ended: yield* Deferred.make<void>(),
            orphaned: false,
            fiber: null
          }
          runs.set(message.runId, fresh)
          debug(message.runDir, `uploading run ${message.runId} to ${message.baseUrl}`)
          fresh.fiber = yield* Effect.forkDaemon(uploadRun(fresh))
          return
        }
        case "Flushed":
          if (state !== undefined) yield* RunUpload.flushedTo(state.flushed, message.offset)
          return
        case "Finished":
          if (state !== undefined) yield* endAt(state, message.offset)
          return
      }
    })

  yield* Effect.forkScoped(Queue.take(inbox).pipe(Effect.flatMap(handle), Effect.forever))
  yield* Deferred.await(done)
})

/** Runs the service on `socketFile` and exits the process when it is done (called by ServiceEntry.cts). */
export const start = (socketFile: string): void => {
  Effect.runPromise(main(socketFile).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici))).then(
    () => process.exit(0),
    () => process.exit(70)
  )
}
