/**
 * Uploader actor (service process): takes the Tailer's batches and POSTs each to the API's
 * `postRecords` (ApiClient.ts) as a msgpack array (gzipped unless the server is on this machine,
 * `encodingFor`) with the Auth service's Bearer key, under the retry Schedule of UploadPolicy.ts;
 * a POST unanswered for UploadPolicy's `requestTimeout` of its body (10 s and up) fails, and is
 * sent again. The server answers `{ ackSeq }`: it holds every record with seq < ackSeq. That is
 * the resume point: a record below the latest ackSeq is never sent again, and once a POST
 * is acknowledged the upload cursor is persisted (UploadCursor.ts), never ahead of ackSeq.
 *
 * Up to IN_FLIGHT (2) POSTs are in flight at once, and the next batch is packed (and gzipped)
 * meanwhile, so that the server always has the next batch at hand when it finishes one: with one
 * POST at a time it sat idle for half of an upload (bench/online.ts). Answers may come back in
 * any order; an ackSeq below what was acknowledged when its POST was sent means the server lost
 * records, any other is taken as it comes (the highest wins).
 *
 * A 413 sends the batch again in halves, down to a single record, which, still too large, stops
 * the run's upload. A 401 reloads the key once (Auth.ts). Any other refusal stops the run's upload
 * with `UploadStopped`: the loop ends with it, to be reported once and not restarted; the journal
 * keeps every record for `steplog sync`.
 *
 * One fiber only runs `loop`.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Packr } from "msgpackr"
import * as zlib from "node:zlib"
import * as UploadCursor from "../runtime/UploadCursor.js"
import { RunId, type UploadRecord } from "../schemas/Record.js"
import { UploadStopped } from "../schemas/UploadStopped.js"
import { blockBytes, fromSeq, splitAfter, totalRows } from "../schemas/UploadRecords.js"
import { ProjectName } from "../schemas/Wire.js"
import * as ApiClient from "./ApiClient.js"
import { Auth, loginHint } from "./Auth.js"
import type { Batch, Mark } from "./Tailer.js"
import {
  UploadFailed,
  classifyFailure,
  defaultRetry,
  requestTimeout,
  retrySchedule,
  type RetryOptions,
  type UploadFailure
} from "./UploadPolicy.js"

/** The Uploader's face to the service process. */
export interface Uploader {
  /** The cursor as last persisted (or as read at start). */
  readonly cursor: () => UploadCursor.UploadCursor
  /** The actor's loop: one fiber only; it ends only by failing with `UploadStopped`. */
  readonly loop: Effect.Effect<never, UploadStopped>
}

/** POSTs in flight at once. */
const IN_FLIGHT = 2

/** Buffers of delivered bodies kept to pack the next ones into: the POSTs in flight and one more. */
const SPARE_BUFFERS = IN_FLIGHT + 1

/** Body buffers are allocated in steps of this (64 KiB), so that one fits the next batch of about its size. */
const BUFFER_STEP = 64 * 1024

// Batches are packed as the journal packs frames (msgpackr's record extension writes each key set
// once per batch); the server reads that and plain msgpack alike.
const packr = new Packr({ useRecords: true })

/**
 * Room for `records` packed: a block's columns and their headers, a generous share for any other
 * record (a larger one makes msgpackr grow the buffer, as it would anyway).
 */
const packedSize = (records: ReadonlyArray<UploadRecord>): number => {
  let size = 4096
  for (const record of records) size += record.kind === "historyBlock" ? blockBytes(record) + 64 * (record.keys.length + 2) : 512
  return size
}

const decodePath = Schema.decodeUnknownEither(Schema.Struct({ project: ProjectName, runId: RunId }))

// Level 1 with the run-length strategy (LZ77 matches of distance 1, then Huffman codes), not the
// default level 6: float64 columns of random mantissas barely compress at any level, and a 1 MiB
// batch of ten-double rows deflates to 908 KB instead of 849 KB (level 1's default strategy) in
// 12 ms instead of 33 ms on the 2-core benchmark machine: gzip all the same (bench/sync.ts).
const GZIP = { level: 1, strategy: zlib.constants.Z_RLE } as const

/**
 * How bodies to `baseUrl` travel: plain ("identity") to a loopback address, where there is no
 * bandwidth to save, gzipped to any other. Gzip was the largest cost of an upload to a server on
 * the same machine: ~1.9 of the client's ~3.5 CPU-s a million ten-double rows, ~260,000 →
 * ~415,000 rows/s without it (bench/sync.ts, 2-core machine, both measured).
 */
export const encodingFor = (baseUrl: string): "gzip" | "identity" => {
  const host = new URL(baseUrl).hostname
  return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host) ? "identity" : "gzip"
}

