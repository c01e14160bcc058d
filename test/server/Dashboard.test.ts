/**
 * The dashboard's half of the server over real HTTP (127.0.0.1, a free port, the SQLite store in
 * memory and in-memory keys):
 * sign-in links and keys making session cookies, pages with and without a session, the API taking
 * the cookie under the same 401 / 403 rules (and for a write, only from the dashboard's own pages), sign-out, static files (and every way of climbing out
 * of /assets), and the security headers. The pages come from a fixture web root, so that the
 * tests do not depend on the frontend's build.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { Packr } from "msgpackr"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { storedKey } from "../../src/actors/Credentials.js"
import type { RunId } from "../../src/schemas/Record.js"
import type { ProjectName } from "../../src/schemas/Wire.js"
import * as ApiKeys from "../../src/server/store/KeyStore.js"
import * as SqliteStore from "../../src/server/store/sqlite/SqliteStore.js"
import * as Dashboard from "../../src/server/Dashboard.js"
import { RecordStore } from "../../src/server/store/RecordStore.js"
import * as Server from "../../src/server/Server.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("dashboard")

const importMap = `{"imports":{"uplot":"/assets/uplot/uPlot.esm.js"}}`
const indexHtml = `<!doctype html>
<html><head><meta charset="utf-8"><title>steplog</title>
<script type="importmap">${importMap}</script>
<script type="module" src="/assets/app.js"></script>
<link rel="stylesheet" href="/assets/style.css"></head>
<body><main id="app"></main></body></html>
`
const signinHtml = `<!doctype html>
<html><head><meta charset="utf-8"><title>steplog: sign in</title></head>
<body><form method="post" action="/auth/session"><input name="key" type="password"><button>Sign in</button></form></body></html>
`
const fixtures: { readonly [name: string]: string } = {
  "index.html": indexHtml,
  "signin.html": signinHtml,
  "app.js": `import uPlot from "uplot"\nconsole.log(uPlot)\n`,
  "style.css": "body { margin: 0 }\n",
  "charts/chart.js": "export const chart = 1\n"
}

const stylePolicy = "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
const basePolicy = `default-src 'self'; script-src 'self'; ${stylePolicy}`
const cookiePattern = /^steplog_session=([A-Za-z0-9_-]{43}); Path=\/; HttpOnly; SameSite=Strict; Max-Age=2592000$/

type Running = ManagedRuntime.ManagedRuntime<ApiKeys.KeyStore | RecordStore | Server.ServerInfo, unknown>
const start = async (webRoot: string, configDir: string) => {
  const env = { XDG_CONFIG_HOME: configDir }
  const runtime: Running = ManagedRuntime.make(
    Server.layerWith({ port: 0, env, say: () => Effect.void, webRoot }).pipe(
      Layer.provideMerge(SqliteStore.layerMemory)
    )
  )
  const baseUrl = (await runtime.runPromise(Server.ServerInfo)).baseUrl
  return { runtime, baseUrl, localKey: storedKey(baseUrl, env) ?? "" }
}

let server: Awaited<ReturnType<typeof start>>
let baseUrl = ""
/** A key for project "alpha" only. */
let alphaKey = ""

