/**
 * The service process (DESIGN.md, "The service process"): forked by ServiceLink.ts as compiled JS
 * (through the CommonJS entry `dist/runtime/ServiceEntry.cjs`, see there why), one per training
 * process, in a process group of its own. It uploads every run its parent opens, one RunUpload
 * (RunUpload.ts) per run, reading the journal up to the offsets the parent reports (`Flushed`);
 * only offsets cross IPC, the data is read from disk.
 *
 * Nothing here polls. A `Flushed` message goes straight to the run's upload (its Tailer wakes); how
 * far the server has acknowledged goes back as `Progress` when it moves, at most once every
 * PROGRESS_INTERVAL (the parent reads it only while `finish()` waits, and each message cost both
 * processes CPU ten times a second); `Finished` says where the journal ends, and once all of it is
 * acknowledged the run is reported `done` at once and dropped.
 * When the parent dies (IPC "disconnect": the kernel closes the channel however the parent dies,
 * SIGKILL included), every run ends at the journal's size on disk, is uploaded to there, a run
 * without an `exit` record is marked crashed (RunUpload does that), and the process exits by
 * itself: when all is uploaded, or at the upload deadline (`STEPLOG_UPLOAD_DEADLINE_MS`, default
 * 10 minutes, counted from the parent's death, on Effect's Clock), leaving the rest for `steplog
 * sync`. Nothing keeps it alive past that.
 *
 * It has no stdio (a service holding its parent's pipes would keep them open); what it has to say
 * goes to the runs' `debug.log`, and what the parent must know goes over IPC.
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
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Auth from "../actors/Auth.js"
import * as Ipc from "../schemas/Ipc.js"
import { UploadStopped } from "../schemas/UploadStopped.js"
import * as RunUpload from "./RunUpload.js"

/** How long the service uploads after its parent died, in ms, unless STEPLOG_UPLOAD_DEADLINE_MS says. */
export const DEFAULT_UPLOAD_DEADLINE_MS = 10 * 60 * 1000

/** `Progress` goes to the parent at most this often, the latest each time. */
const PROGRESS_INTERVAL = Duration.millis(250)

/** Retries of opening a run: the server may be down. */
const openSchedule = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("2 seconds")))

/** One run as the service holds it. */
interface OpenRunState {
  readonly message: Ipc.OpenRun
  /** How far the parent reported the journal flushed; final once it ended (`Finished`, or the file size after the parent died). */
  readonly flushed: SubscriptionRef.SubscriptionRef<RunUpload.Flushed>
  /** Done once the journal's end is known (the same moment `flushed` turns final). */
  readonly ended: Deferred.Deferred<void>
  fiber: Fiber.RuntimeFiber<void> | null
}

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

const send = (message: Ipc.ToParent): void => {
  if (process.send === undefined || !process.connected) return
  try {
    process.send(Ipc.encodeToParent(message), undefined, {}, () => {})
  } catch {
    // The parent is gone: the disconnect handler takes over.
  }
}

/** An upload that could not even start, as the UploadStopped the parent is told. */
const stopOf = (runId: string, failed: RunUpload.RunUploadFailed): UploadStopped =>
  new UploadStopped({
    runId,
    reason: failed.reason === "no-key" || failed.reason === "key-refused" || failed.reason === "rejected" || failed.reason === "deleted"
      ? failed.reason
      : failed.reason === "unreachable" ? "rejected" : "unreadable",
    detail: failed.detail
  })

/** What the entry point held before ServiceMain was loaded. */
export interface EarlyChannel {
  /** Removes the entry's listeners and returns what they caught. */
  readonly handOver: () => { readonly pending: ReadonlyArray<unknown>; readonly disconnected: boolean }
}

