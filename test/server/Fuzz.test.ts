/**
 * The API under fuzz: fast-check properties against the real server in this process (the test
 * server of steplog/testing: the HTTP layer over SQLite in memory), sent what no client should —
 * arbitrary methods, paths, headers, query strings and bodies: random bytes, truncated and mutated
 * batches, bad gzip, batches from a standard msgpack encoder (plain maps), records that are wrong
 * in one field. After every case: no answer was a 5xx, every acknowledgement was the run's
 * contiguous prefix, and the run's history is exactly what the batches the server accepted carried,
 * so a refused batch left nothing behind.
 *
 * FUZZ_RUNS cases (default 200 in `npm test`; `npm run fuzz` runs 10,000), each a fresh run;
 * FUZZ_SEED and FUZZ_PATH replay a reported failure.
 */
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { Packr, Unpackr } from "msgpackr"
import * as http from "node:http"
import * as zlib from "node:zlib"
import { startTestServer, type TestServer } from "steplog/testing"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { HistoryRecord, Record, RunRecord, UploadRecord, Value } from "../../src/schemas/Record.js"
import { UploadRecord as UploadRecordSchema } from "../../src/schemas/Record.js"
import { historyRows } from "../../src/schemas/UploadRecords.js"
import { blockOf } from "../support/historyBlock.js"

const RUNS = Number(process.env["FUZZ_RUNS"] ?? 200)
const PROJECT = "fuzz"
/** What generated batches name the case's run; each case sends them to a run never used before. */
const CASE_RUN = "case-run"

let server: TestServer
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  agent.destroy()
  await server?.close()
})

interface Sent {
  readonly method: string
  readonly path: string
  readonly headers: { readonly [name: string]: string }
  readonly body: Uint8Array
}

interface Answer {
  readonly status: number
  readonly body: Buffer
}

/** Sends a request as given (Node checks only that the method is a token and the path has no spaces). */
const send = (request: Sent): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const url = new URL(server.baseUrl)
    const outgoing = http.request(
      // The length said outright: Node's client frames no body of a DELETE or OPTIONS by itself.
      { host: url.hostname, port: url.port, method: request.method, path: request.path, headers: { ...request.headers, "content-length": String(request.body.length) }, agent },
      (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }))
        response.on("error", reject)
      }
    )
    outgoing.on("error", reject)
    outgoing.end(request.body)
  })

const recordsPackr = new Packr({ useRecords: true })
const plainPackr = new Packr({ useRecords: false })
/** Reads a batch as the protocol says a server must: msgpackr's records and plain maps alike. */
const batchReader = new Unpackr({ useRecords: true, mapsAsObjects: true })
const decodeRecord = Schema.decodeUnknownEither(UploadRecordSchema)

// ---------------------------------------------------------------------------------------------
// Batches: valid records of the case's run, then what can go wrong with them on the way.

const key = fc.constantFrom("loss", "acc", "val/loss", "lr")
const value: fc.Arbitrary<Value> = fc.oneof(
  { weight: 6, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) }
)

/** A record at `seq` of the run (history at step = seq most often). */
const recordAt = (seq: number, runId: string): fc.Arbitrary<Record> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.dictionary(key, value, { minKeys: 1, maxKeys: 3 }).map((values): Record => ({ kind: "history", seq, ts: 1_000 + seq, step: seq, values })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((text): Record => ({ kind: "output", seq, ts: 1_000 + seq, stream: "stdout", text })) },
    { weight: 1, arbitrary: fc.dictionary(key, fc.double({ noNaN: true, noDefaultInfinity: true })).map((patch): Record => ({ kind: "summary", seq, ts: 1_000 + seq, patch })) },
    {
      weight: 1,
      arbitrary: fc.constant<Record>({
        kind: "run", seq, ts: 1_000 + seq, runId: runId as RunRecord["runId"], project: PROJECT as RunRecord["project"], name: "fuzzed", config: {}, tags: [], notes: null,
        group: null, jobType: null, host: "fuzz-host", pid: 1, argv: [], gitCommit: null, sdkVersion: "0.0.0", resumed: false
      })
    }
  )