beforeAll(async () => {
  const webRoot = path.join(temp.dir(), "web")
  for (const [name, text] of Object.entries(fixtures)) {
    fs.mkdirSync(path.dirname(path.join(webRoot, name)), { recursive: true })
    fs.writeFileSync(path.join(webRoot, name), text)
  }
  server = await start(webRoot, path.join(temp.dir(), "config"))
  baseUrl = server.baseUrl
  alphaKey = (await server.runtime.runPromise(Effect.flatMap(ApiKeys.KeyStore, (keys) => keys.create({ name: "alpha-only", projects: ["alpha" as never] })))).key
  // Something to see: runs in "alpha" and "beta".
  for (const project of ["alpha", "beta"]) {
    const put = await fetch(`${baseUrl}/api/v1/projects/${project}/runs/r1`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.localKey}` },
      body: JSON.stringify({ name: "n", config: {}, tags: [], notes: null, group: null, jobType: null, host: "h", startedAt: 1 })
    })
    expect(put.status).toBe(200)
  }
})

afterAll(async () => {
  await server?.runtime.dispose()
})

const signInUrl = () => server.runtime.runPromise(Effect.flatMap(Server.ServerInfo, (info) => info.signInUrl))

/** GET (or another method) without following redirects, with the session cookie when given. */
const request = (target: string, init: RequestInit & { readonly session?: string } = {}) => {
  const { session, headers, ...rest } = init
  return fetch(target.startsWith("http") ? target : `${baseUrl}${target}`, {
    redirect: "manual",
    ...rest,
    headers: { ...(session !== undefined ? { cookie: `steplog_session=${session}` } : {}), ...(headers as Record<string, string> | undefined) }
  })
}

/** The session id of a response's Set-Cookie, after checking the cookie's attributes. */
const sessionOf = (response: Response): string => {
  const cookie = response.headers.get("set-cookie") ?? ""
  expect(cookie).toMatch(cookiePattern)
  return cookiePattern.exec(cookie)![1]!
}

/** A session from a fresh sign-in link. */
const operatorSession = async () => sessionOf(await request(await signInUrl()))

/** A session from an API key, through the JSON sign-in. */
const keySession = async (key: string) => {
  const response = await request("/auth/session", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key }) })
  expect(response.status).toBe(204)
  return sessionOf(response)
}

/** A request sent byte for byte as written (fetch would resolve `..` and `%2e%2e` before sending). */
const rawGet = (target: string) =>
  new Promise<{ status: number; location: string | undefined; body: string }>((resolve, reject) => {
    const { hostname, port } = new URL(baseUrl)
    const sent = http.request({ host: hostname, port, path: target, method: "GET" }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk) => (body += chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, location: response.headers.location, body }))
    })
    sent.on("error", reject)
    sent.end()
  })

describe("sign-in links", () => {
  it("set an HttpOnly SameSite=Strict session cookie and redirect (303) to the same path without the token", async () => {
    const url = await signInUrl()
    expect(url).toMatch(new RegExp(`^${baseUrl}/\\?token=[A-Za-z0-9_-]{43}$`))
    const response = await request(url)
    expect(response.status).toBe(303)
    expect(response.headers.get("location")).toBe("/")
    sessionOf(response)

    const token = new URL(await signInUrl()).searchParams.get("token")!
    const deep = await request(`/projects/alpha/runs/r1?view=charts&token=${token}&x=1`)
    expect(deep.status).toBe(303)
    expect(deep.headers.get("location")).toBe("/projects/alpha/runs/r1?view=charts&x=1")
    sessionOf(deep)
  })

  it("work once: a used token gets the sign-in page with 401 and no cookie", async () => {
    const url = await signInUrl()
    expect((await request(url)).status).toBe(303)
    const again = await request(url)
    expect(again.status).toBe(401)
    expect(again.headers.get("set-cookie")).toBeNull()
    expect(await again.text()).toBe(signinHtml)
    expect((await request("/?token=made-up")).status).toBe(401)
  })

  it("never redirect to another host, whatever the path", async () => {
    // Paths a browser would read as another host: redirected to / instead.
    for (const target of ["//evil.example/", "/\\evil.example/", "///evil.example"]) {
      const token = new URL(await signInUrl()).searchParams.get("token")!
      const response = await rawGet(`${target}?token=${token}`)
      expect([response.status, response.location], target).toEqual([303, "/"])
    }
  })
})

describe("pages", () => {
  it("are the sign-in page, with 401 and no data, without a session", async () => {
    for (const target of ["/", "/projects/alpha", "/projects/alpha/runs/r1", "/projects/alpha/compare?runs=r1,r2"]) {
      const response = await request(target)
      expect(response.status).toBe(401)
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8")
      expect(response.headers.get("cache-control")).toBe("no-store")
      expect(await response.text()).toBe(signinHtml)
    }
    expect((await request("/", { session: "A".repeat(43) })).status).toBe(401)
  })

  it("are the dashboard with a session, on every client route", async () => {
    const session = await operatorSession()
    for (const target of ["/", "/projects/alpha", "/projects/alpha/runs/r1", "/projects/alpha/compare?runs=r1,r2"]) {
      const response = await request(target, { session })
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8")
      expect(response.headers.get("cache-control")).toBe("no-store")
      expect(await response.text()).toBe(indexHtml)
    }
  })

  it("carry the security headers, the CSP allowing the import map by its SHA-256", async () => {
    const hash = crypto.createHash("sha256").update(importMap).digest("base64")
    const page = await request("/", { session: await operatorSession() })
    expect(page.headers.get("content-security-policy")).toBe(`default-src 'self'; script-src 'self' 'sha256-${hash}'; ${stylePolicy}`)
    const signin = await request("/")
    const redirect = await request(await signInUrl())
    const asset = await request("/assets/app.js")
    expect(signin.headers.get("content-security-policy")).toBe(basePolicy)
    for (const response of [page, signin, redirect, asset]) {
      expect(response.headers.get("x-content-type-options")).toBe("nosniff")
      // Not "no-referrer": under it a browser sends the sign-in form with `Origin: null`.
      expect(response.headers.get("referrer-policy")).toBe("same-origin")
      expect(response.headers.get("content-security-policy")).toMatch(/frame-ancestors 'none'$/)
    }
  })

  it("answer 500 naming the missing page and `npm run build` when the dashboard is not built", async () => {
    const empty = path.join(temp.dir(), "not-built")
    fs.mkdirSync(empty)
    const bare = await start(empty, path.join(temp.dir(), "config-bare"))
    try {
      const response = await fetch(`${bare.baseUrl}/`)
      expect(response.status).toBe(500)
      expect(await response.text()).toBe(`steplog server: the dashboard is not built: ${path.join(empty, "signin.html")} is missing; run \`npm run build\``)
    } finally {
      await bare.runtime.dispose()
    }
  })

  it("are found in dist/web/ of the package by default", () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
    expect(Dashboard.defaultWebRoot).toBe(path.join(root, "dist", "web") + path.sep)
  })
})

