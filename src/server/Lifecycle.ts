/**
 * A server process's life as a load balancer and a process manager see it. `/healthz` answers 200
 * while the process runs; `/readyz` 200 while its store also answers and it is not stopping, else
 * 503, so that a balancer sends it nothing more.
 *
 * Stopping (the server's layer released: SIGTERM from a process manager or a rolling deploy,
 * Ctrl-C) never hangs: the listener closes (no new connection), idle keep-alive connections close,
 * the requests in flight get `grace` (default 10 s) to finish, answering with `Connection: close`,
 * and then every connection still open is closed, whatever its client is doing (a body that never
 * arrives held a server open for good before). A batch cut off that way is not acknowledged, and
 * the client sends it again to another replica or after the restart.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as http from "node:http"
import { RecordStore } from "./store/RecordStore.js"

/** How long requests in flight may go on once the server is stopping, unless a setting says. */
export const DEFAULT_GRACE = Duration.seconds(10)

/** Whether this server process is stopping. */
export class Lifecycle extends Context.Tag("steplog/server/Lifecycle")<Lifecycle, { readonly stopping: () => boolean }>() {}

/**
 * The lifecycle of `server`, counting its requests in flight from now on: `layer` gives the
 * Lifecycle service; `stopOnRelease`, when released, stops as the module comment says. Build
 * `stopOnRelease` after the layers that serve requests, so that it is released before them: the
 * handlers stay in place while the requests in flight finish.
 */
export const make = (server: http.Server, grace: Duration.DurationInput = DEFAULT_GRACE) => {
  let stopping = false
  /** Answers not yet finished: those still to write their head say `Connection: close` once stopping. */
  const inFlight = new Set<http.ServerResponse>()
  let onIdle: (() => void) | null = null
  const closing = (response: http.ServerResponse) => {
    if (!response.headersSent) response.setHeader("connection", "close")
  }
  server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => {
    inFlight.add(response)
    if (stopping) closing(response)
    response.once("close", () => {
      inFlight.delete(response)
      if (inFlight.size === 0) onIdle?.()
    })
  })
  const idle = Effect.async<void>((resume) => {
    if (inFlight.size === 0) return resume(Effect.void)
    onIdle = () => resume(Effect.void)
    return Effect.sync(() => void (onIdle = null))
  })
  const stop = Effect.gen(function* () {
    stopping = true
    inFlight.forEach(closing)
    server.close()
    server.closeIdleConnections()
    // Finalizers run uninterruptibly, and a timeout must interrupt the wait it ends.
    yield* Effect.timeoutOption(Effect.interruptible(idle), grace)
    server.closeAllConnections()
  })
  return {
    layer: Layer.succeed(Lifecycle, { stopping: () => stopping }),
    stopOnRelease: Layer.scopedDiscard(Effect.addFinalizer(() => stop))
  }
}

const status = (ok: boolean, detail: string) =>
  HttpServerResponse.unsafeJson({ status: ok ? "ok" : "unavailable", detail }, { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } })

/** `GET /healthz`: the process is up. */
export const healthz = Effect.succeed(status(true, "the server process is running"))

/** `GET /readyz`: the process can serve: not stopping, and its store answers. */
export const readyz = Effect.gen(function* () {
  if ((yield* Lifecycle).stopping()) return status(false, "the server is stopping")
  return yield* (yield* RecordStore).reachable.pipe(
    Effect.as(status(true, "the server and its store answer")),
    Effect.catchAll((failure) => Effect.succeed(status(false, `the store does not answer: ${failure.message}`)))
  )
})
