/**
 * The HTTP API on a real server (127.0.0.1, a free port) over the SQLite store in memory and an
 * in-memory KeyStore, spoken to with fetch: keys (401 / 403), every kind of bad input (each changing
 * nothing, as the store's own reads show), the size caps and a gzip bomb, idempotent re-sends and
 * ackSeq, and the routing the declaration gives (404, 405 with `Allow`).
 */
import * as fs from "node:fs"
import * as zlib from "node:zlib"
import { beforeAll, describe, expect, it } from "vitest"
import { credentialsPath } from "../../src/actors/Credentials.js"
import type { HistoryRecord, Record } from "../../src/schemas/Record.js"
import { apiError, batch, gzipped, historyRecord, metadata, MiB, packr, runPath, runRecord, useApiServer } from "../support/apiServer.js"
import { blockOf } from "../support/historyBlock.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("http-api")
const server = useApiServer(temp.dir)
const { api, postRecords, held } = server
/** A key for project "alpha" only. */
let alphaKey = ""

beforeAll(async () => {
  alphaKey = await server.createKey("alpha-only", ["alpha" as never])
})

describe("keys", () => {
  it("stores the key made on the first start in the credentials file, mode 0600, and whoami accepts it", async () => {
    expect(server.key).toMatch(/^slk_[A-Za-z0-9_-]{43}$/)
    expect(fs.statSync(credentialsPath({ XDG_CONFIG_HOME: temp.dir() })).mode & 0o777).toBe(0o600)
    const response = await api("/api/v1/whoami")
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ name: "local", projects: "*" })
  })

  it("answers whoami for a scoped key with its name and projects", async () => {
    const response = await api("/api/v1/whoami", { key: alphaKey })
    expect(await response.json()).toMatchObject({ name: "alpha-only", projects: ["alpha"] })
  })

  it("refuses a request without a key, with an unknown key and with a revoked key (401)", async () => {
    expect((await apiError(await api("/api/v1/whoami", { key: null }), 401)).error).toBe("unauthorized")
    await apiError(await api("/api/v1/projects", { key: null }), 401)
    await apiError(await api("/api/v1/whoami", { key: "slk_not-a-key" }), 401)
    await apiError(await api("/api/v1/whoami", { headers: { authorization: `Basic ${server.key}` }, key: null }), 401)

    const key = await server.createKey("soon-revoked", "*")
    expect((await api("/api/v1/whoami", { key })).status).toBe(200)
    await server.revokeKey("soon-revoked")
    await apiError(await api("/api/v1/whoami", { key }), 401)
    // Nothing was written with a refused key.
    await apiError(await postRecords("keys-401", "r1", gzipped(batch("r1", "keys-401", 0, 3)), undefined, key), 401)
    expect(await held("keys-401", "r1")).toBeUndefined()
  })

  it("lets a key scoped to one project use it and answers 403 on another, changing nothing", async () => {
    const ok = await postRecords("alpha", "r1", gzipped(batch("r1", "alpha", 0, 3)), undefined, alphaKey)
    expect(await ok.json()).toEqual({ ackSeq: 3 })
    const forbidden = await postRecords("beta", "r1", gzipped(batch("r1", "beta", 0, 3)), undefined, alphaKey)
    expect((await apiError(forbidden, 403)).error).toBe("forbidden")
    await apiError(await api(`${runPath("beta", "r1")}`, { method: "PUT", body: JSON.stringify(metadata), key: alphaKey }), 403)
    await apiError(await api("/api/v1/projects/beta/runs", { key: alphaKey }), 403)
    expect(await held("beta", "r1")).toBeUndefined()
    expect((await api(runPath("beta", "r1"))).status).toBe(404)

    // The listing shows a scoped key only its own projects.
    await postRecords("gamma", "r1", gzipped(batch("r1", "gamma", 0, 2)))
    const all = (await (await api("/api/v1/projects")).json()) as { projects: Array<{ name: string }> }
    const scoped = (await (await api("/api/v1/projects", { key: alphaKey })).json()) as { projects: Array<{ name: string }> }
    expect(all.projects.map((p) => p.name)).toEqual(expect.arrayContaining(["alpha", "gamma"]))
    expect(scoped.projects.map((p) => p.name)).toEqual(["alpha"])
  })
})

