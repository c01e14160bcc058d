/**
 * The server's web face: the dashboard pages, its sign-in (/auth/…) and its static files
 * (/assets/…), with every /api/ request handed to the API (ApiServer.ts) as it is. `app` is what
 * the server serves.
 *
 *   GET  /assets/<name>   a file of the web root (the built dist/web/), or one of uPlot's two files
 *                         from the `uplot` package; no session needed, no data in them
 *   POST /auth/session    an API key (JSON `{"key"}` or the sign-in form's `key=`) → a session cookie
 *   POST /auth/signout    → the session ended, the cookie cleared
 *   GET  anything else    a page: `?token=` (a sign-in link) → a session and a 303 to the same path
 *                         without it; a session → index.html (the client routes from there);
 *                         otherwise signin.html with 401, which holds no data
 *
 * Every answer here carries the security headers: a CSP allowing scripts only from this origin
 * plus, on a page, the page's own inline scripts by their SHA-256 (index.html's import map). Hashes
 * rather than a nonce because the page is served as built, byte for byte: nothing is rewritten, and
 * the hash is computed from the very file served. POSTs to /auth/ from another origin are refused
 * (the cookie is SameSite=Strict, which keeps it off cross-site requests; this keeps a cross-site
 * form from signing a browser in with someone else's key). Refusals are the API's (Refusals.ts).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { AccessRefused, MediaUnsupported, MethodNotAllowed, NotFound, RequestInvalid, ServerFailed, Unauthenticated } from "../schemas/ApiErrors.js"
import { SESSION_COOKIE } from "../schemas/Api.js"
import { SessionRequest } from "../schemas/Wire.js"
import { ApiApp } from "./ApiServer.js"
import { signedIn } from "./Authorization.js"
import * as Lifecycle from "./Lifecycle.js"
import { answer, answerFailures, noEndpoint, stored } from "./Refusals.js"
import { requestBody } from "./RequestBody.js"
import { KeyStore } from "./store/KeyStore.js"
import { SESSION_TTL, Sessions } from "./store/SessionStore.js"

/**
 * The built dashboard: dist/web/ of this package, found from this module's own location (src/server/
 * under vitest and dist/server/ once built are both two levels below the package root).
 */
export const defaultWebRoot = fileURLToPath(new URL("../../dist/web/", import.meta.url))

/** A page `npm run build` makes is not in the web root: the dashboard cannot be shown. */
class DashboardNotBuilt extends Data.TaggedError("DashboardNotBuilt")<{ readonly file: string }> {
  override get message(): string {
    return `steplog server: the dashboard is not built: ${this.file} is missing; run \`npm run build\``
  }
}

// ---------------------------------------------------------------------------------------------
// Security headers

/** The policy of every dashboard answer; a page adds its inline scripts' hashes to script-src. */
const contentSecurityPolicy = (scriptHashes: ReadonlyArray<string> = []) =>
  [
    "default-src 'self'",
    ["script-src 'self'", ...scriptHashes].join(" "),
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'"
  ].join("; ")

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy(),
  "x-content-type-options": "nosniff",
  // A sign-in link's token is in the URL until the 303 takes it out: no other site sees a URL of
  // ours. Not "no-referrer", under which a browser sends `Origin: null` with the sign-in form.
  "referrer-policy": "same-origin"
} as const

/** The answer with every security header it does not set itself. */
const secured = (response: HttpServerResponse.HttpServerResponse) =>
  HttpServerResponse.setHeaders(response, { ...securityHeaders, ...response.headers })

/** `'sha256-…'` of each inline `<script>` (one without `src`) of a page, as CSP matches them. */
const inlineScriptHashes = (html: string): Array<string> =>
  [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi)]
    .filter((match) => !/\bsrc\s*=/i.test(match[1]!))
    .map((match) => `'sha256-${crypto.createHash("sha256").update(match[2]!, "utf8").digest("base64")}'`)

// ---------------------------------------------------------------------------------------------
// Files

const contentTypes: { readonly [extension: string]: string } = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2"
}
const contentTypeOf = (file: string): string => contentTypes[path.extname(file).toLowerCase()] ?? "application/octet-stream"

/** The file's bytes, or none when there is no such file (a directory counts as none). */
const readFile = (file: string) =>
  Effect.tryPromise({ try: () => fs.promises.readFile(file), catch: (cause) => cause as NodeJS.ErrnoException }).pipe(
    Effect.map(Option.some),
    Effect.catchIf((error) => ["ENOENT", "EISDIR", "ENOTDIR"].includes(error.code ?? ""), () => Effect.succeedNone)
  )