/** Consecutive records from a seq in 0…24; runs of numeric history rows with one key set packed as a block sometimes. */
const validRecords = (runId: string): fc.Arbitrary<Array<UploadRecord>> =>
  fc.tuple(fc.nat(24), fc.integer({ min: 1, max: 8 }), fc.boolean()).chain(([from, count, pack]) =>
    fc.tuple(...Array.from({ length: count }, (_, i) => recordAt(from + i, runId))).map((records) => {
      const numeric = (record: Record): record is HistoryRecord =>
        record.kind === "history" && Object.values(record.values).every((v) => typeof v === "number")
      if (!pack || records.length < 2 || !records.every(numeric)) return records
      const keys = Object.keys(records[0]!.values).sort().join()
      const same = records.every((record) => Object.keys((record as HistoryRecord).values).sort().join() === keys)
      if (!same) return records
      const ordered = records.map((record) => ({ ...record, values: Object.fromEntries(Object.keys((records[0] as HistoryRecord).values).map((k) => [k, (record as HistoryRecord).values[k]!])) }))
      return [blockOf(ordered as Array<HistoryRecord>)]
    })
  )

/** A record that must be refused: wrong in one field. */
const invalidRecord = (seq: number): fc.Arbitrary<unknown> =>
  fc.constantFrom<unknown>(
    { kind: "history", seq, ts: 1, step: -1, values: { a: 1 } },
    { kind: "history", seq, ts: 1, step: 1.5, values: { a: 1 } },
    { kind: "history", seq: -1, ts: 1, step: 0, values: { a: 1 } },
    { kind: "history", seq, ts: 1, step: 0, values: { a: { nested: 1 } } },
    { kind: "history", seq, ts: "soon", step: 0, values: {} },
    { kind: "nope", seq, ts: 1 },
    // Effect's Union decoder throws on a tag that String() throws on (schemas/Decode.ts).
    { kind: { toString: 0 }, seq, ts: 1 },
    { seq, ts: 1, step: 0, values: {} },
    { kind: "run", seq, ts: 1, runId: "another-run", project: PROJECT, name: "x", config: {}, tags: [], notes: null, group: null, jobType: null, host: null, pid: 1, argv: [], gitCommit: null, sdkVersion: "0", resumed: false },
    { kind: "historyBlock", seq, rows: 2, keys: ["a"], steps: new Uint8Array(8), ts: new Uint8Array(16), columns: [new Uint8Array(16)] },
    "a string",
    null,
    42
  )

type Damage =
  | { readonly _tag: "none" }
  | { readonly _tag: "plain-maps" }
  | { readonly _tag: "gzip" }
  | { readonly _tag: "invalid-record"; readonly at: number; readonly record: unknown }
  | { readonly _tag: "truncate"; readonly at: number }
  | { readonly _tag: "flip"; readonly at: number; readonly bit: number }
  | { readonly _tag: "bad-gzip"; readonly at: number }
  | { readonly _tag: "random"; readonly bytes: Uint8Array }
  | { readonly _tag: "not-an-array" }

const damage: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Damage>({ _tag: "none" }) },
  { weight: 2, arbitrary: fc.constant<Damage>({ _tag: "plain-maps" }) },
  { weight: 2, arbitrary: fc.constant<Damage>({ _tag: "gzip" }) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(), invalidRecord(3)).map(([at, record]): Damage => ({ _tag: "invalid-record", at, record })) },
  { weight: 1, arbitrary: fc.nat().map((at): Damage => ({ _tag: "truncate", at })) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(), fc.nat(7)).map(([at, bit]): Damage => ({ _tag: "flip", at, bit })) },
  { weight: 1, arbitrary: fc.nat().map((at): Damage => ({ _tag: "bad-gzip", at })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes): Damage => ({ _tag: "random", bytes })) },
  { weight: 1, arbitrary: fc.constant<Damage>({ _tag: "not-an-array" }) }
)

/** The body a batch is sent as, and whether it is gzipped. */
const bodyOf = (records: ReadonlyArray<unknown>, hurt: Damage): { readonly body: Uint8Array; readonly gzip: boolean } => {
  const packed = () => recordsPackr.pack(records)
  switch (hurt._tag) {
    case "none":
      return { body: packed(), gzip: false }
    case "plain-maps":
      return { body: plainPackr.pack(records), gzip: false }
    case "gzip":
      return { body: zlib.gzipSync(packed()), gzip: true }
    case "invalid-record": {
      const copy = [...records]
      copy.splice(hurt.at % (copy.length + 1), 0, hurt.record)
      return { body: recordsPackr.pack(copy), gzip: false }
    }
    case "truncate": {
      const body = packed()
      return { body: body.subarray(0, hurt.at % body.length), gzip: false }
    }
    case "flip": {
      const body = Uint8Array.from(packed())
      body[hurt.at % body.length]! ^= 1 << hurt.bit
      return { body, gzip: false }
    }
    case "bad-gzip": {
      const body = Uint8Array.from(zlib.gzipSync(packed()))
      body[10 + (hurt.at % Math.max(1, body.length - 10))]! ^= 0xff
      return { body, gzip: true }
    }
    case "random":
      return { body: hurt.bytes, gzip: false }
    case "not-an-array":
      return { body: recordsPackr.pack({ records }), gzip: false }
  }
}

