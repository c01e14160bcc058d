/**
 * The schemas of the messages between a training process and the upload service (DESIGN.md, "The
 * service process"), one JSON line each over the service's socket (runtime/ServiceSocket.ts). Only
 * offsets and counts cross the boundary, never records: the journal on disk is the hand-off. The
 * service decodes what it receives with these schemas, so a message from another steplog version
 * is refused rather than misread. The training process reads and writes the same lines without
 * loading effect/Schema (Ipc.ts), checked against these schemas by test/schemas/Ipc.test.ts.
 *
 *   training process → service   OpenRun · Flushed · Finished
 *   service → training process   Welcome · Progress · UploadNotice · UploadStopped (UploadStopped.ts: the error itself, reason and all)
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { decodeUnknownEither } from "./Decode.js"
import { UploadStopped } from "./UploadStopped.js"

const Offset = Schema.NonNegativeInt

/** Start (or, after a service restart, resume) uploading the run in `runDir`. */
export class OpenRun extends Schema.TaggedClass<OpenRun>()("OpenRun", {
  runId: Schema.String,
  runDir: Schema.String,
  baseUrl: Schema.String,
  /** The key from the run's option or STEPLOG_API_KEY; null: the service's Auth reads the credentials file. */
  apiKey: Schema.NullOr(Schema.String),
  /** Bytes of whole frames in the journal when the message was sent. */
  flushed: Offset
}) {}

/** The training process has flushed the run's journal up to `offset` bytes. */
export class Flushed extends Schema.TaggedClass<Flushed>()("Flushed", { runId: Schema.String, offset: Offset }) {}

/** The run has ended: its journal is closed at `offset` bytes; report `done` once all of it is acknowledged. */
export class Finished extends Schema.TaggedClass<Finished>()("Finished", { runId: Schema.String, offset: Offset }) {}

/** What the training process tells its service. */
export const ToService = Schema.Union(OpenRun, Flushed, Finished)
export type ToService = typeof ToService.Type

/**
 * How far a run's upload is: the server holds every record with seq < `ackSeq`; the journal holds
 * `records` as read so far. `done`: the run finished and every record of it is acknowledged.
 */
export class Progress extends Schema.TaggedClass<Progress>()("Progress", {
  runId: Schema.String,
  ackSeq: Schema.NonNegativeInt,
  records: Schema.NonNegativeInt,
  done: Schema.Boolean,
  /** Records kept on disk because the server does not store their kinds (`keptKinds`). */
  kept: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }),
  keptKinds: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
}) {}

/** The first message on every connection: which process the service is (for the runs' debug.log). */
export class Welcome extends Schema.TaggedClass<Welcome>()("Welcome", { pid: Schema.Int }) {}

/** A warning for the person running the training (its stderr), once: the upload goes on. */
export class UploadNotice extends Schema.TaggedClass<UploadNotice>()("UploadNotice", { runId: Schema.String, message: Schema.String }) {}

/** What the service tells the training process. */
export const FromService = Schema.Union(Welcome, Progress, UploadNotice, UploadStopped)
export type FromService = typeof FromService.Type

/** Decoders for each direction; a message that fails them is ignored by the receiver, and logged (`describeUndecodable`). */
export const decodeToService = decodeUnknownEither(ToService)
export const decodeFromService = decodeUnknownEither(FromService)
/** The service's encoder: plain objects, each written as one JSON line. */
export const encodeFromService = Schema.encodeSync(FromService)

/** What a debug.log says of a message that failed to decode: its first bytes and why. */
export const describeUndecodable = (raw: unknown, error: ParseResult.ParseError): string => {
  let text: string
  try {
    text = JSON.stringify(raw) ?? String(raw)
  } catch {
    text = String(raw)
  }
  const head = text.length > 200 ? `${text.slice(0, 200)}… (${text.length} characters)` : text
  return `${head}: ${ParseResult.TreeFormatter.formatErrorSync(error).split("\n").slice(0, 6).join(" ")}`
}
