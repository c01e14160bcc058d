/**
 * Uploading one run directory to a server: a Tailer reads the journal, each frame once, and hands
 * its records to an Uploader through a bounded queue, resuming from `upload.cursor` (the seq the
 * server acknowledged, for this server); the run's metadata (its latest `run` record) is PUT once
 * the Tailer has read it. Two callers: `steplog sync`, which says the journal is whole
 * (`flushed` with `final`) and waits until everything is acknowledged; and the service process,
 * which passes on the offsets the training process reports as it flushes, and `final` once the run
 * has ended or its process is gone.
 *
 * Nothing polls. `progress` is a stream of how far the upload is: one SubscriptionRef, recomputed
 * by one fiber when the Tailer has read, the Uploader acknowledged or the flushed offset moved
 * (each says so through a latch: no stream per source on the path a service takes ten times a
 * second per run); `awaitUploaded` waits on it. "Fully
 * uploaded" (as of the offset flushed so far) means: every whole frame before it has been read,
 * and every seq up to the last one read is acknowledged (held by the server, or lost to damage in
 * the journal, which `damage` lists). A run whose journal has no `exit` record at the end and whose
 * writer is gone is marked `crashed` (a second PUT) once it is fully uploaded: `markCrashedIfAbandoned`.
 *
 * Everything it starts lives in the caller's Scope; closing it stops the actors and writes the
 * cursor at the last acknowledgement, so closing early loses nothing but time.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as path from "node:path"
import * as ApiClient from "../actors/ApiClient.js"
import { Auth, loginHint } from "../actors/Auth.js"
import { supervise } from "../actors/Supervisor.js"
import * as Tailer from "../actors/Tailer.js"
import * as Uploader from "../actors/Uploader.js"
import {
  classifyFailure,
  defaultRetry,
  requestTimeout,
  UploadFailed,
  type RetryOptions,
  type UploadFailure
} from "../actors/UploadPolicy.js"
import { checkFile, type Damage } from "../journal/JournalReader.js"
import * as UploadCursor from "../journal/UploadCursor.js"
import { RunId, type RunRecord } from "../schemas/Record.js"
import type { UploadStopped } from "../schemas/UploadStopped.js"
import { ProjectName, type RunMetadata } from "../schemas/Wire.js"
import * as RunDir from "./RunDir.js"

/** Batches between the Tailer and the Uploader. */
// Four batches of at most 1 MiB each: enough for the Tailer to read the next batches while POSTs
// are in flight, small enough that a slow server holds at most ~7 MiB of records in memory (these
// four, and in the Uploader two POSTs in flight and one packed); past that the Tailer waits and
// the records wait in the journal.
export const QUEUE_CAPACITY = 4

/** Uploading a run could not start, or its metadata could not be sent. */
export class RunUploadFailed extends Data.TaggedError("RunUploadFailed")<{
  readonly dir: string
  readonly reason: "unreadable" | "no-run-record" | "no-key" | "unreachable" | "key-refused" | "rejected" | "deleted"
  readonly detail: string
  /** The delay a busy server asked for with `Retry-After` (reason "unreachable"). */
  readonly retryAfter?: Duration.Duration
}> {
  override get message(): string {
    return `steplog: cannot upload the run in ${this.dir}: ${this.detail}`
  }
}

/** How far a journal is flushed (bytes of whole frames), and whether it ends there. */
export interface Flushed {
  readonly offset: number
  readonly final: boolean
}

/** A journal that grows by `offset`, then ends (`final`): each update only ever moves it on. */
export const flushedTo = (flushed: SubscriptionRef.SubscriptionRef<Flushed>, offset: number, final = false): Effect.Effect<void> =>
  SubscriptionRef.update(flushed, (known) => ({ offset: Math.max(known.offset, offset), final: known.final || final }))

/** How far an upload is, in records (seq units). */
export interface Progress {
  /** Every seq below it is held by the server (or lost to damage in the journal). */
  readonly acknowledged: number
  /** Records in the journal as read so far (the highest seq read, plus one). */
  readonly total: number
  /** Whether every record flushed so far is acknowledged (and, once the journal is whole, every record). */
  readonly uploaded: boolean
}

