/**
 * The Uploader against a scripted server: an `HttpClient.make` whose responder the test writes,
 * no network. Time comes from TestClock; the retry jitter is pinned by `Random.fixed([0.5])`
 * (a factor of exactly 1), so every delay is exact. The last test runs the real Tailer on a real
 * journal in front of it, stopped and restarted from the cursor file.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as TestClock from "effect/TestClock"
import { Unpackr } from "msgpackr"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { describe } from "vitest"
import * as Auth from "../../src/actors/Auth.js"
import * as Tailer from "../../src/actors/Tailer.js"
import * as Uploader from "../../src/actors/Uploader.js"
import { credentialsPath } from "../../src/actors/Credentials.js"
import * as UploadCursor from "../../src/journal/UploadCursor.js"
import type { HistoryRecord, Record, UploadRecord } from "../../src/schemas/Record.js"
import { historyRows } from "../../src/schemas/UploadRecords.js"
import { histories, openJournal, settle } from "../support/actors.js"
import { blockOf } from "../support/historyBlock.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("uploader")
const BASE_URL = "http://127.0.0.1:7077"
const unpackr = new Unpackr({ useRecords: true })

/** One POST as the scripted server saw it. */
interface Received {
  readonly url: string
  readonly authorization: string | undefined
  readonly encoding: string | undefined
  /** The records of the batch, a history block's as its rows. */
  readonly records: ReadonlyArray<Record>
  /** The kinds of the records as sent, a block as one. */
  readonly kinds: ReadonlyArray<UploadRecord["kind"]>
  readonly at: number
}

/** An answer: "network-error", or a status with a JSON `body` or a `text` body as it is. */
type Answer = "network-error" | { readonly status: number; readonly headers?: { [name: string]: string }; readonly body?: unknown; readonly text?: string }

/**
 * A server that holds records by seq and acknowledges the highest contiguous seq, as the real one
 * does, unless `script` answers first (return undefined to let it).
 */
const scriptedServer = (script: (received: Received, index: number) => Answer | undefined = () => undefined) => {
  const received: Array<Received> = []
  const held = new Set<number>()
  /** Whether the last answer asks for a retry, and the sleeps TestClock held when it came. */
  const state = { awaitingRetry: false, sleepsAtRequest: [] as ReadonlyArray<number> }
  const ackSeq = () => {
    let seq = 0
    while (held.has(seq)) seq++
    return seq
  }
  const client = HttpClient.make((request, url) =>
    Effect.gen(function* () {
      const body = request.body
      if (body._tag !== "Uint8Array") return yield* Effect.die(new Error(`unexpected body ${body._tag}`))
      const gzipped = request.headers["content-encoding"] === "gzip"
      const sent = unpackr.unpack(gzipped ? zlib.gunzipSync(body.body) : body.body) as Array<UploadRecord>
      const got: Received = {
        url: url.toString(),
        authorization: request.headers["authorization"],
        encoding: request.headers["content-encoding"],
        records: sent.flatMap((record) => (record.kind === "historyBlock" ? historyRows(record) : [record])),
        kinds: sent.map((record) => record.kind),
        at: yield* Clock.currentTimeMillis
      }
      received.push(got)
      state.sleepsAtRequest = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      const scripted = script(got, received.length - 1)
      let answer: Answer
      if (scripted === undefined) {
        for (const record of got.records) held.add(record.seq)
        answer = { status: 200, body: { ackSeq: ackSeq() } }
      } else {
        answer = scripted
      }
      state.awaitingRetry = answer === "network-error" || [408, 429].includes(answer.status) || (answer.status >= 500 && answer.status !== 501)
      if (answer === "network-error") {
        return yield* Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("ECONNREFUSED") }))
      }
      const text = answer.text ?? (answer.body === undefined ? null : JSON.stringify(answer.body))
      return HttpClientResponse.fromWeb(request, new Response(text, { status: answer.status, headers: answer.headers ?? {} }))
    })
  )
  return { client, received, held, state }
}

type Server = ReturnType<typeof scriptedServer>

const makeRunDir = () => {
  const dir = temp.file("run")
  fs.mkdirSync(dir)
  return dir
}

