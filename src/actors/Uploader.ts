/**
 * Uploader actor (service process): takes the Tailer's batches, one at a time, and POSTs each to
 * `/api/v1/projects/:project/runs/:runId/records` as a gzipped msgpack array with the Auth
 * service's Bearer key, under the retry Schedule of UploadPolicy.ts. The server answers
 * `{ ackSeq }`: it holds every record with seq < ackSeq. That is the resume point: a record below
 * the latest ackSeq is never sent again, and after each acknowledged POST the upload cursor is
 * persisted (UploadCursor.ts), never ahead of ackSeq.
 *
 * A 413 sends the batch again in halves, down to a single record, which, still too large, stops
 * the run's upload. A 401 reloads the key once (Auth.ts). Any other refusal stops the run's upload
 * with `UploadStopped`: the loop ends with it, to be reported once and not restarted; the journal
 * keeps every record for `steplog sync`.
 *
 * One fiber only runs `loop`.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import { Packr } from "msgpackr"
import * as zlib from "node:zlib"
import * as UploadCursor from "../runtime/UploadCursor.js"
import type { Record } from "../schemas/Record.js"
import { Ack } from "../schemas/Wire.js"
import { Auth, loginHint } from "./Auth.js"
import type { Batch, Mark } from "./Tailer.js"
import {
  UploadFailed,
  classifyStatus,
  defaultRetry,
  retrySchedule,
  type RetryOptions,
  type UploadFailure
} from "./UploadPolicy.js"

/** The upload of one run has stopped for good; its data stays on disk for `steplog sync`. */
export class UploadStopped extends Data.TaggedError("UploadStopped")<{
  readonly runId: string
  readonly reason: "rejected" | "key-refused" | "no-key" | "record-too-large"
  readonly detail: string
}> {
  override get message(): string {
    return `steplog: uploading run ${this.runId} stopped: ${this.detail}. Logging to disk goes on; \`steplog sync\` uploads the run later.`
  }
}

/** The Uploader's face to the service process. */
export interface Uploader {
  /** The cursor as last persisted (or as read at start). */
  readonly cursor: () => UploadCursor.UploadCursor
  /** The actor's loop: one fiber only; it ends only by failing with `UploadStopped`. */
  readonly loop: Effect.Effect<never, UploadStopped>
}

/** The longest a POST may take before it counts as a network failure (and is retried). */
export const REQUEST_TIMEOUT: Duration.DurationInput = "60 seconds"

// Batches are packed as the journal packs frames (msgpackr's record extension writes each key set
// once per batch); the server reads that and plain msgpack alike.
const packr = new Packr({ useRecords: true })

const decodeAck = Schema.decodeUnknown(Ack)

// Level 1, not the default 6: a batch of ten-double rows deflates to 829 KB instead of 800 KB
// (random mantissas barely compress at any level) in two thirds of the time; the upload of a
// million rows went from 37 s to 20 s with this and the cheaper record checks (bench/sync.ts).
const GZIP = { level: 1 } as const

const gzip = (bytes: Uint8Array): Effect.Effect<Uint8Array> =>
  Effect.async((resume) => {
    zlib.gzip(bytes, GZIP, (error, result) => resume(error === null ? Effect.succeed(result) : Effect.die(error)))
  })