/** A name under /assets/: path segments of letters, digits, '.', '-', '_', none of them only dots. */
const assetName = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/
const isAssetName = (name: string): boolean => assetName.test(name) && !name.split("/").some((segment) => /^\.+$/.test(segment))

/** uPlot's files the browser loads, served from the `uplot` package's dist/ as `/assets/uplot/<name>`. */
const uplotFiles = new Set(["uPlot.esm.js", "uPlot.min.css"])
let uplotDir: string | undefined
/** The `uplot` package's dist/ (its main module lives there), resolved as Node resolves imports from here. */
const uplotDist = Effect.try({
  try: () => (uplotDir ??= path.dirname(createRequire(import.meta.url).resolve("uplot"))),
  catch: () => new ServerFailed({ error: "internal", detail: "the `uplot` package is not installed; run `npm install`" })
})

const asset = (webRoot: string) =>
  Effect.gen(function* () {
    const name = (yield* HttpRouter.params)["*"] ?? ""
    const notFound = new NotFound({ detail: `no asset "${name}"` })
    if (!isAssetName(name)) return yield* notFound
    const uplot = /^uplot\/(.*)$/.exec(name)
    let file: string
    if (uplot !== null) {
      if (!uplotFiles.has(uplot[1]!)) return yield* notFound
      file = path.join(yield* uplotDist, uplot[1]!)
    } else {
      file = path.resolve(webRoot, name)
      // Never reached with a name that passed isAssetName; kept as the last word on traversal.
      if (!file.startsWith(path.resolve(webRoot) + path.sep)) return yield* notFound
    }
    const bytes = yield* readFile(file)
    if (Option.isNone(bytes)) return yield* notFound
    return HttpServerResponse.uint8Array(bytes.value, { contentType: contentTypeOf(file), headers: { "cache-control": "no-cache" } })
  })

/** One of the two pages, with the CSP its inline scripts need; 500 naming the file when it is not built. */
const htmlPage = (webRoot: string, name: "index.html" | "signin.html", status: number) =>
  Effect.gen(function* () {
    const file = path.join(webRoot, name)
    const bytes = yield* readFile(file)
    if (Option.isNone(bytes)) return yield* new DashboardNotBuilt({ file })
    const html = Buffer.from(bytes.value).toString("utf8")
    return HttpServerResponse.text(html, {
      status,
      contentType: "text/html; charset=utf-8",
      headers: { "cache-control": "no-store", "content-security-policy": contentSecurityPolicy(inlineScriptHashes(html)) }
    })
  }).pipe(
    Effect.catchTag("DashboardNotBuilt", (error) =>
      Effect.as(Effect.logError(error.message), HttpServerResponse.text(error.message, { status: 500 })))
  )

// ---------------------------------------------------------------------------------------------
// Sessions

const sessionCookie = (id: string) =>
  `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Duration.toSeconds(SESSION_TTL)}`
const clearedCookie = `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`

const seeOther = (location: string, cookie?: string) =>
  HttpServerResponse.redirect(location, { status: 303, ...(cookie !== undefined ? { headers: { "set-cookie": cookie } } : {}) })

/** A path to redirect to as it is; anything that a browser could read as another host becomes `/`. */
const ownPath = (pathname: string): string =>
  /^\/(?![/\\])[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*$/.test(pathname) ? pathname : "/"

/**
 * Refuses (403) a request a browser sent from another origin: one whose `Sec-Fetch-Site` (a header
 * no page can set) is not "same-origin", or whose Origin is another host. An opaque `Origin: null`
 * passes only beside `Sec-Fetch-Site: same-origin` (a page of ours under a no-referrer policy sends
 * it so); a request with neither header comes from a non-browser client.
 */
const sameOrigin = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const origin = request.headers["origin"]
  const fetchSite = request.headers["sec-fetch-site"]
  let host: string | null = null
  try {
    if (origin !== undefined && origin !== "null") host = new URL(origin).host
  } catch {
    // Another opaque origin: not this server.
  }
  const ownOrigin = origin === undefined || host === request.headers["host"] || (origin === "null" && fetchSite === "same-origin")
  if (!ownOrigin || (fetchSite !== undefined && fetchSite !== "same-origin")) {
    const from = origin ?? `a ${fetchSite} page`
    return yield* new AccessRefused({ error: "cross_origin", detail: `a sign-in request from ${from} was refused: the dashboard signs in only from its own pages` })
  }
})

const decodeSessionRequest = Schema.decodeUnknownEither(Schema.parseJson(SessionRequest))
/** A key is a short line; anything longer is not one. */
const maxSignInBytes = 16 * 1024