/** Writes a credentials file under `home` holding `key` for the test server. */
const storeKey = (env: { XDG_CONFIG_HOME: string }, key: string) => {
  const file = credentialsPath(env)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, JSON.stringify({ keys: { [BASE_URL]: key } }), { mode: 0o600 })
}

/** Starts an Uploader over `server` reading batches from `input`; its loop's end is in `result`. */
const startUploader = (options: {
  readonly server: Server
  readonly input: Queue.Dequeue<Tailer.Batch>
  readonly runDir: string
  readonly from?: UploadCursor.UploadCursor
  readonly apiKey?: string
  readonly env?: { XDG_CONFIG_HOME: string }
  readonly baseUrl?: string
  readonly onReady?: () => void
}) =>
  Effect.gen(function* () {
    const env = options.env ?? { XDG_CONFIG_HOME: path.join(options.runDir, "no-config") }
    const baseUrl = options.baseUrl ?? BASE_URL
    const auth = yield* Auth.make({ baseUrl, apiKey: options.apiKey ?? "key-1", env })
    const reports: Array<string> = []
    const uploader = yield* Uploader.make({
      baseUrl,
      project: "proj",
      runId: "run1",
      input: options.input,
      from: options.from ?? UploadCursor.start(baseUrl),
      cursorFile: UploadCursor.cursorPath(options.runDir),
      report: (message) => reports.push(message),
      ...(options.onReady === undefined ? {} : { onReady: options.onReady })
    }).pipe(Effect.provideService(HttpClient.HttpClient, options.server.client), Effect.provideService(Auth.Auth, auth))
    const fiber = yield* uploader.loop.pipe(Effect.withRandom(Random.fixed([0.5])), Effect.either, Effect.forkScoped)
    yield* settle()
    return { uploader, fiber, reports }
  })

/** A batch of `records`, and the seqs the journal lost before them. */
const batchOf = (records: ReadonlyArray<UploadRecord>, lost: ReadonlyArray<Tailer.SeqSpan> = []): Tailer.Batch => ({ records, bytes: records.length * 40, lost })

/** What the Uploader has acknowledged now. */
const ackedOf = (uploader: Uploader.Uploader): number => uploader.acknowledged()

const seqsOf = (received: ReadonlyArray<Received>) => received.map((got) => got.records.map((record) => record.seq))

const readCursor = (runDir: string) => Effect.runSync(UploadCursor.read(UploadCursor.cursorPath(runDir), BASE_URL))

/**
 * Waits (driving the actors) until the cursor file says `ackSeq`: it is written off the request
 * path, after the acknowledgement, at most once every CURSOR_INTERVAL (the clock is moved on by that).
 */
const cursorReads = (server: Server, runDir: string, ackSeq: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    while (readCursor(runDir).ackSeq !== ackSeq && Date.now() < deadline) {
      yield* drive(server, () => true)
      yield* TestClock.adjust(Uploader.CURSOR_INTERVAL)
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
    }
    expect(readCursor(runDir)).toEqual({ server: BASE_URL, ackSeq })
  })

/**
 * Runs the actors until `done` holds. gzip runs on libuv's thread pool, so between checks the
 * test gives the event loop a turn. After a retryable answer, once the Uploader has registered its
 * retry delay (a sleep that was not there when the request came), the clock jumps to exactly that
 * wake-up, so that request times are the schedule's own. Bounded by a wall-clock deadline: a condition that never holds fails the
 * test instead of hanging it.
 */
const drive = (server: Server, done: () => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    while (!done() && Date.now() < deadline) {
      yield* settle(done)
      if (done()) break
      const sleeps = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      const now = yield* Clock.currentTimeMillis
      // The sleeps registered since the request: the retry delay, and request timeouts (10 s and
      // up, before or after a long Retry-After), their requests answered already.
      const newer = [...sleeps]
      for (const at of server.state.sleepsAtRequest) {
        const index = newer.indexOf(at)
        if (index >= 0) newer.splice(index, 1)
      }
      const ahead = newer.filter((at) => at > now)
      if (server.state.awaitingRetry && ahead.length > 0) {
        // The earliest first, one at a time, so that every wake-up happens at its own instant.
        yield* TestClock.adjust(Math.min(...ahead) - now)
      } else {
        yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      }
    }
    expect(done()).toBe(true)
  })