describe("the API with a session cookie", () => {
  it("answers for a sign-in link's session as for an every-project key, and 401 without one", async () => {
    const session = await operatorSession()
    const whoami = await request("/api/v1/whoami", { session })
    expect(whoami.status).toBe(200)
    expect(await whoami.json()).toMatchObject({ name: "sign-in link", projects: "*" })
    const projects = (await (await request("/api/v1/projects", { session })).json()) as { projects: Array<{ name: string }> }
    expect(projects.projects.map((p) => p.name)).toEqual(["alpha", "beta"])

    for (const cookie of [undefined, "A".repeat(43), ""]) {
      const response = await request("/api/v1/projects", cookie === undefined ? {} : { session: cookie })
      expect(response.status).toBe(401)
      expect(((await response.json()) as { error: string }).error).toBe("unauthorized")
    }
  })

  it("limits a session made from a project-scoped key to its projects (403 elsewhere) and ends it with the key's revocation", async () => {
    const session = await keySession(alphaKey)
    expect(await (await request("/api/v1/whoami", { session })).json()).toMatchObject({ name: "alpha-only", projects: ["alpha"] })
    expect((await request("/api/v1/projects/alpha/runs/r1", { session })).status).toBe(200)
    const forbidden = await request("/api/v1/projects/beta/runs/r1", { session })
    expect(forbidden.status).toBe(403)
    expect(((await forbidden.json()) as { error: string }).error).toBe("forbidden")
    const listed = (await (await request("/api/v1/projects", { session })).json()) as { projects: Array<{ name: string }> }
    expect(listed.projects.map((p) => p.name)).toEqual(["alpha"])

    const { key } = await server.runtime.runPromise(Effect.flatMap(ApiKeys.KeyStore, (keys) => keys.create({ name: "soon-revoked", projects: "*" })))
    const doomed = await keySession(key)
    expect((await request("/api/v1/whoami", { session: doomed })).status).toBe(200)
    await server.runtime.runPromise(Effect.flatMap(ApiKeys.KeyStore, (keys) => keys.revoke("soon-revoked")))
    expect((await request("/api/v1/whoami", { session: doomed })).status).toBe(401)
    expect((await request("/", { session: doomed })).status).toBe(401)
  })

  it("lets a Bearer key win over the cookie, and a bad key is refused even with a session", async () => {
    const session = await operatorSession()
    const scoped = await request("/api/v1/whoami", { session, headers: { authorization: `Bearer ${alphaKey}` } })
    expect(await scoped.json()).toMatchObject({ name: "alpha-only", projects: ["alpha"] })
    expect((await request("/api/v1/whoami", { session, headers: { authorization: "Bearer slk_wrong" } })).status).toBe(401)
  })
})

