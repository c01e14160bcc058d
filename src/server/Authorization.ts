/**
 * Whom a request acts for, and whether it may: the API's two security middlewares (ReadAccess,
 * WriteAccess, declared in src/schemas/Api.ts), and `signedIn`, the dashboard pages' look at the
 * session cookie.
 *
 * Every API request is checked in this order, before its body is read:
 *   - with an `Authorization` header, by that alone: a Bearer key the KeyStore verifies, else 401
 *     (a bad key is refused even beside a valid session cookie);
 *   - without one, by the session cookie (Sessions.ts), else 401. For a write the cookie counts
 *     only with `Origin` naming this server and `Sec-Fetch-Site: same-origin` (403 otherwise): a
 *     page on another port of this host is "same site", so SameSite=Strict still sends it the
 *     cookie, and a `text/plain` POST needs no preflight;
 *   - the path's project, when it has one, must be in the principal's scope (403).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ReadAccess, SESSION_COOKIE, WriteAccess } from "../schemas/Api.js"
import { AccessRefused, Unauthenticated } from "../schemas/ApiErrors.js"
import { ProjectName, type WhoAmI } from "../schemas/Wire.js"
import { allows, KeyStore } from "./store/KeyStore.js"
import { stored } from "./Refusals.js"
import { Sessions } from "./store/SessionStore.js"

const needsKey = "this endpoint needs an API key: send `Authorization: Bearer <key>` (see `steplog keys create`), or sign in to the dashboard"
const decodeProject = Schema.decodeUnknownOption(ProjectName)

/**
 * Whom session `id` signs in, if it is live and its key (when it was made from one) is not revoked
 * since. The key is looked up afresh each time because `steplog keys revoke` changes the store from
 * another process; the keys table is small.
 */
const sessionPrincipal = (id: string) =>
  Effect.gen(function* () {
    const session = yield* Effect.flatMap(Sessions, (sessions) => sessions.get(id))
    if (Option.isNone(session)) return Option.none<WhoAmI>()
    const made = session.value.key
    if (made === null) return Option.some<WhoAmI>({ name: "sign-in link", projects: "*" })
    const key = (yield* Effect.flatMap(KeyStore, (keys) => keys.list)).find((k) => k.id === made.id && k.revokedAt === null)
    return Option.map(Option.fromNullable(key), ({ name, projects }): WhoAmI => ({ name, projects }))
  })

/** Whom the request's session cookie signs in, if anyone: what a dashboard page is shown to. */
export const signedIn = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
  const id = request.cookies[SESSION_COOKIE]
  return id === undefined ? Effect.succeedNone : stored(sessionPrincipal(id))
})

/** Refuses (403) a write whose cookie did not come from a page of this server. */
const fromOwnPages = (request: HttpServerRequest.HttpServerRequest) => {
  const origin = request.headers["origin"]
  const site = request.headers["sec-fetch-site"]
  let host: string | null = null
  try {
    if (origin !== undefined) host = new URL(origin).host
  } catch {
    // An opaque or malformed origin: not this server.
  }
  return host !== null && host === request.headers["host"] && site === "same-origin"
    ? Effect.void
    : Effect.fail(
      new AccessRefused({
        error: "cross_origin",
        detail: `a write with the dashboard's session cookie must come from the dashboard's own pages (Origin ${origin ?? "missing"}, Sec-Fetch-Site ${site ?? "missing"}); send an API key instead`
      })
    )
}

const make = (write: boolean) =>
  Effect.gen(function* () {
    const keys = yield* KeyStore
    const services = yield* Effect.context<KeyStore | Sessions>()

    /** The unrevoked key of the Authorization header. */
    const byKey = (request: HttpServerRequest.HttpServerRequest) =>
      Effect.gen(function* () {
        const header = request.headers["authorization"]
        if (header === undefined) return yield* new Unauthenticated({ detail: needsKey })
        // Parsed here, strictly: the builder's Bearer decoder only cuts off the header's first seven characters.
        const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
        if (match === null) {
          return yield* new Unauthenticated({ detail: "this endpoint needs an API key: send `Authorization: Bearer <key>` (see `steplog keys create`)" })
        }
        const key = yield* stored(keys.verify(match[1]!))
        if (Option.isNone(key)) return yield* new Unauthenticated({ detail: "the API key is unknown or revoked" })
        return { name: key.value.name, projects: key.value.projects } satisfies WhoAmI
      })

    /** The session of the cookie; the key instead when the request has one (the cookie scheme is tried after the key's failed). */
    const bySession = (request: HttpServerRequest.HttpServerRequest, id: string) =>
      Effect.gen(function* () {
        if (request.headers["authorization"] !== undefined) return yield* byKey(request)
        if (write) yield* fromOwnPages(request)
        const principal = yield* stored(sessionPrincipal(id).pipe(Effect.provide(services)))
        if (Option.isNone(principal)) return yield* new Unauthenticated({ detail: needsKey })
        return principal.value
      })

    /** The principal, after checking it may use the path's project (a bad project name is left to the path's schema). */
    const inScope = (principal: WhoAmI) =>
      Effect.flatMap(HttpRouter.params, (params) => {
        const project = decodeProject(params["project"])
        return Option.isNone(project) || allows(principal.projects, project.value)
          ? Effect.succeed(principal)
          : Effect.fail(
            new AccessRefused({
              error: "forbidden",
              detail: `the API key "${principal.name}" may not use project "${project.value}"; it is scoped to ${(principal.projects as ReadonlyArray<string>).join(", ")}`
            })
          )
      })

    return {
      bearer: () => HttpServerRequest.HttpServerRequest.pipe(Effect.flatMap(byKey), Effect.flatMap(inScope)),
      session: (id: Redacted.Redacted) =>
        HttpServerRequest.HttpServerRequest.pipe(Effect.flatMap((request) => bySession(request, Redacted.value(id))), Effect.flatMap(inScope))
    }
  })

/** ReadAccess over the KeyStore and Sessions of its context. */
export const layerRead = Layer.effect(ReadAccess, make(false))

/** WriteAccess over the KeyStore and Sessions of its context. */
export const layerWrite = Layer.effect(WriteAccess, make(true))
