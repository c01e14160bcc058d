/**
 * The upload of one run stopped for good; its data stays on disk for `steplog sync`. One class for
 * every place that learns it: the Uploader that meets the refusal, the upload service that sends
 * it to the run's training process (Ipc.ts), and the training process that warns once and answers
 * `finish()` with it.
 */
import * as Schema from "effect/Schema"

/** Why an upload stopped. */
export const StopReason = Schema.Literal(
  /** The server refused a batch or the run's metadata for good (a 4xx other than 401, 408, 410, 413, 429). */
  "rejected",
  /** The run was deleted on the server (410): nothing more of it is taken, by this upload or a later sync. */
  "deleted",
  /** The server refused the API key, also after it was read again. */
  "key-refused",
  /** No API key for the server. */
  "no-key",
  /** One record alone is larger than the server takes. */
  "record-too-large",
  /** The run directory's journal cannot be read, or holds no run record. */
  "unreadable"
)
export type StopReason = typeof StopReason.Type

export class UploadStopped extends Schema.TaggedError<UploadStopped>()("UploadStopped", {
  runId: Schema.String,
  reason: StopReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.reason === "deleted"
      ? `steplog: run ${this.runId} was deleted on the server, so its upload stopped (${this.detail}). Logging to disk goes on; the run directory keeps every record.`
      : `steplog: uploading run ${this.runId} stopped: ${this.detail}. Logging to disk goes on; \`steplog sync\` uploads the run later.`
  }
}