const gzip = (bytes: Uint8Array): Effect.Effect<Uint8Array> =>
  Effect.async((resume) => {
    // Output room for all of it at once: with zlib's 16 KiB default every chunk of output is one
    // more round trip between the thread pool and this thread, which a busy event loop made
    // take ten times as long.
    zlib.gzip(bytes, { ...GZIP, chunkSize: bytes.length + 64 * 1024 }, (error, result) =>
      resume(error === null ? Effect.succeed(result) : Effect.die(error)))
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
  readonly report?: (message: string) => void
}): Effect.Effect<Uploader, never, HttpClient.HttpClient | Auth> =>
  Effect.gen(function* () {
    const httpClient = yield* HttpClient.HttpClient
    const auth = yield* Auth
    const report = options.report ?? (() => {})
    const schedule = retrySchedule(options.retry ?? defaultRetry)
    const encoding = encodingFor(options.baseUrl)
    const path = decodePath({ project: options.project, runId: options.runId })
    /** The API's client for each key used (one, until a 401 brings another). */
    const clients = new Map<string, ApiClient.ApiClient>()
    const clientFor = (key: string) =>
      Effect.suspend(() => {
        const known = clients.get(key)
        return known !== undefined ? Effect.succeed(known) : ApiClient.make({ baseUrl: options.baseUrl, key }).pipe(
          Effect.provideService(HttpClient.HttpClient, httpClient),
          Effect.tap((made) => clients.set(key, made))
        )
      })
    /** The cursor as last persisted (or attempted to be: a failed write is only reported). */
    let cursor = options.from
    /** The cursor as acknowledged: what `persist` writes next, if it moved past `cursor`. */
    let acked = options.from
    /** Marks of the batches taken, not yet passed by the acknowledged cursor, ascending. */
    let marks: Array<Mark> = []
    const moved = yield* Effect.makeLatch(false)

    const stopped = (reason: UploadStopped["reason"], detail: string) =>
      new UploadStopped({ runId: options.runId, reason, detail })

    /** A batch's records from the current ackSeq on, packed (and gzipped): what one POST sends. */
    interface Body {
      readonly records: ReadonlyArray<UploadRecord>
      /** The ackSeq it was cut at: a body cut below a later ackSeq is cut again before it goes. */
      readonly from: number
      readonly bytes: Uint8Array
      /** The buffer it was packed into: packed into again once the body is delivered. */
      readonly buffer: Buffer
    }

    const spares: Array<Buffer> = []
    /** A spare buffer of at least `size` bytes, or a new one: each page of a new one costs a fault, and the GC's notice. */
    const bufferOf = (size: number): Buffer => {
      const index = spares.findIndex((spare) => spare.length >= size)
      return index === -1 ? Buffer.allocUnsafeSlow(Math.ceil(size / BUFFER_STEP) * BUFFER_STEP) : spares.splice(index, 1)[0]!
    }
    /** Takes back the buffer of `body`, no longer sent or to be sent. */
    const release = (body: Body) => {
      if (spares.length < SPARE_BUFFERS) spares.push(body.buffer)
    }

    const prepare = (records: ReadonlyArray<UploadRecord>): Effect.Effect<Body | null> =>
      Effect.suspend(() => {
        const from = acked.ackSeq
        const unsent = fromSeq(records, from)
        if (unsent.length === 0) return Effect.succeed(null)
        // Into a buffer of the body's size, reused: msgpackr's own grows to four times a body,
        // copying what it holds at each step, and is allocated anew when full. A million rows:
        // packing ~0.13 → ~0.04 CPU-s, GC ~0.55 → ~0.3 s (bench/sync.ts, profiled).
        const buffer = bufferOf(packedSize(unsent))
        packr.useBuffer(buffer)
        const packed = packr.pack(unsent)
        return Effect.map(encoding === "gzip" ? gzip(packed) : Effect.succeed(packed), (bytes) => ({ records: unsent, from, bytes, buffer }))
      })

    /** One POST of `body` with `key`: the server's ackSeq, or why not. */
    const post = (body: Body, key: string, at: { readonly project: ProjectName; readonly runId: RunId }): Effect.Effect<number, UploadFailure> =>
      Effect.gen(function* () {
        const client = yield* clientFor(key)
        const timeout = requestTimeout(body.bytes.length)
        const ack = yield* client.upload.postRecords({ path: at, headers: { "content-encoding": encoding }, payload: body.bytes }).pipe(
          Effect.catchAll((failure) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.flip(classifyFailure(failure, totalRows(body.records), now)))),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new UploadFailed({ reason: "timeout", detail: `no answer within ${Duration.format(timeout)}` })
          })
        )
        return ack.ackSeq
      })

    /** POSTs `body` under the retry schedule; a refused key is reloaded once per refusal. */
    const send = (body: Body): Effect.Effect<number, UploadFailure | UploadStopped> =>
      Effect.gen(function* () {
        if (path._tag === "Left") {
          return yield* Effect.fail(stopped("rejected", `the server takes no such project or run id: ${ParseResult.TreeFormatter.formatErrorSync(path.left)}`))
        }
        const key = yield* auth.current
        if (Option.isNone(key)) return yield* Effect.fail(stopped("no-key", `no API key for ${options.baseUrl}; ${loginHint(options.baseUrl)}`))
        return yield* post(body, key.value, path.right).pipe(
          Effect.retry(schedule),
          Effect.catchTag("KeyRefused", (refusal) =>
            Effect.flatMap(auth.reloadAfterRefusal(key.value), (reloaded) =>
              Option.isSome(reloaded)
                ? send(body)
                : Effect.fail(stopped("key-refused", `the server refused the API key (${refusal.detail}); ${loginHint(options.baseUrl)}`))))
        )
      })

    /**
     * Takes the server's answer to a POST sent when `sentAt` was acknowledged: moves the cursor to
     * the furthest mark it covers, for `persist` to write.
     */
    const acknowledge = (ackSeq: number, sentAt: number) => {
      if (ackSeq < sentAt) {
        // The server holds less than it said before (its store was replaced): from the start
        // next time; the records this service already passed over are resent by `steplog sync`.
        report(`steplog: the server now holds run ${options.runId} only below seq ${ackSeq} (it said ${sentAt} before)`)
        acked = { offset: 0, ackSeq }
        marks = []
      } else if (ackSeq > acked.ackSeq) {
        let offset = acked.offset
        let passed = 0
        for (; passed < marks.length && marks[passed]!.seq <= ackSeq; passed++) offset = Math.max(offset, marks[passed]!.offset)
        marks.splice(0, passed)
        acked = { offset, ackSeq }
      } else {
        return
      }
      moved.unsafeOpen()
    }

    /**
     * Writes the acknowledged cursor whenever it moved: one write at a time, the latest cursor
     * each time (a cursor passed by a later one is not written), while the POSTs go on.
     */
    const persist = Effect.gen(function* () {
      for (;;) {
        yield* moved.await
        yield* moved.close
        const next = acked
        if (next.ackSeq === cursor.ackSeq && next.offset === cursor.offset) continue
        // The cursor only saves work: without it a restart resends, and the server ignores repeats.
        yield* UploadCursor.write(options.cursorFile, next).pipe(Effect.catchAll((error) => Effect.sync(() => report(error.message))))
        cursor = next
      }
    })

    /**
     * Delivers `body`, cut again first if the ackSeq moved past its start since it was prepared;
     * a 413 sends its records again in halves (by rows, a block cut in two).
     */
    const deliver = (prepared: Body | null): Effect.Effect<void, UploadStopped> =>
      Effect.gen(function* () {
        let body = prepared
        if (body !== null && body.from < acked.ackSeq) {
          release(body)
          body = yield* prepare(body.records)
        }
        if (body === null) return
        const records = body.records
        const delivering = body
        const sentAt = acked.ackSeq
        yield* send(body).pipe(
          Effect.map((ackSeq) => acknowledge(ackSeq, sentAt)),
          Effect.catchTags({
            BatchTooLarge: (refusal) => {
              const rows = totalRows(records)
              if (rows === 1) {
                return Effect.fail(stopped("record-too-large", `record ${records[0]!.seq} alone is larger than the server accepts (${refusal.detail})`))
              }
              const [head, tail] = splitAfter(records, Math.ceil(rows / 2))
              return Effect.forEach([head, tail], (half) => Effect.flatMap(prepare(half), deliver), { discard: true })
            },
            UploadRejected: (refusal) => Effect.fail(stopped("rejected", `the server refused a batch: ${refusal.detail}`)),
            // Only reached when the schedule ends, which it does not: kept for the type's sake.
            UploadFailed: (failure) => Effect.fail(stopped("rejected", failure.message)),
            KeyRefused: (refusal) => Effect.fail(stopped("key-refused", refusal.detail))
          }),
          // Answered, or given up on: the request has been written whole or aborted.
          Effect.ensuring(Effect.sync(() => release(delivering)))
        )
      })

    const loop = Effect.gen(function* () {
      yield* Effect.fork(persist)
      yield* Stream.fromQueue(options.input, { maxChunkSize: 1 }).pipe(
        Stream.mapEffect((batch) => {
          for (const mark of batch.marks) marks.push(mark)
          return prepare(batch.records)
        }),
        Stream.mapEffect(deliver, { concurrency: IN_FLIGHT }),
        Stream.runDrain
      )
      return yield* Effect.never
    }) as Effect.Effect<never, UploadStopped>

    return { cursor: () => cursor, loop }
  })