/** Builds the Uploader of run `runId` of `project` on `baseUrl`, resuming from `from`. */
export const make = (options: {
  readonly baseUrl: string
  readonly project: string
  readonly runId: string
  readonly input: Queue.Dequeue<Batch>
  /** The cursor the Tailer started from, as read from `cursorFile`. */
  readonly from: UploadCursor.UploadCursor
  readonly cursorFile: string
  readonly retry?: RetryOptions
  readonly requestTimeout?: Duration.DurationInput
  readonly report?: (message: string) => void
}): Effect.Effect<Uploader, never, HttpClient.HttpClient | Auth> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const auth = yield* Auth
    const report = options.report ?? (() => {})
    const schedule = retrySchedule(options.retry ?? defaultRetry)
    const timeout = options.requestTimeout ?? REQUEST_TIMEOUT
    const url = `${options.baseUrl.replace(/\/+$/, "")}/api/v1/projects/${encodeURIComponent(options.project)}/runs/${encodeURIComponent(options.runId)}/records`
    let cursor = options.from

    const stopped = (reason: UploadStopped["reason"], detail: string) =>
      new UploadStopped({ runId: options.runId, reason, detail })

    /** One POST of `records` with `key`: the server's ackSeq, or why not. */
    const post = (records: ReadonlyArray<Record>, key: string): Effect.Effect<number, UploadFailure> =>
      Effect.gen(function* () {
        const body = yield* gzip(packr.pack(records))
        const request = HttpClientRequest.post(url).pipe(
          HttpClientRequest.bearerToken(key),
          HttpClientRequest.setHeader("content-encoding", "gzip"),
          HttpClientRequest.bodyUint8Array(body, "application/msgpack")
        )
        const response = yield* client.execute(request).pipe(
          Effect.mapError((error) => new UploadFailed({ reason: "network", detail: error.message })),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new UploadFailed({ reason: "timeout", detail: `no answer within ${Duration.format(timeout)}` })
          })
        )
        if (response.status >= 200 && response.status < 300) {
          const json = yield* response.json.pipe(
            Effect.flatMap(decodeAck),
            Effect.mapError((error) => new UploadFailed({ reason: "bad-answer", status: response.status, detail: `the answer is not an Ack: ${error.message}` }))
          )
          return json.ackSeq
        }
        const detail = yield* response.text.pipe(
          Effect.map((text) => text.slice(0, 500)),
          Effect.orElseSucceed(() => "")
        )
        const now = yield* Clock.currentTimeMillis
        return yield* Effect.fail(classifyStatus(response.status, response.headers, `HTTP ${response.status} ${detail}`.trim(), records.length, now))
      })

    /** POSTs `records` under the retry schedule; a refused key is reloaded once per refusal. */
    const send = (records: ReadonlyArray<Record>): Effect.Effect<number, UploadFailure | UploadStopped> =>
      Effect.gen(function* () {
        const key = yield* auth.current
        if (Option.isNone(key)) return yield* Effect.fail(stopped("no-key", `no API key for ${options.baseUrl}; ${loginHint(options.baseUrl)}`))
        return yield* post(records, key.value).pipe(
          Effect.retry(schedule),
          Effect.catchTag("KeyRefused", (refusal) =>
            Effect.flatMap(auth.reloadAfterRefusal(key.value), (reloaded) =>
              Option.isSome(reloaded)
                ? send(records)
                : Effect.fail(stopped("key-refused", `the server refused the API key (${refusal.detail}); ${loginHint(options.baseUrl)}`))))
        )
      })

    /** Records the server's ackSeq and persists the cursor at the furthest mark it covers. */
    const acknowledge = (ackSeq: number, marks: ReadonlyArray<Mark>) =>
      Effect.gen(function* () {
        let next: UploadCursor.UploadCursor
        if (ackSeq < cursor.ackSeq) {
          // The server holds less than it said before (its store was replaced): from the start
          // next time; the records this service already passed over are resent by `steplog sync`.
          report(`steplog: the server now holds run ${options.runId} only below seq ${ackSeq} (it said ${cursor.ackSeq} before)`)
          next = { offset: 0, ackSeq }
        } else {
          let offset = cursor.offset
          for (const mark of marks) if (mark.seq <= ackSeq && mark.offset > offset) offset = mark.offset
          next = { offset, ackSeq }
        }
        yield* UploadCursor.write(options.cursorFile, next).pipe(
          // The cursor only saves work: without it a restart resends, and the server ignores repeats.
          Effect.catchAll((error) => Effect.sync(() => report(error.message)))
        )
        cursor = next
      })

    /** Delivers `records` (of a batch with `marks`): those below ackSeq are skipped; a 413 halves them. */
    const deliver = (records: ReadonlyArray<Record>, marks: ReadonlyArray<Mark>): Effect.Effect<void, UploadStopped> =>
      Effect.suspend(() => {
        const unsent = records.filter((record) => record.seq >= cursor.ackSeq)
        if (unsent.length === 0) return Effect.void
        return send(unsent).pipe(
          Effect.flatMap((ackSeq) => acknowledge(ackSeq, marks)),
          Effect.catchTags({
            BatchTooLarge: (refusal) => {
              if (unsent.length === 1) {
                return Effect.fail(stopped("record-too-large", `record ${unsent[0]!.seq} alone is larger than the server accepts (${refusal.detail})`))
              }
              const half = Math.ceil(unsent.length / 2)
              return deliver(unsent.slice(0, half), marks).pipe(Effect.zipRight(deliver(unsent.slice(half), marks)))
            },
            UploadRejected: (refusal) => Effect.fail(stopped("rejected", `the server refused a batch: ${refusal.detail}`)),
            // Only reached when the schedule ends, which it does not: kept for the type's sake.
            UploadFailed: (failure) => Effect.fail(stopped("rejected", failure.message)),
            KeyRefused: (refusal) => Effect.fail(stopped("key-refused", refusal.detail))
          })
        )
      })

    const loop = Effect.gen(function* () {
      for (;;) {
        const batch = yield* options.input.take
        yield* deliver(batch.records, batch.marks)
      }
    }) as Effect.Effect<never, UploadStopped>

    return { cursor: () => cursor, loop }
  })