describe("API writes with a session cookie", () => {
  const batchOf = (runId: string, project: string) =>
    new Packr({ useRecords: true }).pack([
      { kind: "run", seq: 0, ts: 1, runId, project, name: "n", config: {}, tags: [], notes: null, group: null, jobType: null, host: "h", pid: 1, argv: [], gitCommit: null, sdkVersion: "0.1.0", resumed: false },
      { kind: "history", seq: 1, ts: 2, step: 0, values: { loss: 1 } }
    ])
  const held = (project: string, runId: string) =>
    server.runtime.runPromise(Effect.flatMap(RecordStore, (store) => store.getRun(project as ProjectName, runId as RunId)))

  it("refuses a text/plain POST of a batch from another port of 127.0.0.1 (403), and stores nothing", async () => {
    const session = await operatorSession()
    const otherPort = `http://127.0.0.1:${Number(new URL(baseUrl).port) + 1}`
    // What a page on another port sends: no preflight for text/plain, the cookie along ("same site").
    const fromOtherPort = await request("/api/v1/projects/alpha/runs/csrf/records", {
      method: "POST",
      session,
      headers: { "content-type": "text/plain", origin: otherPort, "sec-fetch-site": "same-site" },
      body: batchOf("csrf", "alpha")
    })
    expect(fromOtherPort.status).toBe(403)
    expect(((await fromOtherPort.json()) as { error: string }).error).toBe("cross_origin")
    const put = await request("/api/v1/projects/alpha/runs/csrf", {
      method: "PUT",
      session,
      headers: { "content-type": "text/plain", origin: otherPort, "sec-fetch-site": "same-site" },
      body: JSON.stringify({ name: "n", config: {}, tags: [], notes: null, group: null, jobType: null, host: "h", startedAt: 1 })
    })
    expect(put.status).toBe(403)
    expect(Option.isNone(await held("alpha", "csrf"))).toBe(true)
  })

  it("takes a write with the cookie only with its own Origin and Sec-Fetch-Site: same-origin both", async () => {
    const session = await operatorSession()
    const post = (runId: string, headers: Record<string, string>) =>
      request(`/api/v1/projects/alpha/runs/${runId}/records`, { method: "POST", session, headers: { "content-type": "application/msgpack", ...headers }, body: batchOf(runId, "alpha") })
    const refused: Array<Record<string, string>> = [
      {},
      { origin: baseUrl },
      { "sec-fetch-site": "same-origin" },
      { origin: "null", "sec-fetch-site": "same-origin" },
      { origin: "http://evil.example", "sec-fetch-site": "same-origin" },
      { origin: baseUrl, "sec-fetch-site": "same-site" }
    ]
    for (const [i, headers] of refused.entries()) {
      expect((await post(`refused-${i}`, headers)).status, JSON.stringify(headers)).toBe(403)
      expect(Option.isNone(await held("alpha", `refused-${i}`))).toBe(true)
    }
    const own = await post("own", { origin: baseUrl, "sec-fetch-site": "same-origin" })
    expect([own.status, await own.json()]).toEqual([200, { ackSeq: 2 }])
    // A read needs no such headers: the dashboard's fetches are GETs.
    expect((await request("/api/v1/projects/alpha/runs/own", { session })).status).toBe(200)
    // A Bearer key writes from anywhere: it is not sent by a browser on its own.
    const keyed = await request("/api/v1/projects/alpha/runs/keyed/records", {
      method: "POST",
      headers: { authorization: `Bearer ${server.localKey}`, "content-type": "text/plain", origin: "http://evil.example" },
      body: batchOf("keyed", "alpha")
    })
    expect(keyed.status).toBe(200)
  })
})