/** How a request carries the key: mostly right. */
const auth = fc.oneof(
  { weight: 8, arbitrary: fc.constant("good") },
  { weight: 1, arbitrary: fc.constantFrom("none", "wrong", "malformed") }
)
const authHeader = (how: string): { [name: string]: string } =>
  how === "good" ? { authorization: `Bearer ${server.apiKey}` } : how === "wrong" ? { authorization: "Bearer sk-not-a-key" } : how === "malformed" ? { authorization: "Basic x" } : {}

/**
 * One POST of a batch to the case's run. The run id is chosen when the case runs, not when it is
 * generated, so that a case fast-check replays while shrinking meets a run of its own too.
 */
const batchRequest = fc.record({
  _tag: fc.constant("batch" as const),
  records: validRecords(CASE_RUN),
  hurt: damage,
  auth,
  encoding: fc.option(fc.constantFrom("gzip", "identity", "br", "GZIP", ""), { nil: undefined })
})

/** The request a generated batch is sent as, to run `runId`. */
const batchSent = (batch: typeof batchRequest extends fc.Arbitrary<infer B> ? B : never, runId: string): Sent => {
  const records = batch.records.map((record) => (record.kind === "run" ? { ...record, runId: runId as RunRecord["runId"] } : record))
  const { body, gzip } = bodyOf(records, batch.hurt)
  return {
    method: "POST",
    path: `/api/v1/projects/${PROJECT}/runs/${runId}/records`,
    headers: { ...authHeader(batch.auth), "content-type": "application/msgpack", "content-encoding": batch.encoding ?? (gzip ? "gzip" : "identity") },
    body
  }
}

// ---------------------------------------------------------------------------------------------
// Noise: any method, path, query and body, mostly near the API's routes.

