/**
 * The upload group of the API (src/schemas/Api.ts) over the RecordStore: a run's metadata (PUT),
 * a batch of its records (POST), and deleting it (DELETE; then its writes answer 410). WriteAccess has checked the key and the project, and the
 * builder has decoded the path and the headers, before either runs. A refused request changes
 * nothing: a batch is decoded whole before the store sees any of it.
 *
 * Both read their bodies raw (`handleRaw`), though their payloads are declared: under the caps of
 * RequestBody.ts, which the builder's payload reading cannot keep (it reads the whole body, turns
 * a body over a cap or a malformed one into a 500, and does not inflate gzip); and the JSON of a
 * PUT is taken whatever its Content-Type, as before. Each is then decoded with the very schema it
 * declares (RunMetadata, UploadRecord), after a check of its nesting depth (`limits.maxNesting`):
 * decoding recurses once a level, and a config nested a few thousand levels overflowed the stack.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Unpackr } from "msgpackr"
import { Api, limits, Principal } from "../schemas/Api.js"
import { BodyTooLarge, Gone, NotFound, RequestInvalid } from "../schemas/ApiErrors.js"
import { decodeUnknownEither } from "../schemas/Decode.js"
import { MAX_BATCH_RECORDS, MAX_KEYS_PER_RUN, overLimit } from "../schemas/Limits.js"
import { RECORD_KINDS, UploadRecord } from "../schemas/Record.js"
import { totalRows } from "../schemas/UploadRecords.js"
import { RunMetadata } from "../schemas/Wire.js"
import { asHistoryRecord, overKeyCap } from "./internal/historyRow.js"
import { RecordStore, type RunGone } from "./store/RecordStore.js"
import { storageFailed } from "./Refusals.js"
import { StoredKinds } from "./StoredKinds.js"
import { requestBody } from "./RequestBody.js"

// The SDK packs batches with msgpackr's record extension (as the journal does); a standard encoder
// (another language's client) sends plain maps, which Unpackr would read as Map objects that no
// schema takes: `mapsAsObjects` reads them as objects (msgpackr renames a `__proto__` key).
const unpackr = new Unpackr({ useRecords: true, mapsAsObjects: true })
const decodeRecord = decodeUnknownEither(UploadRecord)
const decodeMetadata = Schema.decodeUnknownEither(RunMetadata)
const formatParseError = (error: ParseResult.ParseError): string => ParseResult.TreeFormatter.formatErrorSync(error)

/**
 * Whether `value` nests at most `max` arrays and objects deep; typed arrays (a history block's
 * columns) are leaves. Iterative, so that its own stack never overflows.
 */
export const nestsWithin = (value: unknown, max: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (node === null || typeof node !== "object" || ArrayBuffer.isView(node)) continue
    if (depth > max) return false
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, depth + 1])
  }
  return true
}

const tooDeep = `nested deeper than ${limits.maxNesting} levels`

/** A write of a deleted run, refused for good. */
const gone = (deleted: RunGone) => Effect.fail(new Gone({ detail: `${deleted.message}; nothing more of it is stored` }))

/** The length a msgpack array header at the start of `bytes` declares, or null when they start otherwise. */
const arrayLength = (bytes: Uint8Array): number | null => {
  const head = bytes[0]
  if (head === undefined) return null
  if (head >= 0x90 && head <= 0x9f) return head & 0x0f
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (head === 0xdc && bytes.length >= 3) return view.getUint16(1)
  if (head === 0xdd && bytes.length >= 5) return view.getUint32(1)
  return null
}

