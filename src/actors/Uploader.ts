/**
 * Uploader actor (service process): takes the Tailer's batches and POSTs each to the API's
 * `postRecords` (ApiClient.ts) as a msgpack array (gzipped unless the server is on this machine,
 * `encodingFor`) with the Auth service's Bearer key, under the retry Schedule of UploadPolicy.ts;
 * a POST unanswered for UploadPolicy's `requestTimeout` of its body (10 s and up) fails, and is
 * sent again. The server answers `{ ackSeq }`: it holds every record with seq < ackSeq. That is
 * the resume point: a record below it is never sent again. Seqs the journal lost to damage (the
 * Tailer says which) are never coming, and a batch answered 200 is held whole: both count as
 * acknowledged beyond a gap the server's ackSeq stops at, so that `acknowledged` (a
 * plain state read by the upload's progress, `onAcknowledged` saying when it moved) reaches the
 * end of a damaged journal. The upload cursor follows it (UploadCursor.ts), never ahead of it, at
 * most once every CURSOR_INTERVAL: the cursor only saves resending, and a durable write per batch
 * cost a run's service ~2 ms of CPU ten times a second (bench/concurrent.ts); whoever closes the
 * upload writes the last one (`saveCursor`). A cursor that cannot be written (a full disk) is
 * reported once, and written when it can.
 *
 * Up to IN_FLIGHT (2) POSTs are in flight at once, and the next batch is packed (and gzipped)
 * meanwhile, so that the server always has the next batch at hand when it finishes one: with one
 * POST at a time it sat idle for half of an upload (bench/online.ts). Those are full batches,
 * which the Tailer hands on whenever one is full. A batch smaller than that goes at once only when
 * nothing is in flight (`ready`): while a POST is on its way the rows gather, so that a run
 * logging steadily sends fewer, larger POSTs as the server gets busier, instead of one per flush
 * whatever it costs (8 runs at 10k rows/s each: bench/concurrent.ts). Answers may come back in
 * any order; an ackSeq below what was acknowledged when its POST was sent means the server lost
 * records, any other is taken as it comes (the highest wins).
 *
 * A run that logs fast gathers longer: once it sends a batch of GATHER_FROM_BYTES or more, its
 * next small batch waits until GATHER_INTERVAL after that send. A POST costs the server and its
 * database a few ms of CPU whatever its size, so sending again the moment a busy server answers
 * keeps it busy: 8 runs at 10k rows/s each made ~700 POSTs of ~1,100 rows in 10 s, and make ~400
 * of ~2,000 this way; a sampled history read meanwhile answered at p90 in 63–71 ms, not ~124,
 * on PostgreSQL, and acknowledgements came sooner too (bench/concurrent.ts). A run logging a few
 * rows at a time never sends so large a batch, and each of its flushes goes at once.
 *
 * A record of a kind the server does not store (its `whoami` lists what it stores: an older server
 * meeting a newer SDK) is kept back: settled as if held, said once per kind (`notice`), and the
 * cursor is never written past the first of them, so that `steplog sync`, once the server stores
 * them, sends from there (the server ignores what it holds already).
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
import * as UploadCursor from "../journal/UploadCursor.js"
import { RunId, type UploadRecord } from "../schemas/Record.js"
import { UploadStopped } from "../schemas/UploadStopped.js"
import { blockBytes, fromSeq, lastSeq, rowCount, splitAfter, totalRows } from "../schemas/UploadRecords.js"
import { ProjectName } from "../schemas/Wire.js"
import * as ApiClient from "./ApiClient.js"
import { Auth, loginHint } from "./Auth.js"
import type { Batch, SeqSpan } from "./Tailer.js"
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
  /** Every seq below it is held by the server, or lost to the journal's damage. */
  readonly acknowledged: () => number
  /** Whether a batch handed on now would be sent at once, alone: nothing is on its way, and the run is not gathering. */
  readonly ready: () => boolean
  /** The actor's loop: one fiber only; it ends only by failing with `UploadStopped`. */
  readonly loop: Effect.Effect<never, UploadStopped>
  /**
   * Writes the cursor now if `acknowledged` moved past it: for whoever closes the upload, since
   * the loop writes it at most once every CURSOR_INTERVAL.
   */
  readonly saveCursor: Effect.Effect<void>
  /** The records kept back so far because the server does not store their kind. */
  readonly kept: Effect.Effect<Kept>
}