/** `POST /auth/session`: JSON → 204 or a 401 ApiError; the sign-in form → 303 to `/` or to `/?error=key`. */
const signIn = Effect.gen(function* () {
  yield* sameOrigin
  const request = yield* HttpServerRequest.HttpServerRequest
  const type = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
  const form = type === "application/x-www-form-urlencoded"
  if (!form && type !== "application/json") {
    return yield* new MediaUnsupported({
      error: "unsupported_media_type",
      detail: "send the key as JSON {\"key\": \"<api key>\"} or as the form field key=<api key>"
    })
  }
  const body = yield* requestBody(request, { gzip: false, maxBytes: maxSignInBytes, maxInflated: maxSignInBytes })
  const text = Buffer.from(body).toString("utf8")
  let key: string | null
  if (form) {
    key = new URLSearchParams(text).get("key")
  } else {
    const decoded = decodeSessionRequest(text)
    if (decoded._tag === "Left") {
      return yield* new RequestInvalid({ error: "invalid_session_request", detail: ParseResult.TreeFormatter.formatErrorSync(decoded.left) })
    }
    key = decoded.right.key
  }
  const info = key === null ? Option.none() : yield* stored(Effect.flatMap(KeyStore, (keys) => keys.verify(key.trim())))
  if (Option.isNone(info)) {
    return form ? seeOther("/?error=key") : yield* new Unauthenticated({ detail: "the API key is unknown or revoked" })
  }
  const id = yield* Effect.flatMap(Sessions, (sessions) => sessions.open(info.value))
  return form ? seeOther("/", sessionCookie(id)) : HttpServerResponse.empty({ status: 204, headers: { "set-cookie": sessionCookie(id) } })
})

/** `POST /auth/signout`: ends the cookie's session, if any, and clears the cookie. */
const signOut = Effect.gen(function* () {
  yield* sameOrigin
  const request = yield* HttpServerRequest.HttpServerRequest
  const id = request.cookies[SESSION_COOKIE]
  if (id !== undefined) yield* Effect.flatMap(Sessions, (sessions) => sessions.drop(id))
  return HttpServerResponse.empty({ status: 204, headers: { "set-cookie": clearedCookie } })
})

// ---------------------------------------------------------------------------------------------
// Pages

const page = (webRoot: string) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const at = request.url.indexOf("?")
    const pathname = at === -1 ? request.url : request.url.slice(0, at)
    // What /assets/* and the /auth/ routes leave over here is not a page either.
    if (/^\/(assets|auth)(\/|$)/.test(pathname)) return yield* noEndpoint(request)
    const search = new URLSearchParams(at === -1 ? "" : request.url.slice(at + 1))
    const token = search.get("token")
    if (token !== null) {
      const id = yield* Effect.flatMap(Sessions, (sessions) => sessions.redeemToken(token))
      if (Option.isSome(id)) {
        search.delete("token")
        const rest = search.toString()
        return seeOther(`${ownPath(pathname)}${rest === "" ? "" : `?${rest}`}`, sessionCookie(id.value))
      }
    }
    const session = yield* signedIn
    return yield* Option.isSome(session) ? htmlPage(webRoot, "index.html", 200) : htmlPage(webRoot, "signin.html", 401)
  })

// ---------------------------------------------------------------------------------------------
// The app

/** A route that takes POST only: any other method gets 405 and `Allow: POST`. */
const postOnly = <E, R>(pattern: `/${string}`, handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  HttpRouter.all(
    pattern,
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      request.method === "POST"
        ? handler
        : Effect.succeed(answer(new MethodNotAllowed({ detail: `${request.method} is not allowed on ${pattern}; allowed: POST` }), { allow: "POST" })))
  )

const isApi = (url: string): boolean => url === "/api" || url.startsWith("/api/") || url.startsWith("/api?")

/** Everything the server serves: /api/ by the API, the balancer's /healthz and /readyz, the rest by the dashboard, over the web root's files. */
export const app = (webRoot: string = defaultWebRoot) => {
  const dashboard = answerFailures(
    HttpRouter.empty.pipe(
      postOnly("/auth/session", signIn),
      postOnly("/auth/signout", signOut),
      HttpRouter.get("/healthz", Lifecycle.healthz),
      HttpRouter.get("/readyz", Lifecycle.readyz),
      HttpRouter.get("/assets/*", asset(webRoot)),
      HttpRouter.get("*", page(webRoot))
    )
  ).pipe(Effect.map(secured))
  const api = Effect.flatMap(ApiApp, (served) => served)
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => Effect.if(isApi(request.url), { onTrue: () => api, onFalse: () => dashboard }))
}