describe("POST records", () => {
  it("answers the contiguous ackSeq, and a re-sent batch changes nothing", async () => {
    const first = await postRecords("ingest", "run-a", gzipped(batch("run-a", "ingest", 0, 10)))
    expect(await first.json()).toEqual({ ackSeq: 10 })
    // A gap: seq 15..19 are held but the prefix still ends at 10.
    expect(await (await postRecords("ingest", "run-a", gzipped(batch("run-a", "ingest", 15, 20)))).json()).toEqual({ ackSeq: 10 })
    expect(await (await postRecords("ingest", "run-a", gzipped(batch("run-a", "ingest", 10, 15)))).json()).toEqual({ ackSeq: 20 })
    const before = await held("ingest", "run-a")
    expect(before?.run.records).toBe(20)
    expect(before?.rows.map((row) => row.step)).toEqual(Array.from({ length: 19 }, (_, i) => i))

    const again = await postRecords("ingest", "run-a", gzipped(batch("run-a", "ingest", 0, 10)))
    expect(await again.json()).toEqual({ ackSeq: 20 })
    expect(await held("ingest", "run-a")).toEqual(before)
  })

  it("accepts an uncompressed body (identity, or no Content-Encoding)", async () => {
    expect(await (await postRecords("ingest", "run-b", packr.pack(batch("run-b", "ingest", 0, 3)), { "content-encoding": "identity" })).json()).toEqual({ ackSeq: 3 })
    expect(await (await postRecords("ingest", "run-b", packr.pack(batch("run-b", "ingest", 3, 5)), {})).json()).toEqual({ ackSeq: 5 })
  })

  it("refuses a batch with a bad record, naming its index and the schema error, and stores none of it", async () => {
    const records: Array<unknown> = batch("run-c", "ingest", 0, 5)
    records[3] = { kind: "history", seq: 3, ts: 1, step: -1, values: {} }
    const body = await apiError(await postRecords("ingest", "run-c", gzipped(records)), 400)
    expect(body.error).toBe("invalid_record")
    expect(body.detail).toMatchObject({ index: 3 })
    expect(JSON.stringify(body.detail)).toMatch(/record 3 of the batch.*step/s)
    expect(await held("ingest", "run-c")).toBeUndefined()

    const unknownKind = [...batch("run-c", "ingest", 0, 2), { kind: "nope", seq: 2, ts: 1 }]
    expect((await apiError(await postRecords("ingest", "run-c", gzipped(unknownKind)), 400)).detail).toMatchObject({ index: 2 })
    expect(await held("ingest", "run-c")).toBeUndefined()
    expect((await api(runPath("ingest", "run-c"))).status).toBe(404)
  })

  it("accepts history blocks, and of a block partly held stores only the rows it did not hold", async () => {
    const rows = (from: number, to: number, loss: number) =>
      Array.from({ length: to - from }, (_, i): HistoryRecord => ({ kind: "history", seq: from + i, ts: from + i, step: from + i, values: { loss, acc: from + i } }))
    const first = await postRecords("ingest", "run-blocks", gzipped([runRecord("run-blocks", "ingest"), blockOf(rows(1, 10, 1))]))
    expect(await first.json()).toEqual({ ackSeq: 10 })
    const resent = await postRecords("ingest", "run-blocks", gzipped([blockOf(rows(5, 15, 2))]))
    expect(await resent.json()).toEqual({ ackSeq: 15 })
    const stored = await held("ingest", "run-blocks")
    expect(stored?.run).toMatchObject({ records: 15, historyRows: 14 })
    expect(stored?.rows).toEqual([...rows(1, 10, 1), ...rows(10, 15, 2)].map(({ step, ts, values }) => ({ step, ts, values })))
  })

  it("refuses a malformed history block, naming its index and what is wrong, and stores none of the batch", async () => {
    const good = blockOf(Array.from({ length: 3 }, (_, i): HistoryRecord => ({ kind: "history", seq: 1 + i, ts: i, step: i, values: { loss: i, acc: i } })))
    const floats = (...values: Array<number>) => new Uint8Array(Float64Array.from(values).buffer)
    const cases: Array<readonly [unknown, RegExp]> = [
      [{ ...good, columns: [good.columns[0], good.columns[1]!.subarray(0, 16)] }, /column 1 \("acc"\) holds 16 bytes, not 3 rows × 8/],
      [{ ...good, ts: floats(1, 2) }, /ts holds 16 bytes, not 3 rows × 8/],
      [{ ...good, keys: ["loss"] }, /1 keys but 2 columns/],
      [{ ...good, keys: ["loss", "loss"] }, /a key appears twice/],
      [{ ...good, steps: floats(0, 1.5, 2) }, /step 1.5 of row 1 is not a whole number/],
      [{ ...good, steps: floats(0, -1, 2) }, /step -1 of row 1 is not a whole number/],
      [{ ...good, rows: 0, steps: floats(), ts: floats(), columns: [floats(), floats()] }, /rows/],
      [{ ...good, seq: -1 }, /seq/],
      [{ ...good, steps: [0, 1, 2] }, /steps/]
    ]
    for (const [block, problem] of cases) {
      const body = await apiError(await postRecords("ingest", "run-bad-block", gzipped([runRecord("run-bad-block", "ingest"), block])), 400)
      expect(body.error).toBe("invalid_record")
      expect(body.detail).toMatchObject({ index: 1 })
      expect((body.detail as { message: string }).message).toMatch(/^record 1 of the batch/)
      expect((body.detail as { message: string }).message).toMatch(problem)
    }
    expect(await held("ingest", "run-bad-block")).toBeUndefined()
  })

  it("refuses malformed msgpack, a body that is not an array, bad gzip and an unknown encoding (400 / 415)", async () => {
    const malformed = await apiError(await postRecords("ingest", "run-d", zlib.gzipSync(Buffer.from([0xc1, 0xc1, 0xc1]))), 400)
    expect(malformed.error).toBe("malformed_msgpack")
    const truncated = packr.pack(batch("run-d", "ingest", 0, 3)).subarray(0, 20)
    expect((await apiError(await postRecords("ingest", "run-d", zlib.gzipSync(truncated)), 400)).error).toBe("malformed_msgpack")
    expect((await apiError(await postRecords("ingest", "run-d", gzipped({ records: [] })), 400)).error).toBe("malformed_batch")
    expect((await apiError(await postRecords("ingest", "run-d", packr.pack(batch("run-d", "ingest", 0, 3))), 400)).error).toBe("malformed_gzip")
    const brotli = await postRecords("ingest", "run-d", zlib.brotliCompressSync(packr.pack(batch("run-d", "ingest", 0, 3))), { "content-encoding": "br" })
    expect((await apiError(brotli, 415)).error).toBe("unsupported_encoding")
    expect(brotli.headers.get("accept-encoding")).toBe("gzip, identity")
    expect(await held("ingest", "run-d")).toBeUndefined()
  })

  it("refuses a batch holding a run record of another run (400)", async () => {
    const records = [runRecord("other-run", "ingest"), historyRecord(1)]
    const body = await apiError(await postRecords("ingest", "run-e", gzipped(records)), 400)
    expect(body.error).toBe("wrong_run")
    expect(body.detail).toMatchObject({ index: 0 })
    expect(await held("ingest", "run-e")).toBeUndefined()
    expect(await held("ingest", "other-run")).toBeUndefined()
  })

  it("refuses a body over 16 MiB by its Content-Length, and by counting when it is sent chunked (413)", async () => {
    const big = new Uint8Array(16 * MiB + 1)
    expect((await apiError(await postRecords("ingest", "run-f", big), 413)).error).toBe("payload_too_large")

    let sent = 0
    const chunked = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 17 * MiB) return controller.close()
        sent += MiB
        controller.enqueue(new Uint8Array(MiB))
      }
    })
    const response = await api(`${runPath("ingest", "run-f")}/records`, {
      method: "POST",
      body: chunked,
      headers: { "content-encoding": "identity" },
      duplex: "half"
    } as RequestInit)
    expect(JSON.stringify((await apiError(response, 413)).detail)).toMatch(/over 16 MiB/)
    expect(await held("ingest", "run-f")).toBeUndefined()
  })

  it("refuses a gzip bomb (a valid batch inflating past 64 MiB) with 413 and stores nothing", async () => {
    // 70 MiB of output text in one otherwise valid record: about 70 KB once gzipped.
    const bomb = zlib.gzipSync(packr.pack([runRecord("run-g", "ingest"), { kind: "output", seq: 1, ts: 1, stream: "stdout", text: "a".repeat(70 * MiB) }]), { level: 9 })
    expect(bomb.length).toBeLessThan(1 * MiB)
    const body = await apiError(await postRecords("ingest", "run-g", bomb), 413)
    expect(JSON.stringify(body.detail)).toMatch(/inflates/)
    expect(await held("ingest", "run-g")).toBeUndefined()
  })
})