describe("POST /auth/session and /auth/signout", () => {
  it("signs in with JSON (204) or the sign-in form (303 to /), and refuses an unknown key (401, or 303 to /?error=key)", async () => {
    const form = await request("/auth/session", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ key: server.localKey }).toString()
    })
    expect(form.status).toBe(303)
    expect(form.headers.get("location")).toBe("/")
    expect((await request("/", { session: sessionOf(form) })).status).toBe(200)

    const refusedForm = await request("/auth/session", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "key=slk_nope"
    })
    expect([refusedForm.status, refusedForm.headers.get("location"), refusedForm.headers.get("set-cookie")]).toEqual([303, "/?error=key", null])
    const emptyForm = await request("/auth/session", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" })
    expect(emptyForm.headers.get("location")).toBe("/?error=key")

    const refused = await request("/auth/session", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: "slk_nope" }) })
    expect(refused.status).toBe(401)
    expect(refused.headers.get("set-cookie")).toBeNull()
    expect(((await refused.json()) as { error: string }).error).toBe("unauthorized")
  })

  it("refuses a malformed body (400), another content type (415) and another origin (403)", async () => {
    const post = (body: string, headers: Record<string, string>) => request("/auth/session", { method: "POST", headers, body })
    expect((await post("{not json", { "content-type": "application/json" })).status).toBe(400)
    expect((await post(JSON.stringify({ key: 7 }), { "content-type": "application/json" })).status).toBe(400)
    expect((await post(server.localKey, { "content-type": "text/plain" })).status).toBe(415)
    const crossSite = await post(JSON.stringify({ key: server.localKey }), { "content-type": "application/json", origin: "http://evil.example" })
    expect(crossSite.status).toBe(403)
    expect(crossSite.headers.get("set-cookie")).toBeNull()
    const ownOrigin = await post(JSON.stringify({ key: server.localKey }), { "content-type": "application/json", origin: baseUrl })
    expect(ownOrigin.status).toBe(204)
  })

  it("takes a form from its own page by Sec-Fetch-Site, even with an opaque Origin, and refuses every other site", async () => {
    const form = (headers: Record<string, string>) =>
      request("/auth/session", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams({ key: server.localKey }).toString()
      })
    // What a browser sends from a page under a no-referrer policy.
    const opaque = await form({ origin: "null", "sec-fetch-site": "same-origin" })
    expect(opaque.status).toBe(303)
    sessionOf(opaque)
    expect((await form({ origin: baseUrl, "sec-fetch-site": "same-origin" })).status).toBe(303)
    const refused: Array<Record<string, string>> = [
      { origin: "null" },
      { origin: "null", "sec-fetch-site": "cross-site" },
      { origin: "http://evil.example", "sec-fetch-site": "same-origin" },
      { origin: baseUrl, "sec-fetch-site": "cross-site" },
      { origin: baseUrl, "sec-fetch-site": "same-site" },
      { "sec-fetch-site": "cross-site" }
    ]
    for (const headers of refused) {
      const response = await form(headers)
      expect([response.status, response.headers.get("set-cookie")], JSON.stringify(headers)).toEqual([403, null])
    }
  })

  it("signs out: the session ends and the cookie is cleared", async () => {
    const session = await operatorSession()
    const out = await request("/auth/signout", { method: "POST", session })
    expect(out.status).toBe(204)
    expect(out.headers.get("set-cookie")).toBe("steplog_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    expect((await request("/api/v1/whoami", { session })).status).toBe(401)
    expect((await request("/", { session })).status).toBe(401)
    // Signing out without a session is harmless.
    expect((await request("/auth/signout", { method: "POST" })).status).toBe(204)
  })

  it("answers a wrong method with 405 and an unknown /auth path with 404", async () => {
    const get = await request("/auth/session")
    expect([get.status, get.headers.get("allow")]).toEqual([405, "POST"])
    expect((await request("/auth/signout")).status).toBe(405)
    expect((await request("/auth/elsewhere", { session: await operatorSession() })).status).toBe(404)
    expect((await request("/", { method: "POST" })).status).toBe(404)
  })
})

