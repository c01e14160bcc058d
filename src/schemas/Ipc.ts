/**
 * The messages between a training process and the upload service as the training process writes
 * and reads them: the encoded form of IpcSchema.ts's schemas, which define them. This module holds
 * no effect/Schema, so that an online run does not load it: that module and the fast-check it
 * imports cost a fresh training process ~150 ms at `init()` (~200 ms of CPU) and ~5 MB of heap,
 * which each of its major garbage collections marks again. `decodeFromService` checks a message in
 * plain code; test/schemas/Ipc.test.ts checks that it accepts what the schema accepts, and only that.
 */
import type { FromService, ToService } from "./IpcSchema.js"
import { STOP_REASONS } from "./StopReason.js"

/** A message to the service, as written on the line (the service decodes it with ToService). */
export type ToServiceLine = typeof ToService.Encoded
/** A message from the service, as read from the line. */
export type FromServiceLine = typeof FromService.Encoded

type Fields = { readonly [key: string]: unknown }

const isString = (value: unknown): value is string => typeof value === "string"
const isInt = (value: unknown): boolean => Number.isSafeInteger(value)
const isCount = (value: unknown): boolean => isInt(value) && (value as number) >= 0
const isStopReason = (value: unknown): boolean => (STOP_REASONS as ReadonlyArray<unknown>).includes(value)

/** Whether each field of a message of its `_tag` holds what FromService says (an optional field may be absent). */
const fromServiceFields: { readonly [tag in FromServiceLine["_tag"]]: (message: Fields) => boolean } = {
  Welcome: (m) => isInt(m["pid"]),
  Progress: (m) =>
    isString(m["runId"]) &&
    isCount(m["ackSeq"]) &&
    isCount(m["records"]) &&
    typeof m["done"] === "boolean" &&
    (m["kept"] === undefined || isCount(m["kept"])) &&
    (m["keptKinds"] === undefined || (Array.isArray(m["keptKinds"]) && m["keptKinds"].every(isString))),
  UploadNotice: (m) => isString(m["runId"]) && isString(m["message"]),
  UploadStopped: (m) => isString(m["runId"]) && isStopReason(m["reason"]) && isString(m["detail"])
}

/** A message from the service, checked; null when FromService would refuse it (IpcSchema.describeUndecodable says why). */
export const decodeFromService = (raw: unknown): FromServiceLine | null => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null
  const message = raw as Fields
  const tag = message["_tag"]
  if (!isString(tag) || !Object.hasOwn(fromServiceFields, tag)) return null
  return fromServiceFields[tag as FromServiceLine["_tag"]](message) ? (raw as FromServiceLine) : null
}
