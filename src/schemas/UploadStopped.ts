/**
 * The upload of one run stopped for good; its data stays on disk for `steplog sync`. One class for
 * every place that learns it: the Uploader that meets the refusal, and the upload service that
 * sends it to the run's training process (IpcSchema.ts), which warns once (StopReason.ts words it)
 * and answers `finish()` with it.
 */
import * as Schema from "effect/Schema"
import { STOP_REASONS, stopMessage } from "./StopReason.js"

/** Why an upload stopped (StopReason.ts). */
export const StopReason = Schema.Literal(...STOP_REASONS)

export class UploadStopped extends Schema.TaggedError<UploadStopped>()("UploadStopped", {
  runId: Schema.String,
  reason: StopReason,
  detail: Schema.String
}) {
  override get message(): string {
    return stopMessage(this)
  }
}
