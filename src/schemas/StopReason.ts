/**
 * Why the upload of a run stopped for good, and what the person running it reads about it. Plain
 * code, no effect/Schema: the training process words the warning (runtime/ServiceLink.ts) without
 * loading it. UploadStopped.ts builds its schema from `STOP_REASONS`.
 */

/** Every reason an upload stops for good. */
export const STOP_REASONS = [
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
] as const
export type StopReason = (typeof STOP_REASONS)[number]

/** The warning for a stopped upload: what happened, and what becomes of the run's records. */
export const stopMessage = (stop: { readonly runId: string; readonly reason: StopReason; readonly detail: string }): string =>
  stop.reason === "deleted"
    ? `steplog: run ${stop.runId} was deleted on the server, so its upload stopped (${stop.detail}). Logging to disk goes on; the run directory keeps every record.`
    : `steplog: uploading run ${stop.runId} stopped: ${stop.detail}. Logging to disk goes on; \`steplog sync\` uploads the run later.`
