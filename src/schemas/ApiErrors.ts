/**
 * Every way the server turns a request down, as the API declares it (Api.ts): one class per
 * status, its `error` code saying which refusal it is and `detail` what exactly was wrong. The
 * body on the wire is `{ "_tag": …, "error": code, "detail": … }`: the `{ error, detail }` every
 * client of the hand-written API read (the dashboard, older SDKs), plus the tag the declared client
 * decodes by. Each class carries its status as an HttpApiSchema annotation, read by the server
 * when it answers and by the client when it decodes.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as Schema from "effect/Schema"
import { Json } from "./Record.js"

/** A code that a class with only one has by default. */
const only = <const C extends string>(code: C) =>
  Schema.Literal(code).pipe(Schema.propertySignature, Schema.withConstructorDefault(() => code))

/** 400: a path, query, header or body that is not what the endpoint takes; nothing was changed. */
export class RequestInvalid extends Schema.TaggedError<RequestInvalid>()(
  "RequestInvalid",
  {
    error: Schema.Literal(
      "bad_project",
      "bad_run_id",
      "bad_query",
      "bad_request",
      "malformed_json",
      "invalid_metadata",
      "malformed_gzip",
      "malformed_msgpack",
      "malformed_batch",
      "invalid_record",
      "wrong_run",
      "over_limit",
      "invalid_session_request"
    ),
    detail: Json
  },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** 401: no API key or session, or one the server does not know (any more). */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()(
  "Unauthenticated",
  { error: only("unauthorized"), detail: Json },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** 403: a key (or session) used on a project outside its scope, or a browser request from another origin. */
export class AccessRefused extends Schema.TaggedError<AccessRefused>()(
  "AccessRefused",
  { error: Schema.Literal("forbidden", "cross_origin"), detail: Json },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** 404: no such run, asset or endpoint. */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { error: only("not_found"), detail: Json },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** 405: a known path asked with a method it does not take (the answer's `Allow` lists those it does). */
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()(
  "MethodNotAllowed",
  { error: only("method_not_allowed"), detail: Json },
  HttpApiSchema.annotations({ status: 405 })
) {}

/** 410: the run was deleted; no write of it is taken again, so a stale uploader cannot bring it back. */
export class Gone extends Schema.TaggedError<Gone>()(
  "Gone",
  { error: only("run_deleted"), detail: Json },
  HttpApiSchema.annotations({ status: 410 })
) {}

/** 413: a body over its cap, as sent or once inflated; the uploader sends the batch again in halves. */
export class BodyTooLarge extends Schema.TaggedError<BodyTooLarge>()(
  "BodyTooLarge",
  { error: only("payload_too_large"), detail: Json },
  HttpApiSchema.annotations({ status: 413 })
) {}

/** 415: a Content-Encoding or Content-Type the endpoint does not read. */
export class MediaUnsupported extends Schema.TaggedError<MediaUnsupported>()(
  "MediaUnsupported",
  { error: Schema.Literal("unsupported_encoding", "unsupported_media_type"), detail: Json },
  HttpApiSchema.annotations({ status: 415 })
) {}

/** 500: the store failed, or the server met a bug; the request changed nothing (the server logged it). */
export class ServerFailed extends Schema.TaggedError<ServerFailed>()(
  "ServerFailed",
  { error: Schema.Literal("storage_failed", "internal"), detail: Json },
  HttpApiSchema.annotations({ status: 500 })
) {}

/**
 * 507: the store's disk is full; nothing was stored. Not the client's fault and not for good: the
 * uploader keeps the batch and sends it again, and it is stored once space is freed.
 */
export class StoreFull extends Schema.TaggedError<StoreFull>()(
  "StoreFull",
  { error: only("insufficient_storage"), detail: Json },
  HttpApiSchema.annotations({ status: 507 })
) {}

/** Every refusal the API declares. */
export const ApiFailure = Schema.Union(
  RequestInvalid,
  Unauthenticated,
  AccessRefused,
  NotFound,
  MethodNotAllowed,
  Gone,
  BodyTooLarge,
  MediaUnsupported,
  ServerFailed,
  StoreFull
)
export type ApiFailure = typeof ApiFailure.Type

/** The status each refusal is answered with, by tag (from the classes' annotations). */
export const statusByTag: { readonly [Tag in ApiFailure["_tag"]]: number } = Object.fromEntries(
  ApiFailure.members.map((member) => [member.identifier, HttpApiSchema.getStatusError(member)])
) as { readonly [Tag in ApiFailure["_tag"]]: number }

/** The status a refusal is answered with. */
export const statusOf = (failure: ApiFailure): number => statusByTag[failure._tag]

/** A refusal as a person reads it: its code, then its detail. */
export const describeFailure = (failure: ApiFailure): string =>
  `${failure.error}: ${typeof failure.detail === "string" ? failure.detail : JSON.stringify(failure.detail)}`