const segment = fc.oneof(
  fc.constantFrom(PROJECT, "fuzz-run", "..", ".", "...", "%2e%2e", "%00", "a".repeat(129), "runs", "records", "history", "output", "", "%ZZ", "ü", "%F0%9F%92%A9"),
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/)
)
const route = fc.oneof(
  fc.tuple(segment, segment).map(([project, run]) => `/api/v1/projects/${project}/runs/${run}`),
  fc.tuple(segment, segment, fc.constantFrom("records", "history", "output", "blobs", "")).map(([project, run, tail]) => `/api/v1/projects/${project}/runs/${run}/${tail}`),
  fc.tuple(segment).map(([project]) => `/api/v1/projects/${project}/runs`),
  fc.constantFrom("/api/v1/whoami", "/api/v1/projects", "/api/v1", "/api/v2/whoami", "/healthz", "/readyz", "/", "/auth/session", "/auth/signout", "/projects/fuzz"),
  fc.array(segment, { maxLength: 6 }).map((parts) => `/${parts.join("/")}`)
)
const query = fc.oneof(
  fc.constant(""),
  fc.array(
    fc.tuple(
      fc.constantFrom("keys", "samples", "minStep", "maxStep", "after", "limit", "x", "samples[]", "token"),
      fc.oneof(fc.stringMatching(/^[0-9-]{0,20}$/), fc.constantFrom("1e3", "NaN", "Infinity", "-1", "0", "10001", "a,b,,c", "%", "9007199254740993"))
    ),
    { maxLength: 4 }
  ).map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}`)
)
/** A JSON body nested `depth` levels. */
const nested = (depth: number): string => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`
const noiseBody = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.json().map((text) => Buffer.from(text)),
  fc.integer({ min: 1, max: 5_000 }).map((depth) => Buffer.from(`{"name":"x","config":${nested(depth)},"tags":[],"notes":null,"group":null,"jobType":null,"host":null,"startedAt":1}`)),
  fc.constant(Buffer.alloc(0))
)
const noiseRequest = fc
  .record({
    method: fc.constantFrom("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "get"),
    path: fc.tuple(route, query).map(([p, q]) => p + q),
    auth,
    contentType: fc.constantFrom("application/json", "application/msgpack", "text/plain", "multipart/form-data", ""),
    encoding: fc.constantFrom("identity", "gzip", "deflate", ""),
    origin: fc.constantFrom("none", "same", "other", "null"),
    body: noiseBody
  })
  .map((spec) => ({
    _tag: "noise" as const,
    request: {
      method: spec.method,
      path: spec.path,
      headers: {
        ...authHeader(spec.auth),
        ...(spec.contentType === "" ? {} : { "content-type": spec.contentType }),
        ...(spec.encoding === "" ? {} : { "content-encoding": spec.encoding }),
        ...(spec.origin === "none" ? {} : { origin: spec.origin === "same" ? server.baseUrl : spec.origin === "other" ? "http://127.0.0.1:1" : "null" })
      },
      body: spec.method === "GET" || spec.method === "HEAD" ? new Uint8Array(0) : spec.body
    } satisfies Sent
  }))

// ---------------------------------------------------------------------------------------------
// The model: what the run holds after the accepted batches (the first record of each seq wins).

/** The records an accepted batch carried, as the server must have read them (null: not a valid batch). */
const accepted = (request: Sent): ReadonlyArray<UploadRecord> | null => {
  try {
    const bytes = request.headers["content-encoding"]?.trim().toLowerCase() === "gzip" ? zlib.gunzipSync(request.body) : request.body
    const batch: unknown = batchReader.unpack(bytes)
    if (!Array.isArray(batch)) return null
    const records: Array<UploadRecord> = []
    for (const entry of batch) {
      const decoded = decodeRecord(entry)
      if (decoded._tag === "Left") return null
      records.push(decoded.right)
    }
    return records
  } catch {
    return null
  }
}

let cases = 0

it(`answers ${RUNS} fuzzed cases without a 5xx, and stores exactly the batches it accepted`, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof({ weight: 3, arbitrary: batchRequest }, { weight: 2, arbitrary: noiseRequest }), { minLength: 1, maxLength: 6 }),
      async (steps) => {
        const runId = `fuzz-run-${cases++}`
        const held = new Map<number, Record>()
        for (const step of steps) {
          const request = step._tag === "batch" ? batchSent(step, runId) : step.request
          const answer = await send(request)
          expect(answer.status, `${request.method} ${request.path}: ${answer.body.toString("utf8").slice(0, 300)}`).toBeLessThan(500)
          if (step._tag !== "batch" || answer.status !== 200) continue
          const records = accepted(request)
          expect(records, `accepted a batch that is not valid: ${answer.body.toString("utf8")}`).not.toBeNull()
          for (const record of records!.flatMap((r) => (r.kind === "historyBlock" ? historyRows(r) : [r]))) if (!held.has(record.seq)) held.set(record.seq, record)
          let prefix = 0
          while (held.has(prefix)) prefix++
          expect(JSON.parse(answer.body.toString("utf8"))).toEqual({ ackSeq: prefix })
        }
        // One row a step: each key's value of the latest seq at that step, and the earliest ts of those.
        const byStep = new Map<number, Map<string, { seq: number; ts: number; value: Value }>>()
        for (const record of held.values()) {
          if (record.kind !== "history") continue
          const keys = byStep.get(record.step) ?? new Map()
          byStep.set(record.step, keys)
          for (const [key, value] of Object.entries(record.values)) {
            if ((keys.get(key)?.seq ?? -1) < record.seq) keys.set(key, { seq: record.seq, ts: record.ts, value })
          }
        }
        const expected = [...byStep.entries()]
          .filter(([, keys]) => keys.size > 0)
          .sort(([a], [b]) => a - b)
          .map(([step, keys]) => ({ step, ts: Math.min(...[...keys.values()].map((entry) => entry.ts)), values: Object.fromEntries([...keys].map(([key, entry]) => [key, entry.value])) }))
        const stored = (await server.history(PROJECT, runId)).rows
        expect(stored).toEqual(expected)
      }
    ),
    // FUZZ_SEED and FUZZ_PATH replay a failure that fast-check reported.
    { numRuns: RUNS, ...(process.env["FUZZ_SEED"] === undefined ? {} : { seed: Number(process.env["FUZZ_SEED"]), path: process.env["FUZZ_PATH"] ?? "", endOnFailure: true }) }
  )
}, 600_000)
