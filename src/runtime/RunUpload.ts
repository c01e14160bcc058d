/**
 * Uploading one run directory to a server: PUTs the run's metadata (from its latest `run` record)
 * once, then wires a Tailer and an Uploader through a bounded queue, resuming from
 * `upload.cursor`. Two callers use it: `steplog sync`, which tells it the whole file is flushed
 * (`flushedTo(file size)`) and waits until everything is acknowledged; and the service process,
 * which calls `flushedTo` as the training process reports offsets, so nothing here assumes the
 * journal is final.
 *
 * "Fully uploaded" (as of the offset flushed so far) means: every whole frame before that offset
 * has been read, and the server's ackSeq is the last seq those frames hold plus one. A run whose
 * journal has no `exit` record at the end and whose writer is gone is marked `crashed` (a second
 * PUT) once it is fully uploaded: `markCrashedIfAbandoned`.
 *
 * Everything it starts lives in the caller's Scope; closing it stops the actors. The cursor is on
 * disk after each acknowledged batch, so closing early loses nothing but time.
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
import { checkHeader, readRange } from "../journal/JournalReader.js"
import { HEADER_SIZE } from "../journal/internal/frame.js"
import { RunId, type RunRecord } from "../schemas/Record.js"
import type { UploadStopped } from "../schemas/UploadStopped.js"
import { ProjectName, type RunMetadata } from "../schemas/Wire.js"
import * as JournalScan from "./internal/journalScan.js"
import * as RunDir from "./RunDir.js"
import * as UploadCursor from "./UploadCursor.js"

/** Batches between the Tailer and the Uploader. */
// Four batches of at most 1 MiB each: enough for the Tailer to read the next batches while POSTs
// are in flight, small enough that a slow server holds at most ~7 MiB of records in memory (these
// four, and in the Uploader two POSTs in flight and one packed); past that the Tailer waits and
// the records wait in the journal.
export const QUEUE_CAPACITY = 4

/** How often `awaitUploaded` looks at the Uploader's cursor (it has no acknowledgement callback). */
const POLL_INTERVAL = Duration.millis(50)

/** Uploading a run could not start, or its metadata could not be sent. */
export class RunUploadFailed extends Data.TaggedError("RunUploadFailed")<{
  readonly dir: string
  readonly reason: "unreadable" | "no-run-record" | "no-key" | "unreachable" | "key-refused" | "rejected"
  readonly detail: string
  /** The delay a busy server asked for with `Retry-After` (reason "unreachable"). */
  readonly retryAfter?: Duration.Duration
}> {
  override get message(): string {
    return `steplog: cannot upload the run in ${this.dir}: ${this.detail}`
  }
}

/** How far an upload is, in records (seq units): acknowledged by the server / held in the journal. */
export interface Progress {
  readonly acknowledged: number
  readonly total: number
}

/** One run directory being uploaded. */
export interface RunUpload {
  readonly dir: string
  readonly project: string
  readonly runId: string
  readonly name: string
  /** The server's ackSeq when this upload started (from the cursor): what earlier uploads sent. */
  readonly startAckSeq: number
  /** The training process has flushed the journal up to `offset` (bytes); smaller values are ignored. */
  readonly flushedTo: (offset: number) => void
  /** Records acknowledged and records in the journal (as read so far: call `refresh` first for news). */
  readonly progress: () => Progress
  /** Reads the journal up to the flushed offset, so that `progress` and `isUploaded` are current. */
  readonly refresh: Effect.Effect<void>
  /** Whether every record flushed so far is acknowledged. */
  readonly isUploaded: Effect.Effect<boolean>
  /** Why the upload stopped for good, if it did. */
  readonly stopped: () => Option.Option<UploadStopped>
  /** Waits until every record flushed so far is acknowledged; fails if the upload stops. */
  readonly awaitUploaded: Effect.Effect<Progress, UploadStopped>
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
  /** The journal offset already known to be flushed; `steplog sync` passes the file size. */
  readonly flushed?: number
  readonly retry?: RetryOptions
  /** Where warnings go (damage skipped, cursor not written, actor restarts). */
  readonly report?: (message: string) => void
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
 * Starts uploading the run in `options.dir`: reads its cursor and its journal up to `flushed`
 * (which must hold the run record), PUTs its metadata unless the cursor says every record is
 * acknowledged already, and starts the actors in the caller's scope.
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

    yield* Effect.try({
      try: () => checkHeader(journal, readRange(journal, 0, HEADER_SIZE).bytes),
      catch: (cause) => fail("unreadable", `cannot read ${journal}: ${(cause as Error).message}`)
    }).pipe(Effect.flatMap(Either.match({ onLeft: (e) => Effect.fail(fail("unreadable", e.message)), onRight: () => Effect.void })))

    let flushed = options.flushed ?? 0
    const scan = JournalScan.make(journal)
    const refresh = Effect.sync(() => {
      try {
        scan.scanTo(flushed)
      } catch (cause) {
        // The Tailer meets the same error and reports it through its supervisor.
        report(`steplog: reading ${journal} failed: ${(cause as Error).message}`)
      }
    })
    yield* refresh
    const run = scan.runRecord()
    if (run === null) return yield* fail("no-run-record", "its journal holds no run record (yet)")
    const project = run.project
    const runId = run.runId