describe("runs and history", () => {
  it("creates a run with PUT and refuses bad metadata without creating anything", async () => {
    const put = await api(runPath("meta", "run-1"), { method: "PUT", body: JSON.stringify(metadata) })
    expect(put.status).toBe(200)
    expect(await put.json()).toMatchObject({ runId: "run-1", project: "meta", name: "n", state: "running", tags: ["t"] })
    expect(await (await api(runPath("meta", "run-1"))).json()).toMatchObject({ runId: "run-1", host: "h" })

    expect((await apiError(await api(runPath("meta", "run-2"), { method: "PUT", body: "{not json" }), 400)).error).toBe("malformed_json")
    const invalid = await apiError(await api(runPath("meta", "run-2"), { method: "PUT", body: JSON.stringify({ ...metadata, startedAt: "yesterday" }) }), 400)
    expect(invalid.error).toBe("invalid_metadata")
    expect(JSON.stringify(invalid.detail)).toMatch(/startedAt/)
    await apiError(await api(runPath("meta", "run-2")), 404)
    await apiError(await api(runPath("meta", "bad run id!")), 400)
    await apiError(await api(runPath("bad project!", "run-1")), 400)
    const runs = (await (await api("/api/v1/projects/meta/runs")).json()) as { runs: Array<{ runId: string }> }
    expect(runs.runs.map((r) => r.runId)).toEqual(["run-1"])
  })

  it("reads history with ?keys and ?samples and refuses a bad samples value (400)", async () => {
    await postRecords("hist", "run-h", gzipped(batch("run-h", "hist", 0, 101)))
    const all = (await (await api(`${runPath("hist", "run-h")}/history`)).json()) as { rows: Array<{ step: number; values: object }> }
    expect(all.rows.map((r) => r.step)).toEqual(Array.from({ length: 100 }, (_, i) => i))
    const picked = (await (await api(`${runPath("hist", "run-h")}/history?keys=loss`)).json()) as { rows: Array<{ values: object }> }
    expect(picked.rows[0]!.values).toEqual({ loss: 1 })
    const sampled = (await (await api(`${runPath("hist", "run-h")}/history?keys=acc&samples=10`)).json()) as {
      rows: Array<{ min: { acc: number }; max: { acc: number } }>
    }
    // 100 steps in at most 10 buckets: 16 steps wide (a power of two, so that a growing run's buckets stay put), 7 of them.
    expect(sampled.rows).toHaveLength(7)
    expect(sampled.rows[0]).toMatchObject({ step: 15, min: { acc: 1 }, max: { acc: 16 } })
    expect(sampled.rows.at(-1)).toMatchObject({ step: 99, min: { acc: 97 }, max: { acc: 100 } })

    for (const samples of ["0", "-1", "10001", "abc", "2.5", ""]) {
      const body = await apiError(await api(`${runPath("hist", "run-h")}/history?samples=${samples}`), 400)
      expect(body.error).toBe("bad_query")
    }
    expect((await api(`${runPath("hist", "run-h")}/history?samples=10000`)).status).toBe(200)
    await apiError(await api(`${runPath("hist", "no-such-run")}/history`), 404)
    expect(await (await api(runPath("hist", "run-h"))).json()).toMatchObject({ historyKeys: ["acc", "loss"] })
  })

  it("answers a sampled read again alike, and as the run grows, with NaN, ±Infinity and -0 as stand-ins in its JSON", async () => {
    const logged = [1, Number.NaN, 2, Number.POSITIVE_INFINITY, 3, Number.NEGATIVE_INFINITY, -0, 4, 5, 6]
    // As a block, whose float64 columns carry -0 (a msgpack number would not).
    const rowsOf = (from: number, to: number) =>
      blockOf(logged.slice(from, to).map((loss, i): HistoryRecord => ({ kind: "history", seq: from + i + 1, ts: 1_700_000_000_000 + from + i, step: from + i, values: { loss } })))
    await postRecords("odd", "run-s", gzipped([runRecord("run-s", "odd"), rowsOf(0, 8)]))
    const read = async () => {
      const response = await api(`${runPath("odd", "run-s")}/history?samples=4`)
      expect(response.headers.get("content-type")).toMatch(/^application\/json/)
      return response.text()
    }
    const first = await read()
    // 8 steps in 4 buckets of 2: the last value of each, min and max of its numbers (NaN left out).
    expect(JSON.parse(first)).toEqual({
      rows: [
        { step: 1, ts: 1_700_000_000_001, values: { loss: { number: "NaN" } }, min: { loss: 1 }, max: { loss: 1 } },
        { step: 3, ts: 1_700_000_000_003, values: { loss: { number: "Infinity" } }, min: { loss: 2 }, max: { loss: { number: "Infinity" } } },
        { step: 5, ts: 1_700_000_000_005, values: { loss: { number: "-Infinity" } }, min: { loss: { number: "-Infinity" } }, max: { loss: 3 } },
        { step: 7, ts: 1_700_000_000_007, values: { loss: 4 }, min: { loss: { number: "-0" } }, max: { loss: 4 } }
      ],
      next: null
    })
    expect(await read()).toBe(first)
    await postRecords("odd", "run-s", gzipped([rowsOf(8, 10)]))
    // 10 steps in at most 4 buckets: 4 wide, 3 of them.
    expect((JSON.parse(await read()) as { rows: Array<{ step: number; values: object }> }).rows.map((row) => [row.step, row.values])).toEqual([
      [3, { loss: { number: "Infinity" } }],
      [7, { loss: 4 }],
      [9, { loss: 6 }]
    ])
  })

  it("reads the steps from ?minStep to ?maxStep and refuses a bad or inverted range (400)", async () => {
    await postRecords("hist", "run-r", gzipped(batch("run-r", "hist", 0, 101)))
    const steps = async (query: string) =>
      ((await (await api(`${runPath("hist", "run-r")}/history?${query}`)).json()) as { rows: Array<{ step: number }> }).rows.map((r) => r.step)
    expect(await steps("minStep=10&maxStep=14")).toEqual([10, 11, 12, 13, 14])
    expect(await steps("minStep=97")).toEqual([97, 98, 99])
    expect(await steps("maxStep=2&keys=acc")).toEqual([0, 1, 2])
    expect(await steps("minStep=5&maxStep=5")).toEqual([5])
    const sampled = await steps("minStep=10&maxStep=49&samples=4")
    expect(sampled.length).toBeLessThanOrEqual(4)
    expect(sampled.at(-1)).toBe(49)
    expect(sampled.every((step) => step >= 10 && step <= 49)).toBe(true)

    for (const query of ["minStep=-1", "maxStep=1.5", "minStep=abc", "minStep=", "minStep=9&maxStep=8", "minStep=1&minStep=2"]) {
      expect((await apiError(await api(`${runPath("hist", "run-r")}/history?${query}`), 400)).error).toBe("bad_query")
    }
  })

  it("reads console output after ?after, at most ?limit lines, and refuses a bad value (400)", async () => {
    const line = (seq: number, text: string): Record => ({ kind: "output", seq, ts: 1_700_000_000_000 + seq, stream: seq % 2 === 0 ? "stdout" : "stderr", text })
    await postRecords("out", "run-o", gzipped([runRecord("run-o", "out"), line(1, "one"), historyRecord(2), line(3, "three"), line(4, "four")]))
    const read = async (query: string) => (await (await api(`${runPath("out", "run-o")}/output${query}`)).json()) as { lines: Array<{ seq: number; stream: string; text: string }>; next: number }
    const all = await read("")
    expect(all).toEqual({
      lines: [
        { seq: 1, ts: 1_700_000_000_001, stream: "stderr", text: "one" },
        { seq: 3, ts: 1_700_000_000_003, stream: "stderr", text: "three" },
        { seq: 4, ts: 1_700_000_000_004, stream: "stdout", text: "four" }
      ],
      next: 4
    })
    expect(await read("?limit=1")).toEqual({ lines: all.lines.slice(0, 1), next: 1 })
    expect(await read("?after=1&limit=1")).toEqual({ lines: all.lines.slice(1, 2), next: 3 })
    expect(await read("?after=4")).toEqual({ lines: [], next: 4 })
    expect(await read("?after=-1&limit=10000")).toEqual(all)

    for (const query of ["after=-2", "after=x", "limit=0", "limit=10001", "limit=2.5"]) {
      expect((await apiError(await api(`${runPath("out", "run-o")}/output?${query}`), 400)).error).toBe("bad_query")
    }
    await apiError(await api(`${runPath("out", "no-such-run")}/output`), 404)
    await apiError(await api(`${runPath("out", "run-o")}/output`, { key: alphaKey }), 403)
  })
})