/** One run directory being uploaded. */
export interface RunUpload {
  readonly dir: string
  readonly project: string
  readonly runId: string
  readonly name: string
  /** The server's ackSeq when this upload started (from the cursor): what earlier uploads sent. */
  readonly startAckSeq: number
  /** How far the upload is now, then each time that changes. */
  readonly progress: Stream.Stream<Progress>
  /** Waits until every record flushed so far is acknowledged; fails if the upload stops. */
  readonly awaitUploaded: Effect.Effect<Progress, UploadStopped>
  /** Fails when the upload stops for good (a refusal, a run deleted on the server); never succeeds. */
  readonly stopped: Effect.Effect<never, UploadStopped>
  /** The damage met in the journal so far, in the order met (its records are lost). */
  readonly damage: Effect.Effect<ReadonlyArray<Damage>>
  /** Records kept back so far: their kind is one the server does not store (Uploader.ts). */
  readonly kept: Effect.Effect<Uploader.Kept>
  /**
   * For a run without an `exit` record whose writer is gone: PUTs its metadata with
   * `crashed: true`. Call it once the run is fully uploaded. True when it marked the run.
   */
  readonly markCrashedIfAbandoned: Effect.Effect<boolean, RunUploadFailed>
}

/** What `open` needs. */
export interface RunUploadOptions {
  /** The run directory. */
  readonly dir: string
  readonly baseUrl: string
  /**
   * How far the journal is flushed, as the caller learns it: the training process's reports, or
   * (`steplog sync`) the file's size, final. The upload reads up to it, and follows it.
   */
  readonly flushed: SubscriptionRef.SubscriptionRef<Flushed>
  readonly retry?: RetryOptions
  /** Where warnings go (damage skipped, cursor not written, actor restarts). */
  readonly report?: (message: string) => void
  /** Where the warning that a kind of record is kept back goes (for a person to read); default `report`. */
  readonly notice?: (message: string) => void
}

/** Retries of the metadata PUT: a few, quickly (a person may wait), a server's `Retry-After` winning. */
const metadataRetry: Schedule.Schedule<RunUploadFailed, RunUploadFailed> = Schedule.exponential("200 millis").pipe(
  Schedule.intersect(Schedule.recurs(3)),
  Schedule.passthrough<[Duration.Duration, number], RunUploadFailed, never>,
  Schedule.modifyDelay((error, delay) =>
    error.retryAfter === undefined ? delay : Duration.min(error.retryAfter, Duration.decode(defaultRetry.retryAfterCap))
  ),
  Schedule.whileInput((error: RunUploadFailed) => error.reason === "unreachable")
)

const decodePath = Schema.decodeUnknownEither(Schema.Struct({ project: ProjectName, runId: RunId }))

const metadataOf = (run: RunRecord, crashed: boolean): RunMetadata => ({
  name: run.name,
  config: run.config,
  tags: run.tags,
  notes: run.notes,
  group: run.group,
  jobType: run.jobType,
  host: run.host,
  startedAt: run.ts,
  ...(crashed ? { crashed: true } : {})
})


/**
 * Starts uploading the run in `options.dir`: its Tailer from the cursor's seq, then, once the run
 * record is read (at once, for a journal on disk; after the first flush, for a run just started),
 * the metadata PUT and the Uploader, all in the caller's scope.
 */