/** Offers one batch and drives the Uploader until `done`. */
const deliver = (server: Server, input: Queue.Enqueue<Tailer.Batch>, batch: Tailer.Batch, done: () => boolean) =>
  Effect.zipRight(input.offer(batch), drive(server, done))

describe("Uploader", () => {
  it.scoped("POSTs a batch as msgpack with the Bearer key, then persists the cursor at the acknowledged mark", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer()
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir })
      const records = histories(0, 5)

      yield* deliver(server, input, batchOf(records), () => ackedOf(uploader) === 5)
      expect(server.received).toHaveLength(1)
      const [got] = server.received
      expect(got!.url).toBe(`${BASE_URL}/api/v1/projects/proj/runs/run1/records`)
      expect(got!.authorization).toBe("Bearer key-1")
      expect(got!.encoding).toBe("identity")
      expect(got!.records).toEqual(records)
      yield* cursorReads(server, runDir, 5)
    }))

  it.scoped("gzips the bodies it sends to a server on another machine", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer()
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir, baseUrl: "https://steplog.example.com" })
      const records = histories(0, 3)
      yield* deliver(server, input, batchOf(records), () => ackedOf(uploader) === 3)
      expect(server.received.map((got) => [got.encoding, got.records])).toEqual([["gzip", records]])
    }))

  it("sends bodies plain to a loopback address only", () => {
    for (const local of ["http://127.0.0.1:7077", "http://localhost:7077", "http://[::1]:7077", "http://127.8.0.1"]) {
      expect(Uploader.encodingFor(local), local).toBe("identity")
    }
    for (const remote of ["http://10.0.0.2:7077", "https://steplog.example.com", "http://127.0.0.1.example.com", "http://[::2]:7077"]) {
      expect(Uploader.encodingFor(remote), remote).toBe("gzip")
    }
  })

  it.scoped("retries network errors and 5xx after 250, 500 and 1000 ms, then goes on", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer((_, index) => (index === 0 ? "network-error" : index === 1 ? { status: 503 } : index === 2 ? { status: 500 } : undefined))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir })

      yield* deliver(server, input, batchOf(histories(0, 3)), () => ackedOf(uploader) === 3)
      expect(server.received.map((got) => got.at)).toEqual([0, 250, 750, 1750])
      yield* cursorReads(server, runDir, 3)
    }))

  it.scoped("waits as long as Retry-After says, in seconds or as an HTTP-date, instead of the computed delay", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer((got, index) => {
        if (index === 0) return { status: 429, headers: { "retry-after": "2" } }
        if (index === 1) return { status: 503, headers: { "retry-after": new Date(got.at + 45_000).toUTCString() } }
        return undefined
      })
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir })

      yield* deliver(server, input, batchOf(histories(0, 2)), () => ackedOf(uploader) === 2)
      // 2 s asked, not 250 ms; then 45 s asked, past the 30 s cap and instead of 500 ms
      expect(server.received.map((got) => got.at)).toEqual([0, 2_000, 47_000])
    }))

  it.scoped.each([400, 403, 404])("stops the run's upload after one refused POST (%i), with one clear message", (status) =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer(() => ({ status, body: { error: "refused", detail: "no such thing" } }))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { fiber } = yield* startUploader({ server, input, runDir, from: { server: BASE_URL, ackSeq: 2 } })

      yield* input.offer(batchOf(histories(2, 3)))
      yield* settle()
      yield* TestClock.adjust("10 minutes")
      const result = yield* Fiber.join(fiber)
      expect(server.received).toHaveLength(1)
      const stopped = Either.getLeft(result).pipe((o) => o._tag === "Some" ? o.value : undefined)!
      expect(stopped.reason).toBe("rejected")
      expect(stopped.message).toContain(`HTTP ${status}`)
      expect(stopped.message).toContain("no such thing")
      expect(stopped.message).toContain("steplog sync")
      // nothing acknowledged, nothing written
      expect(fs.existsSync(UploadCursor.cursorPath(runDir))).toBe(false)
    }))

  it.scoped("goes by the status of answers the API does not declare: a balancer's 502 and 500 pages are retried, its 404 page stops", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const page = (status: number) => ({ status, headers: { "content-type": "text/html" }, text: `<html><body>${status} from the balancer</body></html>` })
      const server = scriptedServer((_, index) => (index === 0 ? page(502) : index === 1 ? page(500) : index === 2 ? page(404) : undefined))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { fiber } = yield* startUploader({ server, input, runDir })

      yield* input.offer(batchOf(histories(0, 2)))
      yield* drive(server, () => server.received.length === 3)
      const result = yield* Fiber.join(fiber)
      expect(server.received.map((got) => got.at)).toEqual([0, 250, 750])
      expect(result).toMatchObject({ _tag: "Left", left: { reason: "rejected" } })
      expect(Either.isLeft(result) && result.left.message).toContain("HTTP 404 <html><body>404 from the balancer</body></html>")
    }))

  it.scoped("reads the API's own refusals by their declared status: a 413 halves the batch, a 400 stops with its code and detail", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const json = { "content-type": "application/json" }
      const server = scriptedServer((got) =>
        got.records.length > 2
          ? { status: 413, headers: json, body: { _tag: "BodyTooLarge", error: "payload_too_large", detail: "over 16 MiB" } }
          : got.records[0]!.seq === 2
          ? { status: 400, headers: json, body: { _tag: "RequestInvalid", error: "invalid_record", detail: { index: 0, message: "record 0 of the batch: no" } } }
          : undefined)
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { fiber } = yield* startUploader({ server, input, runDir })

      yield* input.offer(batchOf(histories(0, 4)))
      yield* drive(server, () => server.received.length === 3)
      const result = yield* Fiber.join(fiber)
      expect(seqsOf(server.received)).toEqual([[0, 1, 2, 3], [0, 1], [2, 3]])
      expect(result).toMatchObject({ _tag: "Left", left: { reason: "rejected" } })
      expect(Either.isLeft(result) && result.left.message).toContain(`HTTP 400 invalid_record: {"index":0,"message":"record 0 of the batch: no"}`)
    }))

  it.scoped("sends a batch refused with 413 again in halves, down to what the server takes", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer((got) => (got.records.length > 2 ? { status: 413 } : undefined))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir })

      yield* deliver(server, input, batchOf(histories(0, 8)), () => ackedOf(uploader) === 8)
      expect(seqsOf(server.received)).toEqual([
        [0, 1, 2, 3, 4, 5, 6, 7],
        [0, 1, 2, 3],
        [0, 1],
        [2, 3],
        [4, 5, 6, 7],
        [4, 5],
        [6, 7]
      ])
      yield* cursorReads(server, runDir, 8)
    }))

  it.scoped("sends a history block from the acknowledged seq on, and a refused one again in halves by rows", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer((got) => (got.records.length > 4 ? { status: 413 } : undefined))
      for (let seq = 0; seq < 3; seq++) server.held.add(seq)
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir, from: { server: BASE_URL, ackSeq: 3 } })

      const batch = batchOf([blockOf(histories(0, 10) as Array<HistoryRecord>)])
      yield* deliver(server, input, batch, () => ackedOf(uploader) === 10)
      expect(seqsOf(server.received)).toEqual([[3, 4, 5, 6, 7, 8, 9], [3, 4, 5, 6], [7, 8, 9]])
      expect(server.received.map((got) => got.kinds)).toEqual([["historyBlock"], ["historyBlock"], ["historyBlock"]])
      expect(server.received.flatMap((got) => got.records).slice(-7)).toEqual(histories(3, 7))
      yield* cursorReads(server, runDir, 10)
    }))

  it.scoped("stops with a clear message when a single record is still too large", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer(() => ({ status: 413 }))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { fiber } = yield* startUploader({ server, input, runDir })

      yield* input.offer(batchOf(histories(0, 4)))
      yield* settle()
      const result = yield* Fiber.join(fiber)
      expect(seqsOf(server.received)).toEqual([[0, 1, 2, 3], [0, 1], [0]])
      expect(result).toMatchObject({ _tag: "Left", left: { reason: "record-too-large" } })
      expect(Either.isLeft(result) && result.left.message).toContain("record 0 alone is larger than the server accepts")
    }))

  it.scoped("after a 401, re-reads the credentials file once and retries with the changed key", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const env = { XDG_CONFIG_HOME: path.join(runDir, "config") }
      storeKey(env, "key-2") // `steplog login` ran after the service started with key-1
      const server = scriptedServer((got) => (got.authorization === "Bearer key-2" ? undefined : { status: 401 }))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir, env, apiKey: "key-1" })

      yield* deliver(server, input, batchOf(histories(0, 2)), () => ackedOf(uploader) === 2)
      yield* deliver(server, input, batchOf(histories(2, 2)), () => ackedOf(uploader) === 4)
      expect(server.received.map((got) => got.authorization)).toEqual(["Bearer key-1", "Bearer key-2", "Bearer key-2"])
      expect(server.received.map((got) => got.at)).toEqual([0, 0, 0])
    }))

  it.scoped("after a 401 with the same key on disk, stops the run's upload saying how to log in", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const env = { XDG_CONFIG_HOME: path.join(runDir, "config") }
      storeKey(env, "key-1")
      const server = scriptedServer(() => ({ status: 401, body: { error: "unauthorized", detail: "unknown key" } }))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { fiber } = yield* startUploader({ server, input, runDir, env, apiKey: "key-1" })

      yield* input.offer(batchOf(histories(0, 2)))
      yield* settle()
      const result = yield* Fiber.join(fiber)
      expect(server.received).toHaveLength(1)
      expect(result).toMatchObject({ _tag: "Left", left: { reason: "key-refused" } })
      expect(Either.isLeft(result) && result.left.message).toContain("steplog login")
    }))

  it.scoped("persists the cursor after each acknowledged batch: the server's ackSeq, or the end of a batch it answered 200 (stored whole)", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      // The server's ackSeq lags the second batch (7 of 10), yet it stored that batch whole.
      const acks = [5, 7, 15]
      const server = scriptedServer((_, index) => ({ status: 200, body: { ackSeq: acks[index] } }))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir })
      yield* deliver(server, input, batchOf(histories(0, 5)), () => server.received.length === 1 && ackedOf(uploader) === 5)
      yield* cursorReads(server, runDir, 5)
      yield* deliver(server, input, batchOf(histories(5, 5)), () => server.received.length === 2 && ackedOf(uploader) === 10)
      yield* cursorReads(server, runDir, 10)
      yield* deliver(server, input, batchOf(histories(10, 5)), () => server.received.length === 3 && ackedOf(uploader) === 15)
      yield* cursorReads(server, runDir, 15)
    }))

  it.scoped("never sends a record below the latest ackSeq, even one the Tailer hands on", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      // The server already held 0..7 from an earlier service whose cursor was never written.
      const server = scriptedServer((_, index) => (index === 0 ? { status: 200, body: { ackSeq: 8 } } : undefined))
      for (let seq = 0; seq < 8; seq++) server.held.add(seq)
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir })

      yield* deliver(server, input, batchOf(histories(0, 5)), () => ackedOf(uploader) === 8)
      yield* deliver(server, input, batchOf(histories(5, 5)), () => ackedOf(uploader) === 10)
      // a stale batch (all below ackSeq) sends nothing; the next one proves it was taken and passed over
      yield* input.offer(batchOf(histories(2, 3)))
      yield* deliver(server, input, batchOf(histories(10, 1)), () => ackedOf(uploader) === 11)
      expect(seqsOf(server.received)).toEqual([[0, 1, 2, 3, 4], [8, 9], [10]])
    }))

  it.scoped("sends a POST that was accepted and never answered again after 10 s plus its body at 1 MB/s, not 60 s", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer()
      // The first POST is taken and never answered: a server stopping, a dead peer behind a balancer.
      const stalled: Array<{ readonly at: number; readonly bytes: number }> = []
      const client = HttpClient.make((request) =>
        stalled.length === 0 && request.body._tag === "Uint8Array"
          ? Effect.zipRight(Effect.map(Clock.currentTimeMillis, (at) => stalled.push({ at, bytes: (request.body as { body: Uint8Array }).body.length })), Effect.never)
          : server.client.execute(request))
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server: { ...server, client }, input, runDir })

      yield* input.offer(batchOf(histories(0, 200)))
      yield* settle(() => stalled.length === 1)
      const timeout = 10_000 + stalled[0]!.bytes / 1_000
      expect(stalled[0]!.bytes).toBeGreaterThan(1_000)
      yield* TestClock.adjust(timeout - 1)
      yield* settle()
      expect(server.received).toHaveLength(0)
      // Timed out, then sent again after the first retry delay (250 ms).
      yield* TestClock.adjust(1 + 250)
      yield* drive(server, () => ackedOf(uploader) === 200)
      expect(server.received.map((got) => got.at)).toEqual([timeout + 250])
    }))

  it.scoped("keeps two POSTs in flight, and a late answer with a lower ackSeq moves nothing back", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer()
      // The first POST is stored at once but answered only once the second has been.
      const release = yield* Deferred.make<void>()
      let posts = 0
      const client = HttpClient.make((request) => {
        const first = posts++ === 0
        return server.client.execute(request).pipe(Effect.tap(() => (first ? Deferred.await(release) : Effect.void)))
      })
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader, reports } = yield* startUploader({ server: { ...server, client }, input, runDir })

      yield* input.offer(batchOf(histories(0, 5)))
      yield* deliver(server, input, batchOf(histories(5, 5)), () => ackedOf(uploader) === 10)
      // The second was answered while the first still waited for its answer.
      expect(seqsOf(server.received)).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
      // The first answer (ackSeq 5) comes now, long before the third batch's.
      yield* Deferred.succeed(release, undefined)
      yield* deliver(server, input, batchOf(histories(10, 5)), () => ackedOf(uploader) === 15)
      expect(seqsOf(server.received)).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
      yield* cursorReads(server, runDir, 15)
      expect(reports).toEqual([])
    }))

  it.scoped("counts seqs the journal lost as acknowledged, and batches answered past the gap they leave: the upload reaches the end", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer()
      const input = yield* Queue.bounded<Tailer.Batch>(2)
      const { uploader } = yield* startUploader({ server, input, runDir })

      yield* deliver(server, input, batchOf(histories(0, 3)), () => ackedOf(uploader) === 3)
      // 3 and 4 were in a corrupt frame; the server's ackSeq stops at 3 for good.
      yield* deliver(server, input, batchOf(histories(5, 3), [[3, 4]]), () => ackedOf(uploader) === 8)
      expect(seqsOf(server.received)).toEqual([[0, 1, 2], [5, 6, 7]])
      yield* cursorReads(server, runDir, 8)
    }))

  it.scoped("is ready for a batch only while none is on its way, and says so when the last one is answered", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer()
      const release = yield* Deferred.make<void>()
      const client = HttpClient.make((request) => Effect.zipRight(Deferred.await(release), server.client.execute(request)))
      const input = yield* Queue.bounded<Tailer.Batch>(4)
      let readied = 0
      const { uploader } = yield* startUploader({ server: { ...server, client }, input, runDir, onReady: () => readied++ })

      expect(uploader.ready()).toBe(true)
      yield* input.offer(batchOf(histories(0, 2)))
      yield* settle()
      expect(uploader.ready()).toBe(false)
      // A second batch (a full one, as the Tailer hands on whatever the Uploader's state) goes alongside.
      yield* input.offer(batchOf(histories(2, 2)))
      yield* settle()
      expect([uploader.ready(), server.received.length, readied]).toEqual([false, 0, 0])
      yield* Deferred.succeed(release, undefined)
      yield* drive(server, () => ackedOf(uploader) === 4 && uploader.ready())
      expect([seqsOf(server.received), readied]).toEqual([[[0, 1], [2, 3]], 1])
    }))

  it.scoped("after a large batch is not ready for a small one until GATHER_INTERVAL after its send; after a small one, at once", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer()
      const input = yield* Queue.bounded<Tailer.Batch>(4)
      let readied = 0
      const { uploader } = yield* startUploader({ server, input, runDir, onReady: () => readied++ })
      const interval = Duration.toMillis(Uploader.GATHER_INTERVAL)

      const sentAt = yield* Clock.currentTimeMillis
      yield* deliver(server, input, { records: histories(0, 2), bytes: Uploader.GATHER_FROM_BYTES, lost: [] }, () => ackedOf(uploader) === 2)
      expect([uploader.ready(), readied]).toEqual([false, 0])
      yield* TestClock.adjust(interval - 1)
      yield* settle()
      expect([uploader.ready(), readied]).toEqual([false, 0])
      yield* TestClock.adjust(1)
      yield* drive(server, () => uploader.ready())
      expect([readied, (yield* Clock.currentTimeMillis) - sentAt]).toEqual([1, interval])

      // A small batch: answered, the Uploader is ready again at once.
      yield* deliver(server, input, batchOf(histories(2, 2)), () => ackedOf(uploader) === 4 && uploader.ready())
      expect([seqsOf(server.received), readied]).toEqual([[[0, 1], [2, 3]], 2])
    }))

  it.scoped("sends a body again unchanged after a retry, while later bodies are packed into reused buffers", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer((_, index) => (index === 0 ? { status: 503 } : undefined))
      const bodies: Array<Uint8Array> = []
      const client = HttpClient.make((request) => {
        if (request.body._tag === "Uint8Array") bodies.push(Uint8Array.from(request.body.body))
        return server.client.execute(request)
      })
      const input = yield* Queue.bounded<Tailer.Batch>(4)
      const { uploader } = yield* startUploader({ server: { ...server, client }, input, runDir })
      const blocks = (seq: number): Tailer.Batch => ({ records: [blockOf(histories(seq, 50) as Array<HistoryRecord>)], bytes: 50 * 32, lost: [] })
      // The first POST waits for its retry while the second goes and the next ones are packed.
      for (const seq of [0, 50, 100]) yield* input.offer(blocks(seq))
      yield* deliver(server, input, blocks(150), () => server.received.length === 2)
      yield* TestClock.adjust("1 second")
      yield* drive(server, () => ackedOf(uploader) === 200)
      const firstSeqs = server.received.map((got) => got.records[0]!.seq)
      expect(firstSeqs.filter((seq) => seq === 0)).toHaveLength(2)
      expect(bodies[firstSeqs.lastIndexOf(0)]).toEqual(bodies[0])
      const sent = server.received.slice(1).flatMap((got) => got.records).sort((a, b) => a.seq - b.seq)
      expect(sent).toEqual(histories(0, 200))
    }))

  it.scoped("restarted from its cursor file, Tailer and Uploader resend nothing the server acknowledged", () =>
    Effect.gen(function* () {
      const runDir = makeRunDir()
      const server = scriptedServer()
      const journal = yield* openJournal(path.join(runDir, "journal.slog"))
      for (let from = 0; from < 15; from += 5) journal.append(histories(from, 5))

      /** One life of the service's pair of actors, from the cursor on disk up to `until` acknowledged. */
      const life = (until: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const from = yield* UploadCursor.read(UploadCursor.cursorPath(runDir), BASE_URL)
            const queue = yield* Queue.bounded<Tailer.Batch>(2)
            const tailer = yield* Tailer.make({ journal: journal.path, from: from.ackSeq, output: queue })
            yield* Effect.forkScoped(tailer.loop)
            const { uploader } = yield* startUploader({ server, input: queue, runDir, from })
            tailer.flushedTo(journal.offset)
            yield* drive(server, () => ackedOf(uploader) === until)
          })
        )

      yield* life(15)
      yield* cursorReads(server, runDir, 15)
      for (let from = 15; from < 25; from += 5) journal.append(histories(from, 5))
      yield* life(25)

      const sent = seqsOf(server.received).flat()
      expect(sent).toEqual(Array.from({ length: 25 }, (_, i) => i))
      expect(seqsOf(server.received)).toHaveLength(2)
    }))
})