/** Records kept back from a server that does not store their kind: how many rows, of which kinds. */
export interface Kept {
  readonly records: number
  readonly kinds: ReadonlyArray<string>
}

/** What the server stores, as its `whoami` says: every kind (null), or these. */
export interface ServerKinds {
  readonly stored: ReadonlySet<string> | null
  /** The server as a warning names it: its URL, version and protocol. */
  readonly shown: string
}

/** POSTs in flight at once. */
const IN_FLIGHT = 2

/** A batch of at least this many bytes (~170 ten-double rows) is one of a run that logs fast: the next small batch waits. */
export const GATHER_FROM_BYTES = 16 * 1024

/** How long after it sent a large batch a run sends no small one. */
export const GATHER_INTERVAL = Duration.millis(200)

/** The upload cursor is written at most this often while the upload goes on. */
export const CURSOR_INTERVAL = Duration.seconds(1)

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
  /** The cursor the Tailer started from, as read from `cursorFile` for `baseUrl`. */
  readonly from: UploadCursor.UploadCursor
  readonly cursorFile: string
  /** Called when `ready` becomes true. */
  readonly onReady?: () => void
  /** Called when `acknowledged` moves. */
  readonly onAcknowledged?: () => void
  readonly retry?: RetryOptions
  readonly report?: (message: string) => void
  /** What the server stores; default every kind. */
  readonly kinds?: ServerKinds
  /** Where the one warning per kind kept back goes (the training process's stderr); default `report`. */
  readonly notice?: (message: string) => void
}): Effect.Effect<Uploader, never, HttpClient.HttpClient | Auth> =>
  Effect.gen(function* () {
    const httpClient = yield* HttpClient.HttpClient
    const auth = yield* Auth
    const report = options.report ?? (() => {})
    const schedule = retrySchedule(options.retry ?? defaultRetry)
    const encoding = encodingFor(options.baseUrl)
    const path = decodePath({ project: options.project, runId: options.runId })
    /** The API's client for the key used (one, until a 401 brings another). */
    const clientFor = (key: string) => Effect.provideService(ApiClient.make({ baseUrl: options.baseUrl, key }), HttpClient.HttpClient, httpClient)
    /** The seq persisted last (or attempted: a failed write is reported, and written again later). */
    let persisted = options.from.ackSeq
    /** The server's own word: the highest ackSeq it answered. */
    let serverAck = options.from.ackSeq
    /** Every seq below it is held or lost: `acknowledged`, as plain state. */
    let acked = options.from.ackSeq
    /** Seqs past `acked` known held (batches answered 200) or lost, as sorted disjoint spans. */
    let settled: Array<SeqSpan> = []
    const moved = yield* Effect.makeLatch(false)
    const onAcknowledged = options.onAcknowledged ?? (() => {})
    const onReady = options.onReady ?? (() => {})
    /** Batches taken from the input and not yet delivered. */
    let busy = 0
    /** Whether a small batch waits: from the send of a large one until GATHER_INTERVAL later. */
    let gathering = false
    const gatherFrom = yield* Effect.makeLatch(false)
    const ready = () => busy === 0 && !gathering
    const setBusy = (by: number) =>
      Effect.sync(() => {
        busy += by
        if (ready()) onReady()
      })
    /** Takes a batch of `bytes` to send: busy, and gathering when it is a large one. */
    const sending = (bytes: number) =>
      Effect.suspend(() => {
        if (bytes >= GATHER_FROM_BYTES && !gathering) {
          gathering = true
          gatherFrom.unsafeOpen()
        }
        return setBusy(1)
      })
    /** Ends each gathering GATHER_INTERVAL after it began. */
    const gather = Effect.forever(
      gatherFrom.await.pipe(
        Effect.zipRight(gatherFrom.close),
        Effect.zipRight(Effect.sleep(GATHER_INTERVAL)),
        Effect.zipRight(Effect.sync(() => {
          gathering = false
          if (ready()) onReady()
        }))
      )
    )

    const stored = options.kinds?.stored ?? null
    const notice = options.notice ?? report
    /** The spans of records kept back (their kind not stored): the cursor stays below the first. */
    const keptSpans: Array<SeqSpan> = []
    const keptKinds = new Set<string>()
    /** Splits off the records of a kind the server does not store (said once a kind), noting their spans. */
    const keepBack = (records: ReadonlyArray<UploadRecord>): { readonly sendable: ReadonlyArray<UploadRecord>; readonly kept: ReadonlyArray<SeqSpan> } => {
      if (stored === null || records.every((record) => stored.has(record.kind))) return { sendable: records, kept: [] }
      const sendable: Array<UploadRecord> = []
      const kept: Array<SeqSpan> = []
      for (const record of records) {
        if (stored.has(record.kind)) {
          sendable.push(record)
          continue
        }
        if (record.seq + rowCount(record) <= acked) continue
        kept.push([record.seq, lastSeq(record)])
        if (!keptKinds.has(record.kind)) {
          keptKinds.add(record.kind)
          notice(
            `steplog: ${options.kinds!.shown} does not store "${record.kind}" records, so run ${options.runId} keeps them on disk and uploads the rest; ` +
              `\`steplog sync\` sends them once the server is upgraded`
          )
        }
      }
      keptSpans.push(...kept)
      return { sendable, kept }
    }

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
        const { sendable, kept } = keepBack(records)
        return Effect.zipRight(settleNow(kept), pack(sendable))
      })

    /** The body of `records` from the current ackSeq on, or null when none is left to send. */
    const pack = (records: ReadonlyArray<UploadRecord>): Effect.Effect<Body | null> =>
      Effect.suspend(() => {
        const from = acked
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

    /** Notes `spans` as settled; answers how far from `from` every seq is settled, and forgets the spans below that. */
    const settle = (spans: ReadonlyArray<SeqSpan>, from: number): number => {
      settled.push(...spans)
      settled.sort((a, b) => a[0] - b[0])
      let reached = from
      for (const [lo, hi] of settled) if (lo <= reached) reached = Math.max(reached, hi + 1)
      settled = settled.filter(([, hi]) => hi >= reached)
      return reached
    }

    /** Moves `acknowledged` to `to`, for progress readers and `persist`. */
    const advance = (to: number) =>
      Effect.sync(() => {
        if (to === acked) return
        acked = to
        moved.unsafeOpen()
        onAcknowledged()
      })

    /**
     * Takes the server's answer (`ackSeq`) to a POST of `records`, sent when the server had said
     * `sentAt`: the records are held, and so is everything below ackSeq.
     */
    const acknowledge = (ackSeq: number, sentAt: number, records: ReadonlyArray<UploadRecord>) =>
      Effect.suspend(() => {
        if (ackSeq < sentAt) {
          // The server holds less than it said before (its store was replaced): what this service
          // passed over is resent by `steplog sync`, from the start that the cursor now says.
          report(`steplog: the server now holds run ${options.runId} only below seq ${ackSeq} (it said ${sentAt} before)`)
          serverAck = ackSeq
          settled = [...keptSpans]
          return advance(ackSeq)
        }
        serverAck = Math.max(serverAck, ackSeq)
        return advance(settle(records.map((record): SeqSpan => [record.seq, lastSeq(record)]), Math.max(acked, serverAck)))
      })

    /** Seqs never to be sent, settled now: gaps the journal lost, records kept back. */
    const settleNow = (spans: ReadonlyArray<SeqSpan>) => Effect.suspend(() => (spans.length === 0 ? Effect.void : advance(settle(spans, acked))))

    const writing = yield* Effect.makeSemaphore(1)
    let failing = false
    /**
     * Writes the cursor at `acked` unless it is there already: one write at a time. A write the
     * disk refuses is reported once, then tried again with the next move; its recovery is reported too.
     */
    const writeCursor = writing.withPermits(1)(
      Effect.gen(function* () {
        // Never past a record kept back: a later upload (a sync once the server stores it) starts
        // there. The Tailer hands records on in seq order, so the first span kept is the lowest.
        const next = keptSpans.length === 0 ? acked : Math.min(acked, keptSpans[0]![0])
        if (next === persisted) return
        // The cursor only saves work: without it a restart resends, and the server ignores repeats.
        const written = yield* UploadCursor.write(options.cursorFile, { server: options.baseUrl, ackSeq: next }).pipe(Effect.either)
        if (written._tag === "Left") {
          if (!failing) report(`${written.left.message}; the upload goes on, and a restarted upload would send again from seq ${persisted}`)
          failing = true
          return
        }
        if (failing) report(`steplog: the upload cursor of run ${options.runId} is written again (seq ${next})`)
        failing = false
        persisted = next
      })
    )

    /** Writes the cursor when `acknowledged` moved, the latest each time and at most once every CURSOR_INTERVAL, while the POSTs go on. */
    const persist = Effect.forever(moved.await.pipe(Effect.zipRight(moved.close), Effect.zipRight(writeCursor), Effect.zipRight(Effect.sleep(CURSOR_INTERVAL))))

    /**
     * Delivers `body`, cut again first if the ackSeq moved past its start since it was prepared;
     * a 413 sends its records again in halves (by rows, a block cut in two).
     */
    const deliver = (prepared: Body | null): Effect.Effect<void, UploadStopped> =>
      Effect.gen(function* () {
        let body = prepared
        if (body !== null && body.from < acked) {
          release(body)
          body = yield* prepare(body.records)
        }
        if (body === null) return
        const records = body.records
        const delivering = body
        const sentAt = serverAck
        yield* send(body).pipe(
          Effect.flatMap((ackSeq) => acknowledge(ackSeq, sentAt, records)),
          Effect.catchTags({
            BatchTooLarge: (refusal) => {
              const rows = totalRows(records)
              if (rows === 1) {
                return Effect.fail(stopped("record-too-large", `record ${records[0]!.seq} alone is larger than the server accepts (${refusal.detail})`))
              }
              const [head, tail] = splitAfter(records, Math.ceil(rows / 2))
              return Effect.forEach([head, tail], (half) => Effect.flatMap(prepare(half), deliver), { discard: true })
            },
            UploadRejected: (refusal) =>
              Effect.fail(refusal.status === 410 ? stopped("deleted", refusal.detail) : stopped("rejected", `the server refused a batch: ${refusal.detail}`)),
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
      // A restarted loop's gathering ended with the fiber that would have ended it.
      gathering = false
      yield* Effect.fork(gather)
      yield* Stream.fromQueue(options.input, { maxChunkSize: 1 }).pipe(
        Stream.mapEffect((batch) => sending(batch.bytes).pipe(Effect.zipRight(settleNow(batch.lost)), Effect.zipRight(prepare(batch.records)))),
        Stream.mapEffect((body) => deliver(body).pipe(Effect.ensuring(setBusy(-1))), { concurrency: IN_FLIGHT }),
        Stream.runDrain
      )
      return yield* Effect.never
    }) as Effect.Effect<never, UploadStopped>

    return {
      acknowledged: () => acked,
      ready,
      loop,
      saveCursor: writeCursor,
      kept: Effect.sync(() => ({ records: keptSpans.reduce((rows, [lo, hi]) => rows + hi - lo + 1, 0), kinds: [...keptKinds] }))
    }
  })