export const open = (
  options: RunUploadOptions
): Effect.Effect<RunUpload, RunUploadFailed, HttpClient.HttpClient | Auth | Scope.Scope> =>
  Effect.gen(function* () {
    const dir = path.resolve(options.dir)
    const journal = path.join(dir, "journal.slog")
    const report = options.report ?? (() => {})
    const fail = (reason: RunUploadFailed["reason"], detail: string, retryAfter?: Duration.Duration) =>
      new RunUploadFailed({ dir, reason, detail, ...(retryAfter === undefined ? {} : { retryAfter }) })
    const baseUrl = options.baseUrl.replace(/\/+$/, "")

    yield* Either.match(checkFile(journal), { onLeft: (e) => Effect.fail(fail("unreadable", e.message)), onRight: () => Effect.void })

    const cursorFile = UploadCursor.cursorPath(dir)
    const from = yield* UploadCursor.read(cursorFile, baseUrl)
    const queue = yield* Effect.acquireRelease(Queue.bounded<Tailer.Batch>(QUEUE_CAPACITY), Queue.shutdown)
    /** Opened when what the progress is made of moved: the Tailer read, the Uploader acknowledged, the journal was flushed further. */
    const moved = yield* Effect.makeLatch(false)
    /** Whether the Uploader would send a batch at once: never until it runs (the metadata is on the server); the Tailer gathers meanwhile. */
    let uploaderReady = (): boolean => false
    const tailer = yield* Tailer.make({
      journal,
      from: from.ackSeq,
      output: queue,
      idle: () => uploaderReady(),
      onRead: () => moved.unsafeOpen(),
      report
    })
    yield* supervise("steplog tailer", tailer.loop, { report })
    yield* options.flushed.changes.pipe(
      Stream.runForEach(({ offset, final }) =>
        Effect.sync(() => {
          tailer.flushedTo(offset, final)
          moved.unsafeOpen()
        })),
      Effect.forkScoped
    )

    // The run record: in the first frame, once it is flushed; none in a whole journal is an error.
    const read = yield* Effect.gen(function* () {
      for (;;) {
        yield* moved.close
        const state = tailer.state()
        if (state.run !== null || state.complete) return state
        yield* moved.await
      }
    })
    const run = read.run
    if (run === null) return yield* fail("no-run-record", "its journal holds no run record")
    const project = run.project
    const runId = run.runId

    const auth = yield* Auth
    const httpClient = yield* HttpClient.HttpClient
    const runPath = decodePath({ project, runId })

    /** What a refused or failed request of `ask` (the metadata PUT, whoami) means here, by UploadPolicy's classification of its answer. */
    const metadataFailure = (failure: UploadFailure): RunUploadFailed => {
      if (failure._tag === "UploadFailed") {
        return failure.reason === "network" || failure.reason === "timeout"
          ? fail("unreachable", `no steplog server answers at ${baseUrl} (${failure.detail})`)
          : fail("unreachable", `the server at ${baseUrl} is busy or failed (${failure.detail})`, failure.retryAfter)
      }
      // A 403: the key may not use this project, which another key (`steplog login`) may.
      if (failure._tag === "KeyRefused" || (failure._tag === "UploadRejected" && failure.status === 403)) {
        return fail("key-refused", `the server at ${baseUrl} refused the API key (${failure.detail}); ${loginHint(baseUrl)}`)
      }
      return failure._tag === "UploadRejected" && failure.status === 410
        ? fail("deleted", `the run was deleted on the server at ${baseUrl} (${failure.detail})`)
        : fail("rejected", `the server at ${baseUrl} refused the run's metadata (${failure.detail})`)
    }

    /**
     * One small request of the API (a metadata PUT, whoami) with the current key: network errors,
     * timeouts and 5xx retried a few times, quickly (a person waits); the base request timeout.
     */
    const ask = <A>(request: (client: ApiClient.ApiClient) => Effect.Effect<A, ApiClient.ApiCallFailure>) =>
      Effect.gen(function* () {
        const key = yield* auth.current
        if (Option.isNone(key)) return yield* fail("no-key", `no API key for ${baseUrl}; ${loginHint(baseUrl)}`)
        const client = yield* Effect.provideService(ApiClient.make({ baseUrl, key: key.value }), HttpClient.HttpClient, httpClient)
        const timeout = requestTimeout(0)
        return yield* request(client).pipe(
          Effect.catchAll((failure) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.flip(classifyFailure(failure, 1, now)))),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new UploadFailed({ reason: "timeout", detail: `no answer within ${Duration.format(timeout)}` })
          }),
          Effect.mapError(metadataFailure)
        )
      }).pipe(Effect.retry(metadataRetry))

    /** PUTs the metadata (the body is small: the server takes at most 1 MiB). */
    const putMetadata = (crashed: boolean) =>
      runPath._tag === "Left"
        ? Effect.fail(fail("rejected", `the server takes no such project or run id: ${ParseResult.TreeFormatter.formatErrorSync(runPath.left)}`))
        : Effect.asVoid(ask((client) => client.upload.putRun({ path: runPath.right, payload: metadataOf(run, crashed) })))
    yield* putMetadata(false)

    // What the server stores, as its whoami says; a server that says nothing of it (protocol 1) stores every kind there is.
    const facts = (yield* ask((client) => client.query.whoami())).server
    const kinds: Uploader.ServerKinds = facts === undefined
      ? { stored: null, shown: `the server at ${baseUrl} (protocol 1)` }
      : { stored: new Set(facts.kinds), shown: `the server at ${baseUrl} (steplog ${facts.version}, protocol ${facts.protocol})` }

    const stopped = yield* SubscriptionRef.make(Option.none<UploadStopped>())
    const uploader = yield* Uploader.make({
      baseUrl, project, runId, input: queue, from, cursorFile, report, kinds, notice: options.notice ?? report,
      onReady: () => tailer.nudge(),
      onAcknowledged: () => moved.unsafeOpen(),
      ...(options.retry === undefined ? {} : { retry: options.retry })
    })
    uploaderReady = uploader.ready
    tailer.nudge()
    // A stop is final (the data stays on disk for a later sync), so it is kept, not restarted; a
    // defect is restarted by the supervisor, the Uploader carrying on from its own state.
    yield* supervise(
      "steplog uploader",
      uploader.loop.pipe(Effect.catchAll((why) => SubscriptionRef.set(stopped, Option.some(why)).pipe(Effect.zipRight(Effect.never)))),
      { report }
    )
    // Closed once everything is acknowledged, the cursor must say so (or a next sync resends it).
    yield* Effect.addFinalizer(() => uploader.saveCursor)

    const progressNow = Effect.map(SubscriptionRef.get(options.flushed), (flushed): Progress => {
      const state = tailer.state()
      const acknowledged = uploader.acknowledged()
      return { acknowledged, total: state.lastSeq + 1, uploaded: state.position >= flushed.offset && acknowledged >= state.lastSeq + 1 }
    })
    const current = yield* SubscriptionRef.make(yield* progressNow)
    const refresh = Effect.gen(function* () {
      yield* moved.await
      yield* moved.close
      const [was, now] = [yield* SubscriptionRef.get(current), yield* progressNow]
      if (was.acknowledged !== now.acknowledged || was.total !== now.total || was.uploaded !== now.uploaded) yield* SubscriptionRef.set(current, now)
    })
    yield* Effect.forkScoped(Effect.forever(refresh))
    const progress = current.changes
    const stoppedForGood: Effect.Effect<never, UploadStopped> = stopped.changes.pipe(
      Stream.filterMap((why) => why),
      Stream.runHead,
      Effect.flatMap((why) => Effect.fail(Option.getOrThrow(why)))
    )
    const awaitUploaded: Effect.Effect<Progress, UploadStopped> = Effect.raceFirst(
      progress.pipe(Stream.filter((now) => now.uploaded), Stream.runHead, Effect.map(Option.getOrThrow)),
      stoppedForGood
    )

    return {
      dir,
      project,
      runId,
      name: run.name,
      startAckSeq: from.ackSeq,
      progress,
      awaitUploaded,
      stopped: stoppedForGood,
      damage: Effect.sync(() => tailer.state().damage),
      kept: uploader.kept,
      markCrashedIfAbandoned: Effect.gen(function* () {
        const state = tailer.state()
        if (state.ended || RunDir.holder(dir) !== null) return false
        yield* putMetadata(true)
        return true
      })
    }
  })