/** The service: runs until its parent is gone and every run is uploaded, or the deadline passes. */
export const main = (early: EarlyChannel) => Effect.gen(function* () {
  const runs = new Map<string, OpenRunState>()
  const inbox = yield* Queue.unbounded<Ipc.ToService>()
  const parentGone = yield* Deferred.make<void>()
  let orphaned = false

  const receive = (raw: unknown) => {
    const decoded = Ipc.decodeToService(raw)
    if (Either.isRight(decoded)) inbox.unsafeOffer(decoded.right)
    else for (const state of runs.values()) debug(state.message.runDir, `ignored a message from the training process: ${Ipc.describeUndecodable(raw, decoded.left)}`)
  }
  // One tick: our listeners on, the entry's off, what it held replayed in order.
  process.on("message", receive)
  process.on("disconnect", () => Deferred.unsafeDone(parentGone, Effect.void))
  const held = early.handOver()
  held.pending.forEach(receive)
  if (held.disconnected || !process.connected) Deferred.unsafeDone(parentGone, Effect.void)
  // The IPC channel closes when the parent dies, however it dies (the kernel closes its end):
  // "disconnect" is the one sign needed, and nothing polls for it.

  /** Uploads one run until its final offset is acknowledged; reports progress and a stop to the parent. */
  const uploadRun = (state: OpenRunState): Effect.Effect<void, never, HttpClient.HttpClient> => {
    const { runId, runDir, baseUrl, apiKey } = state.message
    const report = (line: string) => debug(runDir, line)
    return Effect.gen(function* () {
      const notice = (message: string) => {
        report(message)
        send(new Ipc.UploadNotice({ runId, message }))
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
          send(new Ipc.Progress({ runId, ackSeq: acknowledged, records: total, done: false }))
          return Effect.sleep(PROGRESS_INTERVAL)
        })
      )
      yield* Effect.forkScoped(Effect.forever(tellProgress))
      // Until the journal's end is known, the upload follows it (a stop meanwhile is told at once);
      // then it is done once all is acknowledged.
      yield* Effect.raceFirst(Deferred.await(state.ended), upload.stopped)
      const { acknowledged, total } = yield* upload.awaitUploaded
      if (orphaned) {
        const crashed = yield* upload.markCrashedIfAbandoned.pipe(
          Effect.catchAll((error) => Effect.sync(() => report(`marking the run crashed failed: ${error.detail}`)).pipe(Effect.as(false)))
        )
        if (crashed) report("marked the run crashed: no exit record, and its process is gone")
      }
      for (const damage of yield* upload.damage) report(`the journal had damage at byte ${damage.offset} (${damage.bytes} bytes, ${damage.kind}); its records are lost`)
      const kept = yield* upload.kept
      report(kept.records === 0 ? `uploaded: the server holds all ${total} records` : `uploaded all but ${kept.records} records kept on disk (${kept.kinds.join(", ")})`)
      send(new Ipc.Progress({ runId, ackSeq: acknowledged, records: total, done: true, kept: kept.records, keptKinds: kept.kinds }))
    }).pipe(
      Effect.scoped,
      Effect.catchAll((error) =>
        Effect.sync(() => {
          report(error.message)
          send(error._tag === "UploadStopped" ? error : stopOf(runId, error))
        })
      ),
      Effect.ensuring(Effect.sync(() => runs.delete(runId)))
    )
  }

  const handle = (message: Ipc.ToService): Effect.Effect<void, never, HttpClient.HttpClient> =>
    Effect.gen(function* () {
      const state = runs.get(message.runId)
      switch (message._tag) {
        case "OpenRun": {
          if (state !== undefined) return yield* RunUpload.flushedTo(state.flushed, message.flushed)
          const fresh: OpenRunState = {
            message,
            flushed: yield* SubscriptionRef.make({ offset: message.flushed, final: false }),
            ended: yield* Deferred.make<void>(),
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

  const serve = Queue.take(inbox).pipe(Effect.flatMap(handle), Effect.forever)
  const serving = yield* Effect.forkScoped(serve)

  yield* Deferred.await(parentGone)
  orphaned = true
  // Messages already received still count (a Finished sent just before the parent exited).
  yield* Effect.forEach(yield* Queue.takeAll(inbox), handle, { discard: true })
  yield* Fiber.interrupt(serving)
  const pending = [...runs.values()]
  for (const state of pending) {
    const size = fileSize(state.message.runDir)
    debug(state.message.runDir, `the training process is gone; uploading what is on disk (${size} bytes)`)
    yield* endAt(state, size)
  }
  const deadline = deadlineMs(process.env)
  const all = Effect.forEach(pending, (state) => (state.fiber === null ? Effect.void : Fiber.join(state.fiber)), { discard: true })
  const finished = yield* all.pipe(Effect.timeout(Duration.millis(deadline)), Effect.option)
  if (Option.isNone(finished)) {
    for (const state of runs.values()) {
      debug(state.message.runDir, `upload deadline of ${deadline} ms passed; the rest stays on disk for: steplog sync ${state.message.runDir}`)
    }
  }
})

/** Runs the service and exits the process when it is done (called by ServiceEntry.cts). */
export const start = (early: EarlyChannel): void => {
  Effect.runPromise(main(early).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici))).then(
    () => process.exit(0),
    () => process.exit(70)
  )
}
