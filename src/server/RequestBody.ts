/**
 * A request body read under its caps (internal/body.ts counts it as it streams in, and inflates a
 * gzip body with a running count), refused as the API declares: over a cap 413, bad gzip 400. A
 * declared Content-Length over the cap is refused before a byte is read.
 *
 * Read from Node's request directly rather than HttpServerRequest's `stream`, `arrayBuffer` or
 * `json` (what HttpApiBuilder reads a declared payload with): those destroy the request, and with
 * it the connection, when reading stops early, so that the client never reads the 413; they also
 * turn a failure into a defect. Here the rest of a refused body is read and dropped instead (Node's
 * requestTimeout bounds how long that may take).
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import { BodyTooLarge, RequestInvalid } from "../schemas/ApiErrors.js"
import { readBody } from "./internal/body.js"

/** The body of `request`, inflated when `gzip`, at most `maxBytes` as sent and `maxInflated` once inflated. */
export const requestBody = (
  request: HttpServerRequest.HttpServerRequest,
  options: { readonly gzip: boolean; readonly maxBytes: number; readonly maxInflated: number }
): Effect.Effect<Uint8Array, BodyTooLarge | RequestInvalid> => {
  const declared = Number(request.headers["content-length"] ?? NaN)
  if (declared > options.maxBytes) {
    return Effect.fail(new BodyTooLarge({ detail: `the request body is ${declared} bytes, over the ${options.maxBytes}-byte cap` }))
  }
  const incoming = NodeHttpServerRequest.toIncomingMessage(request)
  // A socket error while reading: the client is gone, or sent something Node could not parse.
  const unreadable = (cause: unknown) => new RequestInvalid({ error: "bad_request", detail: `the request body could not be read: ${String(cause)}` })
  const chunks = NodeStream.fromReadable<RequestInvalid, Uint8Array>(() => incoming, unreadable, { closeOnDone: false })
  return readBody(chunks, options).pipe(
    Effect.catchTag("BodyRefused", (refused) =>
      Effect.fail(refused.reason === "bad-gzip" ? new RequestInvalid({ error: "malformed_gzip", detail: refused.detail }) : new BodyTooLarge({ detail: refused.detail }))),
    Effect.ensuring(Effect.sync(() => {
      if (!incoming.readableEnded) incoming.resume()
    }))
  )
}