describe("routing", () => {
  it("answers an unknown endpoint with 404 JSON", async () => {
    expect((await apiError(await api("/api/v1/nothing-here"), 404)).error).toBe("not_found")
    await apiError(await api("/api/v2/projects"), 404)
    await apiError(await api("/api/v1/projects/p/runs/r/history/extra", { method: "POST" }), 404)
    await apiError(await api("/api", { key: null }), 404)
  })

  it("answers a wrong method on a known path with 405 and an Allow header", async () => {
    const patched = await api(runPath("meta", "run-1"), { method: "PATCH", body: "{}" })
    expect(patched.headers.get("allow")).toBe("GET, HEAD, PUT, DELETE")
    expect((await apiError(patched, 405)).error).toBe("method_not_allowed")
    const getRecords = await api(`${runPath("meta", "run-1")}/records`)
    expect(getRecords.headers.get("allow")).toBe("POST")
    await apiError(getRecords, 405)
    await apiError(await api("/api/v1/whoami", { method: "POST", body: "{}" }), 405)
    // The run exists (a PUT made it earlier) and holds no record.
    expect((await held("meta", "run-1"))?.run.records).toBe(0)
  })
})

describe("deleting a run", () => {
  it("deletes it whole with any key of its project, then answers 404 to reads and 410 to every write of it", async () => {
    await postRecords("alpha", "doomed", gzipped(batch("doomed", "alpha", 0, 20)), undefined, alphaKey)
    await postRecords("alpha", "spared", gzipped(batch("spared", "alpha", 0, 5)), undefined, alphaKey)
    await apiError(await api(runPath("alpha", "doomed"), { method: "DELETE", key: await server.createKey("beta-only", ["beta" as never]) }), 403)

    const deleted = await api(runPath("alpha", "doomed"), { method: "DELETE", key: alphaKey })
    expect(deleted.status).toBe(200)
    expect(await deleted.json()).toEqual({ project: "alpha", runId: "doomed", records: 20, historyRows: 19 })
    expect(await held("alpha", "doomed")).toBeUndefined()
    expect((await held("alpha", "spared"))?.run.records).toBe(5)
    await apiError(await api(runPath("alpha", "doomed")), 404)
    await apiError(await api(`${runPath("alpha", "doomed")}/history`), 404)

    // A stale uploader: its next batch, a re-send of an old one, its metadata, a second delete.
    const gone = [
      await postRecords("alpha", "doomed", gzipped(batch("doomed", "alpha", 20, 30)), undefined, alphaKey),
      await postRecords("alpha", "doomed", gzipped(batch("doomed", "alpha", 0, 20)), undefined, alphaKey),
      await api(runPath("alpha", "doomed"), { method: "PUT", body: JSON.stringify(metadata), key: alphaKey }),
      await api(runPath("alpha", "doomed"), { method: "DELETE", key: alphaKey })
    ]
    for (const answer of gone) expect((await apiError(answer, 410)).error).toBe("run_deleted")
    expect(await held("alpha", "doomed")).toBeUndefined()
    await apiError(await api(runPath("alpha", "never-was"), { method: "DELETE", key: alphaKey }), 404)
  })
})

