/**
 * Online runs against a server that is not always there or not always willing, with real
 * processes: a steplog server in this process (SQLite in a temp dir, 127.0.0.1), a training process
 * running test/fixtures/onlineRun.mjs, and the upload service it starts. The server is stopped and
 * started again on the same port over the same database, put behind a front that answers 429, or
 * given a key it refuses. The journal on disk is the oracle of what must arrive.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { storedKey } from "../../src/actors/Credentials.js"
import * as ApiKeys from "../../src/server/store/KeyStore.js"
import * as Server from "../../src/server/Server.js"
import { killChildren, type Child } from "../support/child.js"
import { poll } from "../support/poll.js"
import { alive, journalRows, serviceTracker, startedRun, trainOnline } from "../support/service.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("outage")
const services = serviceTracker()

/** A steplog server on SQLite that a test can stop and start again (same port, same database). */
interface TestServer {
  readonly baseUrl: string
  readonly port: number
  /** The "local" key its first start stored in the credentials under `config`. */
  readonly key: string
  /** XDG_CONFIG_HOME holding that key. */
  readonly config: string
  readonly stop: () => Promise<void>
  readonly start: () => Promise<void>
  /** Makes a key scoped to `projects`. */
  readonly createKey: (projects: ReadonlyArray<string>) => Promise<string>
}

const servers = new Set<TestServer>()

const startServer = async (): Promise<TestServer> => {
  const dataDir = temp.file("data")
  const config = temp.file("xdg")
  const env = { XDG_CONFIG_HOME: config }
  let runtime: ManagedRuntime.ManagedRuntime<Server.ServerInfo, unknown> | null = null
  let port = 0
  const start = async () => {
    const made = ManagedRuntime.make(Server.layer({ port, dataDir, env, say: () => Effect.void }))
    const { baseUrl } = await made.runPromise(Server.ServerInfo)
    runtime = made
    port = Number(new URL(baseUrl).port)
  }
  const stop = async () => {
    const running = runtime
    runtime = null
    await running?.dispose()
  }
  await start()
  const baseUrl = `http://127.0.0.1:${port}`
  const server: TestServer = {
    baseUrl,
    port,
    key: storedKey(baseUrl, env) ?? "",
    config,
    stop,
    start,
    // Through the data directory's own connection, as `steplog keys create` does.
    createKey: (projects) =>
      Effect.runPromise(
        Effect.flatMap(ApiKeys.KeyStore, (keys) => keys.create({ projects: projects as ApiKeys.KeyScope })).pipe(
          Effect.map((created) => created.key),
          Effect.provide(Server.storeLayer({ dataDir }))
        )
      )
  }
  servers.add(server)
  return server
}

/**
 * A front of `target` on its own port: answers 429 with `Retry-After` to the first `refuse`
 * requests of each method (the metadata PUT and the record POSTs alike), forwards the rest, and
 * notes when each came.
 */
const startFront = async (target: string, refuse: number, retryAfter: string) => {
  const seen: Array<{ readonly method: string; readonly url: string; readonly at: number; readonly status: number }> = []
  const front = http.createServer((request, response) => {
    const at = Date.now()
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      if (seen.filter((earlier) => earlier.method === request.method).length < refuse) {
        seen.push({ method: request.method!, url: request.url!, at, status: 429 })
        response.writeHead(429, { "retry-after": retryAfter, "content-type": "application/json" })
        response.end(JSON.stringify({ error: "RateLimited", detail: "slow down" }))
        return
      }
      const headers: Record<string, string> = {}
      for (const name of ["authorization", "content-type", "content-encoding"]) {
        const value = request.headers[name]
        if (typeof value === "string") headers[name] = value
      }
      const body = chunks.length === 0 ? undefined : Buffer.concat(chunks)
      fetch(`${target}${request.url}`, { method: request.method!, headers, ...(body === undefined ? {} : { body }) }).then(
        async (answer) => {
          seen.push({ method: request.method!, url: request.url!, at, status: answer.status })
          const text = Buffer.from(await answer.arrayBuffer())
          response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" })
          response.end(text)
        },
        (error: Error) => {
          response.writeHead(502)
          response.end(error.message)
        }
      )
    })
  })
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve))
  const port = (front.address() as AddressInfo).port
  fronts.add(front)
  return { baseUrl: `http://127.0.0.1:${port}`, seen }
}

const fronts = new Set<http.Server>()

afterEach(async () => {
  await killChildren()
  services.killAll()
  for (const front of fronts) {
    front.closeAllConnections()
    await new Promise((resolve) => front.close(resolve))
  }
  fronts.clear()
  for (const server of servers) await server.stop()
  servers.clear()
})