describe("/assets", () => {
  it("serves the web root's files with their content types, no session needed", async () => {
    const cases: Array<[string, string]> = [
      ["/assets/app.js", "text/javascript; charset=utf-8"],
      ["/assets/style.css", "text/css; charset=utf-8"],
      ["/assets/charts/chart.js", "text/javascript; charset=utf-8"],
      ["/assets/index.html", "text/html; charset=utf-8"]
    ]
    for (const [target, contentType] of cases) {
      const response = await request(target)
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toBe(contentType)
      expect(response.headers.get("cache-control")).toBe("no-cache")
      expect(await response.text()).toBe(fixtures[target.slice("/assets/".length)])
    }
  })

  it("serves uPlot's module and stylesheet from the uplot package", async () => {
    const dist = path.dirname(createRequire(import.meta.url).resolve("uplot"))
    const js = await request("/assets/uplot/uPlot.esm.js")
    expect([js.status, js.headers.get("content-type")]).toEqual([200, "text/javascript; charset=utf-8"])
    expect(await js.text()).toBe(fs.readFileSync(path.join(dist, "uPlot.esm.js"), "utf8"))
    const css = await request("/assets/uplot/uPlot.min.css")
    expect([css.status, css.headers.get("content-type")]).toEqual([200, "text/css; charset=utf-8"])
    expect(await css.text()).toBe(fs.readFileSync(path.join(dist, "uPlot.min.css"), "utf8"))
    expect((await request("/assets/uplot/uPlot.cjs.js")).status).toBe(404)
  })

  it("answers 404 for a missing file and a directory", async () => {
    for (const target of ["/assets/missing.js", "/assets/charts", "/assets/charts/", "/assets/", "/assets"]) {
      expect((await request(target)).status, target).toBe(404)
    }
  })

  it("answers 404 to every path that climbs out of the web root", async () => {
    const attempts = [
      "/assets/../package.json",
      "/assets/%2e%2e/package.json",
      "/assets/%2E%2E/%2E%2E/package.json",
      "/assets/..%2fpackage.json",
      "/assets/..%2F..%2Fpackage.json",
      "/assets/charts/../../package.json",
      "/assets/./app.js",
      "/assets/.%2e/package.json",
      "/assets/..\\package.json",
      "/assets/%5c..%5cpackage.json",
      "/assets/uplot/../../package.json",
      "/assets/uplot/..%2fpackage.json",
      "/assets//etc/passwd",
      "/assets/%2fetc%2fpasswd"
    ]
    for (const target of attempts) {
      const response = await rawGet(target)
      expect(response.status, target).toBe(404)
      expect(response.body, target).not.toMatch(/"name": "steplog"|root:/)
    }
  })
})
