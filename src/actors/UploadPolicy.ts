/**
 * What the Uploader does with each way a POST can go wrong (DESIGN.md, "Upload protocol"), and the
 * one retry `Schedule` it sends under:
 *
 *   network error, timeout, 408, 429, 5xx but 501, an answer that is not an Ack  → UploadFailed, retried
 *   413                                                                         → BatchTooLarge, the batch is halved
 *   401                                                                         → KeyRefused, the key is reloaded once
 *   any other 4xx, 501                                                          → UploadRejected, the run's upload stops
 *                                                                                 (410: the run was deleted on the server)
 *
 * By status, whether the API declares the answer (a refusal decoded by the client) or not (a load
 * balancer's 502 page, a 429 with `Retry-After`: ApiClient.ts hands those over with their status
 * and headers). A declared refusal carries no headers, so a status whose headers matter
 * (`Retry-After`) is one the API must leave undeclared.
 *
 * A request that gets no answer counts as a timeout after `requestTimeout`: 10 s, plus the body's
 * bytes at 1 MB/s (a slow link's worst), so that a request accepted and never answered (a server
 * stopping, a dead peer behind a balancer) is sent again within seconds rather than minutes.
 *
 * Retry delays: exponential from `base` (250 ms) doubling, each multiplied by a random factor in
 * [0.8, 1.2] (Effect's `Random`, so a test pins it with `Random.fixed`), then capped at `cap`
 * (30 s). A `Retry-After` header (seconds or an HTTP-date) replaces the computed delay, bounded
 * only by `retryAfterCap` (10 min, the service's default upload deadline) so that a bogus date
 * cannot park a run for years. Retries go on until the caller's deadline: uploading is worth
 * waiting for, and the journal keeps the data meanwhile.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { type ApiCallFailure, refusalOf } from "./ApiClient.js"

/** A failure worth retrying: the network, a timeout, or a server that is busy or broken for now. */
export class UploadFailed extends Data.TaggedError("UploadFailed")<{
  readonly reason: "network" | "timeout" | "status" | "bad-answer"
  readonly status?: number
  /** The delay the server asked for with `Retry-After`, if it did. */
  readonly retryAfter?: Duration.Duration
  readonly detail: string
}> {
  override get message(): string {
    return `steplog: upload failed (${this.status === undefined ? this.reason : `HTTP ${this.status}`}): ${this.detail}`
  }
}

/** The server refused the batch as too large (413): it is sent again in halves. */
export class BatchTooLarge extends Data.TaggedError("BatchTooLarge")<{ readonly records: number; readonly detail: string }> {}

/** The server refused the API key (401). */
export class KeyRefused extends Data.TaggedError("KeyRefused")<{ readonly detail: string }> {}

/** The server refused the request for good (a 4xx other than 401, 408, 413 and 429; or 501). */
export class UploadRejected extends Data.TaggedError("UploadRejected")<{ readonly status: number; readonly detail: string }> {}

/** Every way one POST of a batch can fail. */
export type UploadFailure = UploadFailed | BatchTooLarge | KeyRefused | UploadRejected

/** The knobs of the retry schedule. */
export interface RetryOptions {
  readonly base: Duration.DurationInput
  readonly cap: Duration.DurationInput
  readonly retryAfterCap: Duration.DurationInput
}

/** 250 ms doubling, capped at 30 s; `Retry-After` honoured up to 10 minutes. */
export const defaultRetry: RetryOptions = { base: "250 millis", cap: "30 seconds", retryAfterCap: "10 minutes" }

/**
 * The retry policy: retries `UploadFailed` only, with jittered exponential delays capped at
 * `cap`, a server's `Retry-After` winning over the computed delay. Its output is the failure.
 */
export const retrySchedule = (options: RetryOptions = defaultRetry): Schedule.Schedule<UploadFailure, UploadFailure> => {
  const cap = Duration.decode(options.cap)
  const retryAfterCap = Duration.decode(options.retryAfterCap)
  return Schedule.exponential(options.base, 2).pipe(
    Schedule.jittered,
    // Capped after the jitter, so that no delay ever exceeds `cap`.
    Schedule.modifyDelay((_, delay) => Duration.min(delay, cap)),
    Schedule.passthrough<Duration.Duration, UploadFailure, never>,
    Schedule.modifyDelay((failure, delay) =>
      failure._tag === "UploadFailed" && failure.retryAfter !== undefined ? Duration.min(failure.retryAfter, retryAfterCap) : delay
    ),
    Schedule.whileInput((failure: UploadFailure) => failure._tag === "UploadFailed")
  )
}

/**
 * The delay a `Retry-After` header asks for: whole seconds, or an HTTP-date (`now` in ms since
 * the epoch, from the Clock). A date in the past is no delay; a value that is neither is ignored.
 */
export const parseRetryAfter = (value: string | undefined, now: number): Duration.Duration | undefined => {
  if (value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Duration.seconds(Number(text))
  const date = Date.parse(text)
  if (Number.isNaN(date)) return undefined
  return Duration.millis(Math.max(0, date - now))
}

/** What a non-2xx answer means, by its status; `now` (ms, from the Clock) dates a `Retry-After`. */
export const classifyStatus = (
  status: number,
  headers: { readonly [name: string]: string | undefined },
  detail: string,
  records: number,
  now: number
): UploadFailure => {
  if (status === 401) return new KeyRefused({ detail })
  if (status === 413) return new BatchTooLarge({ records, detail })
  if (status === 408 || status === 429 || (status >= 500 && status !== 501)) {
    const retryAfter = parseRetryAfter(headers["retry-after"], now)
    return new UploadFailed({ reason: "status", status, detail, ...(retryAfter === undefined ? {} : { retryAfter }) })
  }
  return new UploadRejected({ status, detail })
}

/** How long a request of `bodyBytes` may go unanswered: 10 s plus the body at 1 MB/s. */
export const requestTimeout = (bodyBytes: number): Duration.Duration => Duration.millis(10_000 + bodyBytes / 1_000)

/**
 * What a failed call of the API client means: a refusal (declared or not) by its status, as
 * `classifyStatus` says; no answer is a network failure; an answer that could not be read, a bad
 * answer; both retried.
 */
export const classifyFailure = (failure: ApiCallFailure, records: number, now: number): Effect.Effect<UploadFailure> =>
  Effect.map(refusalOf(failure), Option.match({
    onSome: (refusal) => classifyStatus(refusal.status, refusal.headers, `HTTP ${refusal.status} ${refusal.detail}`.trim(), records, now),
    onNone: () =>
      failure._tag === "RequestError"
        ? new UploadFailed({ reason: "network", detail: failure.message })
        : new UploadFailed({ reason: "bad-answer", detail: `the answer could not be read: ${failure.message}` })
  }))