/** Starts the training fixture online against `baseUrl` with `key` (and the credentials under `config`). */
const train = (baseUrl: string, key: string, config: string, env: { readonly [key: string]: string }): Child =>
  trainOnline({ baseUrl, key, config, workDir: temp.dir() }, env)

const started = startedRun

const finished = async (child: Child, timeoutMs = 60_000) => {
  const line = await child.waitForLine((l) => l.startsWith("finished "), timeoutMs)
  return JSON.parse(line.slice("finished ".length)) as { uploaded: boolean; records: number; pending?: number; hint?: string }
}

/** The `logged <n> <slowest ms> <at>` lines of the child so far. */
const ticks = (child: Child) =>
  child.lines.filter((line) => line.startsWith("logged ")).map((line) => {
    const [, n, slowest, at] = line.split(" ")
    return { n: Number(n), slowest: Number(slowest), at: Number(at) }
  })

const get = async (server: TestServer, url: string) => {
  const response = await fetch(`${server.baseUrl}${url}`, { headers: { authorization: `Bearer ${server.key}` } })
  expect(response.status).toBe(200)
  return response.json()
}

/** Every history row the server holds of the run, page after page. */
const serverRows = async (server: TestServer, runId: string) => {
  const rows: Array<{ step: number; values: unknown }> = []
  for (let minStep: number | null = 0; minStep !== null;) {
    const page = (await get(server, `/api/v1/projects/svc/runs/${runId}/history?minStep=${minStep}`)) as {
      rows: Array<{ step: number; values: unknown }>
      next: number | null
    }
    for (const { step, values } of page.rows) rows.push({ step, values })
    minStep = page.next
  }
  return rows
}

const expectedRows = (n: number) => Array.from({ length: n }, (_, i) => ({ step: i, values: { i, loss: 1 / (i + 1) } }))

/** Whether anything answers HTTP at `baseUrl`. */
const answers = (baseUrl: string): Promise<boolean> =>
  fetch(`${baseUrl}/api/v1/whoami`).then(() => true, () => false)

describe("the server stopped for ten seconds mid-run", () => {
  it("does not slow log(), and every record arrives exactly once after the restart", async () => {
    const OUTAGE_MS = 10_000
    const server = await startServer()
    const stopFile = temp.file("stop")
    const child = train(server.baseUrl, server.key, server.config, { ROWS: "0", PER_TICK: "10", TICK_MS: "5", STOP_FILE: stopFile })
    const { runId, runDir } = await started(child)
    await poll("an upload to begin", () => (fs.existsSync(path.join(runDir, "upload.cursor")) ? true : undefined))
    const firstTick = ticks(child)[0]!.at

    const down = Date.now()
    await server.stop()
    expect(await answers(server.baseUrl)).toBe(false)
    // The outage is what is under test: it lasts its ten seconds whatever happens meanwhile.
    await poll("the outage to last", () => (Date.now() - down >= OUTAGE_MS ? true : undefined), OUTAGE_MS + 5_000)
    const up = Date.now()
    await server.start()
    const loggedAtRestart = ticks(child).at(-1)!.n

    // Some rows after the restart, then the run ends.
    await child.waitForLine((l) => l.startsWith("logged ") && Number(l.split(" ")[1]) >= loggedAtRestart + 200)
    fs.writeFileSync(stopFile, "")
    const result = await finished(child)
    const logged = ticks(child).at(-1)!.n
    // run + rows + summary + exit
    expect(result).toEqual({ uploaded: true, records: logged + 3, written: logged + 3, dropped: 0 })
    expect((await child.exited()).code).toBe(0)

    // Every record exactly once: the server's history is the journal's, and the counts agree.
    const journal = journalRows(runDir)
    expect(journal.rows).toEqual(expectedRows(logged))
    expect(await serverRows(server, runId)).toEqual(journal.rows)
    const detail = (await get(server, `/api/v1/projects/svc/runs/${runId}`)) as { state: string; records: number; historyRows: number }
    expect(detail).toMatchObject({ state: "finished", records: journal.records, historyRows: logged })

    // log() did not wait for the server: no call was anywhere near the outage's length, and the
    // child logged through the outage at the same order of rate as before it.
    const all = ticks(child)
    const slowest = Math.max(...all.map((tick) => tick.slowest))
    expect(slowest).toBeLessThan(OUTAGE_MS / 10)
    const rowsIn = (from: number, to: number) => {
      const inside = all.filter((tick) => tick.at >= from && tick.at <= to)
      return inside.length < 2 ? 0 : inside.at(-1)!.n - inside[0]!.n
    }
    const rateBefore = rowsIn(firstTick, down) / (down - firstTick)
    const rateDuring = rowsIn(down, up) / (up - down)
    expect(rateDuring).toBeGreaterThan(rateBefore / 3)
  }, 90_000)
})

