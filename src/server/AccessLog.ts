/**
 * The access log: one line per request once its answer is sent, at Info (`steplog server
 * --log-level` sets what is printed): method, path, status, milliseconds, bytes in (the body) and
 * out (head and body). The query is left out (a sign-in link's one-time token rides in it), and
 * so is every header (the Bearer key, the session cookie), so no secret reaches the log.
 *
 *   GET /api/v1/projects/mnist/runs 200 2.1 ms 0 B in 1,532 B out
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type * as http from "node:http"
import { performance } from "node:perf_hooks"

const bytes = new Intl.NumberFormat("en-US")

/** The access log line of one request. */
export const accessLine = (method: string, url: string, status: number, ms: number, bytesIn: number, bytesOut: number): string =>
  `${method} ${url.split("?")[0]} ${status} ${ms.toFixed(1)} ms ${bytes.format(bytesIn)} B in ${bytes.format(bytesOut)} B out`

/** Logs every request `server` answers from now until the layer is released. */
export const layer = (server: http.Server) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const log = Runtime.runSync(yield* Effect.runtime<never>())
      const onRequest = (request: http.IncomingMessage, response: http.ServerResponse) => {
        const started = performance.now()
        const socket = request.socket
        // Requests on one connection come one after another, so the socket's counts since this one began are its own.
        const readBefore = socket.bytesRead
        const writtenBefore = socket.bytesWritten
        response.once("close", () => {
          const declared = Number(request.headers["content-length"])
          const bytesIn = Number.isSafeInteger(declared) ? declared : socket.bytesRead - readBefore
          const line = accessLine(request.method ?? "?", request.url ?? "", response.statusCode, performance.now() - started, bytesIn, socket.bytesWritten - writtenBefore)
          log(Effect.logInfo(line))
        })
      }
      server.on("request", onRequest)
      yield* Effect.addFinalizer(() => Effect.sync(() => server.off("request", onRequest)))
    })
  )