/** The upload group's handlers, over the RecordStore of its context. */
export const layer = HttpApiBuilder.group(Api, "upload", (handlers) =>
  Effect.gen(function* () {
    const store = yield* RecordStore
    const storedKinds = yield* StoredKinds
    // Only a server with a kind switched off looks at kinds here; the schema refuses unknown ones.
    const refusing = storedKinds.size < RECORD_KINDS.length
    return handlers
      .handleRaw("putRun", ({ path, request }) =>
        Effect.gen(function* () {
          const body = yield* requestBody(request, { gzip: false, maxBytes: limits.maxMetadataBytes, maxInflated: limits.maxMetadataBytes })
          let json: unknown
          try {
            json = JSON.parse(Buffer.from(body).toString("utf8"))
          } catch (error) {
            return yield* new RequestInvalid({ error: "malformed_json", detail: `the body is not JSON: ${(error as Error).message}` })
          }
          if (!nestsWithin(json, limits.maxNesting)) return yield* new RequestInvalid({ error: "invalid_metadata", detail: `the body is ${tooDeep}` })
          const metadata = decodeMetadata(json)
          if (metadata._tag === "Left") return yield* new RequestInvalid({ error: "invalid_metadata", detail: formatParseError(metadata.left) })
          return yield* store.putRun(path.project, path.runId, metadata.right).pipe(Effect.catchTags({ RunGone: gone, StoreFailed: storageFailed }))
        }))
      .handleRaw("postRecords", ({ headers, path, request }) =>
        Effect.gen(function* () {
          const body = yield* requestBody(request, {
            gzip: headers["content-encoding"] === "gzip",
            maxBytes: limits.maxBodyBytes,
            maxInflated: limits.maxInflatedBytes
          })
          const declared = arrayLength(body)
          if (declared !== null && declared > MAX_BATCH_RECORDS) {
            return yield* new BodyTooLarge({ detail: `the batch holds ${declared} records, over the ${MAX_BATCH_RECORDS}-record cap; send it in smaller batches` })
          }
          let batch: unknown
          try {
            batch = unpackr.unpack(body)
          } catch (error) {
            return yield* new RequestInvalid({ error: "malformed_msgpack", detail: `the body is not msgpack: ${(error as Error).message}` })
          }
          if (!Array.isArray(batch)) return yield* new RequestInvalid({ error: "malformed_batch", detail: "the body must be a msgpack array of records" })

          const records: Array<UploadRecord> = []
          for (let index = 0; index < batch.length; index++) {
            const overLimitAt = (record: UploadRecord) => {
              const over = overLimit(record)
              return over === undefined ? undefined : new RequestInvalid({ error: "over_limit", detail: { index, message: `record ${index} of the batch: ${over}` } })
            }
            const kind: unknown = refusing ? (batch[index] as { readonly kind?: unknown } | null)?.kind : undefined
            if (typeof kind === "string" && !storedKinds.has(kind)) {
              return yield* new RequestInvalid({
                error: "invalid_record",
                detail: { index, message: `record ${index} of the batch: this server does not store "${kind}" records (it stores ${[...storedKinds].join(", ")}; whoami lists them)` }
              })
            }
            if (overKeyCap(batch[index])) {
              return yield* new RequestInvalid({
                error: "over_limit",
                detail: { index, message: `record ${index} of the batch: it has more than ${MAX_KEYS_PER_RUN} keys; a run may have ${MAX_KEYS_PER_RUN}` }
              })
            }
            // A plain history row is checked cheaply; the rest by the schema, a history block once for
            // all of its rows.
            const row = asHistoryRecord(batch[index])
            if (row !== null) {
              const over = overLimitAt(row)
              if (over !== undefined) return yield* over
              records.push(row)
              continue
            }
            const invalid = (message: string) => new RequestInvalid({ error: "invalid_record", detail: { index, message: `record ${index} of the batch: ${message}` } })

            if (!nestsWithin(batch[index], limits.maxNesting)) return yield* invalid(`it is ${tooDeep}`)
            const decoded = decodeRecord(batch[index])
            if (decoded._tag === "Left") return yield* invalid(formatParseError(decoded.left))
            const record = decoded.right
            if (record.kind === "run" && (record.runId !== path.runId || record.project !== path.project)) {
              return yield* new RequestInvalid({
                error: "wrong_run",
                detail: {
                  index,
                  message: `record ${index} of the batch opens run "${record.runId}" of project "${record.project}", not "${path.runId}" of "${path.project}"`
                }
              })
            }
            const over = overLimitAt(record)
            if (over !== undefined) return yield* over
            records.push(record)
          }
          // A block counts as the records it stands for: one of 550,000 rows made a 13 MB transaction
          // whose commit held the server's one thread for ~110 ms (bench/isolation.ts).
          const rows = totalRows(records)
          if (rows > MAX_BATCH_RECORDS) {
            return yield* new BodyTooLarge({ detail: `the batch holds ${rows} records (a history block counting its rows), over the ${MAX_BATCH_RECORDS}-record cap; send it in smaller batches` })
          }
          return yield* store.ingest(path.project, path.runId, records).pipe(
            Effect.catchTags({
              BatchOverLimit: (over) => new RequestInvalid({ error: "over_limit", detail: over.detail }),
              RunGone: gone,
              StoreFailed: storageFailed
            })
          )
        }))
      .handle("deleteRun", ({ path }) =>
        store.deleteRun(path.project, path.runId).pipe(
          Effect.catchTags({ RunGone: gone, StoreFailed: storageFailed }),
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new NotFound({ detail: `no run "${path.runId}" in project "${path.project}"` })),
            // Who deleted what, for the operator: a deletion cannot be undone.
            onSome: (deleted) =>
              Effect.flatMap(Principal, (principal) =>
                Effect.as(Effect.logInfo(`steplog server: run ${path.project}/${path.runId} (${deleted.records} records) deleted by "${principal.name}"`), deleted))
          }))
        ))
  }))