describe("a server answering 429 with Retry-After: 2", () => {
  it("is waited for as told, then everything arrives", async () => {
    const server = await startServer()
    const front = await startFront(server.baseUrl, 2, "2")
    const child = train(front.baseUrl, server.key, server.config, { ROWS: "300", PER_TICK: "100", TICK_MS: "10" })
    const { runId } = await started(child)
    const result = await finished(child)
    expect(result).toEqual({ uploaded: true, records: 303, written: 303, dropped: 0 })
    expect(await serverRows(server, runId)).toEqual(expectedRows(300))
    // Each request after a 429 came no sooner than the two seconds asked for, and not much later
    // (Retry-After replaces the jittered delay; the rest is the time to notice and send).
    for (const method of ["PUT", "POST"]) {
      const requests = front.seen.filter((request) => request.method === method)
      expect(requests.slice(0, 3).map((request) => request.status), method).toEqual([429, 429, 200])
      for (let i = 0; i < 2; i++) {
        const wait = requests[i + 1]!.at - requests[i]!.at
        expect(wait, `${method} ${i + 2} after a 429: ${JSON.stringify(front.seen)}`).toBeGreaterThanOrEqual(2000)
        expect(wait, `${method} ${i + 2} after a 429: ${JSON.stringify(front.seen)}`).toBeLessThan(3500)
      }
    }
    expect((await child.exited()).code).toBe(0)
  }, 60_000)
})

describe("a key the server refuses", () => {
  it.each([
    ["401", "an unknown key"],
    ["403", "a key of another project"]
  ])("(%s, %s) stops the upload with one message, logging to disk goes on, finish() says how to sync", async (status) => {
    const server = await startServer()
    const key = status === "401" ? "slk_not-a-key" : await server.createKey(["other"])
    // No credentials file: the refused key cannot be replaced by a reload.
    const child = train(server.baseUrl, key, temp.file("empty-xdg"), { ROWS: "2000", PER_TICK: "20", TICK_MS: "5" })
    const { runDir } = await started(child)
    const result = await finished(child)
    const journal = journalRows(runDir)
    // The refusal is printed when the service meets it; while the run still captures the console
    // (until finish()) that makes an output record too. Which comes first is the machine's timing.
    expect(journal.output.every((text) => text.includes("refused the API key"))).toBe(true)
    expect(result).toMatchObject({ uploaded: false, records: 2003 + journal.output.length })
    expect(result.pending).toBeGreaterThan(0)
    expect(result.hint).toContain(`steplog sync ${runDir}`)
    expect((await child.exited()).code).toBe(0)
    expect(journal.rows).toEqual(expectedRows(2000))
    const stderr = child.stderr()
    const messages = stderr.split("\n").filter((line) => line.includes("refused the API key"))
    expect(messages, stderr).toHaveLength(1)
    expect(messages[0]).toContain("steplog login")
  }, 60_000)
})

describe("a server that is down", () => {
  it("when the run starts: init() returns and logging goes on, and the run uploads once the server comes up", async () => {
    const server = await startServer()
    await server.stop()
    const child = train(server.baseUrl, server.key, server.config, { ROWS: "300", PER_TICK: "10", TICK_MS: "5" })
    const { runId } = await started(child)
    // Every row logged while nothing answers: init() and log() did not wait for the network.
    await child.waitForLine((l) => l.startsWith("logged 300 "))
    expect(await answers(server.baseUrl)).toBe(false)
    expect(child.lines.some((l) => l.startsWith("finished "))).toBe(false)
    await server.start()
    expect(await finished(child)).toEqual({ uploaded: true, records: 303, written: 303, dropped: 0 })
    expect(await serverRows(server, runId)).toEqual(expectedRows(300))
    expect((await child.exited()).code).toBe(0)
  }, 60_000)

  it("until finishTimeoutMs: finish() resolves then with what is pending, and the service ends at its deadline", async () => {
    const server = await startServer()
    await server.stop()
    const child = train(server.baseUrl, server.key, server.config, {
      ROWS: "100", PER_TICK: "100", STEPLOG_FINISH_TIMEOUT_MS: "1000", STEPLOG_UPLOAD_DEADLINE_MS: "500"
    })
    const { runDir } = await started(child)
    const result = await finished(child)
    expect(result).toMatchObject({ uploaded: false, records: 103, pending: 103 })
    expect(result.hint).toContain("finishTimeoutMs")
    expect(result.hint).toContain(`steplog sync ${runDir}`)
    expect((await child.exited()).code).toBe(0)
    const [pid] = services.pids(runDir)
    expect(pid).toBeDefined()
    await poll("the service to give up at its deadline", () => (alive(pid!) ? undefined : true))
    expect(journalRows(runDir).rows).toEqual(expectedRows(100))
  }, 60_000)
})