    const auth = yield* Auth
    const httpClient = yield* HttpClient.HttpClient
    const runPath = decodePath({ project, runId })

    /** What a refused or failed PUT means here, by UploadPolicy's classification of its answer. */
    const metadataFailure = (failure: UploadFailure): RunUploadFailed => {
      if (failure._tag === "UploadFailed") {
        return failure.reason === "network" || failure.reason === "timeout"
          ? fail("unreachable", `no steplog server answers at ${baseUrl} (${failure.detail})`)
          : fail("unreachable", `the server at ${baseUrl} is busy or failed (${failure.detail})`, failure.retryAfter)
      }
      // A 403: the key may not use this project, which another key (`steplog login`) may.
      return failure._tag === "KeyRefused" || (failure._tag === "UploadRejected" && failure.status === 403)
        ? fail("key-refused", `the server at ${baseUrl} refused the API key (${failure.detail}); ${loginHint(baseUrl)}`)
        : fail("rejected", `the server at ${baseUrl} refused the run's metadata (${failure.detail})`)
    }

    /**
     * PUTs the metadata; network errors, timeouts and 5xx are retried a few times, quickly (a person
     * waits). The body is small (the server takes at most 1 MiB): the base request timeout.
     */
    const putMetadata = (crashed: boolean) =>
      Effect.gen(function* () {
        if (runPath._tag === "Left") {
          return yield* fail("rejected", `the server takes no such project or run id: ${ParseResult.TreeFormatter.formatErrorSync(runPath.left)}`)
        }
        const key = yield* auth.current
        if (Option.isNone(key)) return yield* fail("no-key", `no API key for ${baseUrl}; ${loginHint(baseUrl)}`)
        const client = yield* Effect.provideService(ApiClient.make({ baseUrl, key: key.value }), HttpClient.HttpClient, httpClient)
        const timeout = requestTimeout(0)
        yield* client.upload.putRun({ path: runPath.right, payload: metadataOf(run, crashed) }).pipe(
          Effect.catchAll((failure) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.flip(classifyFailure(failure, 1, now)))),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new UploadFailed({ reason: "timeout", detail: `no answer within ${Duration.format(timeout)}` })
          }),
          Effect.mapError(metadataFailure)
        )
      }).pipe(Effect.retry(metadataRetry))

    const cursorFile = UploadCursor.cursorPath(dir)
    const from = yield* UploadCursor.read(cursorFile)
    // A cursor at the end of what is flushed: an earlier upload sent it all, so nothing is sent now.
    if (from.ackSeq <= scan.lastSeq()) yield* putMetadata(false)

    const queue = yield* Effect.acquireRelease(Queue.bounded<Tailer.Batch>(QUEUE_CAPACITY), Queue.shutdown)
    const tailer = yield* Tailer.make({ journal, from, output: queue, report })
    const uploader = yield* Uploader.make({ baseUrl, project, runId, input: queue, from, cursorFile, report, ...(options.retry === undefined ? {} : { retry: options.retry }) })
    let stoppedWith: UploadStopped | undefined

    yield* supervise("steplog tailer", tailer.loop, { report })
    // A stop is final (the data stays on disk for a later sync), so it is kept, not restarted; a
    // defect is restarted by the supervisor, the Uploader's cursor carrying on in its closure.
    yield* supervise(
      "steplog uploader",
      uploader.loop.pipe(Effect.catchAll((stopped) => Effect.sync(() => (stoppedWith = stopped)).pipe(Effect.zipRight(Effect.never)))),
      { report }
    )
    tailer.flushedTo(flushed)

    const progress = (): Progress => ({ acknowledged: uploader.cursor().ackSeq, total: scan.lastSeq() + 1 })
    const isUploaded = refresh.pipe(Effect.map(() => uploader.cursor().ackSeq >= scan.lastSeq() + 1))
    const stopped = () => Option.fromNullable(stoppedWith)

    const awaitUploaded: Effect.Effect<Progress, UploadStopped> = Effect.gen(function* () {
      for (;;) {
        const why = stopped()
        if (Option.isSome(why)) return yield* Effect.fail(why.value)
        if (yield* isUploaded) return progress()
        yield* Effect.sleep(POLL_INTERVAL)
      }
    })

    return {
      dir,
      project,
      runId,
      name: run.name,
      startAckSeq: from.ackSeq,
      flushedTo: (offset) => {
        if (offset <= flushed) return
        flushed = offset
        tailer.flushedTo(offset)
      },
      progress,
      refresh,
      isUploaded,
      stopped,
      awaitUploaded,
      markCrashedIfAbandoned: Effect.suspend(() => {
        if (scan.ended() || RunDir.holder(dir) !== null) return Effect.succeed(false)
        return putMetadata(true).pipe(Effect.as(true))
      })
    }
  })