describe("listing runs", () => {
  it("filters, sorts and pages on the server, and refuses a filter, sort, limit or cursor it cannot read (400), naming it", async () => {
    for (const [id, lr] of [["a", 0.1], ["b", 0.01], ["c", 0.001]] as const) {
      const records = batch(id, "listing", 0, 3)
      ;(records[0] as { config: object }).config = { lr }
      await postRecords("listing", id, gzipped(records))
    }
    const list = async (query: string) => {
      const response = await api(`/api/v1/projects/listing/runs?${query}`)
      expect(response.status).toBe(200)
      return (await response.json()) as { runs: Array<{ runId: string }>; next?: string }
    }
    const first = await list(`filter=${encodeURIComponent("config.lr < 0.05")}&sort=config.lr&limit=1`)
    expect(first.runs.map((run) => run.runId)).toEqual(["c"])
    const second = await list(`filter=${encodeURIComponent("config.lr < 0.05")}&sort=config.lr&limit=1&cursor=${first.next}`)
    expect([second.runs.map((run) => run.runId), second.next]).toEqual([["b"], undefined])

    for (const [query, says] of [
      [`filter=${encodeURIComponent("config.lr <")}`, /filter: a filter that parses: a value/],
      [`sort=${encodeURIComponent("-tags")}`, /sort: a sort that parses: a field to sort by, not tags/],
      ["limit=0", /limit: a whole number from 1 to 10000/],
      ["cursor=bm9wZQ", /cursor: the cursor is not one a runs listing gave/]
    ] as const) {
      const refused = await apiError(await api(`/api/v1/projects/listing/runs?${query}`), 400)
      expect(refused.error).toBe("bad_query")
      expect(String(refused.detail)).toMatch(says)
    }
  })
})
