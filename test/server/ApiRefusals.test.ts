/**
 * What the API answers where a hand-written one answered 500 or 404, or nothing safe: a PUT body
 * over its cap, JSON nested past `limits.maxNesting`, a record whose kind cannot be turned into
 * text, project names the router cannot route or a URL reads as a path, a batch from a standard
 * msgpack encoder, the headers of every /api answer, the 405 table, which must be the declaration's,
 * and records past the limits of Limits.ts (keys, key length, value size). Each case changes
 * nothing, as the store's own reads show.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import { Packr, Unpackr } from "msgpackr"
import * as http from "node:http"
import { describe, expect, it } from "vitest"
import { Api, limits } from "../../src/schemas/Api.js"
import { MAX_BATCH_RECORDS, MAX_KEY_LENGTH, MAX_KEYS_PER_RUN, MAX_VALUE_BYTES } from "../../src/schemas/Limits.js"
import { PROJECT_NAME_MAX_LENGTH } from "../../src/schemas/Wire.js"
import { blockOf } from "../support/historyBlock.js"
import { apiError, batch, gzipped, metadata, MiB, runPath, runRecord, useApiServer } from "../support/apiServer.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("api-refusals")
const server = useApiServer(temp.dir)
const { api, postRecords, held } = server

/** A request sent byte for byte as written (fetch would resolve `.` and `..` segments before sending). */
const raw = (method: string, target: string, body?: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const { hostname, port } = new URL(server.baseUrl)
    const sent = http.request({ host: hostname, port, path: target, method, headers: { authorization: `Bearer ${server.key}` } }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk) => (text += chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }))
    })
    sent.on("error", reject)
    sent.end(body)
  })

/** `{ a: { a: … } }`, `levels` objects deep. */
const nested = (levels: number): unknown => {
  let value: unknown = 1
  for (let i = 0; i < levels; i++) value = { a: value }
  return value
}

/**
 * A batch of one run record whose config holds a value `levels` maps deep, as plain msgpack. Written
 * by hand: msgpackr's packer recurses once a level and overflows its stack first.
 */
const deepBatch = (levels: number): Uint8Array => {
  const marker = "@@nested@@"
  const packed = Buffer.from(new Packr({ useRecords: false }).pack([{ ...runRecord("deep-run", "deep"), config: { deep: marker } }]))
  const at = packed.indexOf(Buffer.from(marker)) - 1 // its fixstr header
  const value = Buffer.alloc(levels * 3 + 1, 0x01)
  for (let i = 0; i < levels; i++) value.set([0x81, 0xa1, 0x61], i * 3) // { "a": …
  return Buffer.concat([packed.subarray(0, at), value, packed.subarray(at + 1 + marker.length)])
}

describe("PUT run", () => {
  it("refuses a body over 1 MiB with 413, by its Content-Length or by counting it, and creates nothing", async () => {
    const big = JSON.stringify({ ...metadata, notes: "x".repeat(limits.maxMetadataBytes) })
    expect((await apiError(await api(runPath("caps", "big"), { method: "PUT", body: big }), 413)).error).toBe("payload_too_large")
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big))
        controller.close()
      }
    })
    const counted = await api(runPath("caps", "big"), { method: "PUT", body: chunked, duplex: "half" } as RequestInit)
    expect((await apiError(counted, 413)).error).toBe("payload_too_large")
    expect(await held("caps", "big")).toBeUndefined()
  })

  it("refuses a config nested past the cap (400, not a stack overflow) and takes one within it", async () => {
    for (const levels of [limits.maxNesting, 1_400, 3_000]) {
      const body = await apiError(await api(runPath("deep", `run-${levels}`), { method: "PUT", body: JSON.stringify({ ...metadata, config: { deep: nested(levels) } }) }), 400)
      expect([body.error, body.detail]).toEqual(["invalid_metadata", `the body is nested deeper than ${limits.maxNesting} levels`])
      expect(await held("deep", `run-${levels}`)).toBeUndefined()
    }
    // The body, its config and the key's object are three levels above the nested value.
    const within = await api(runPath("deep", "within"), { method: "PUT", body: JSON.stringify({ ...metadata, config: { deep: nested(limits.maxNesting - 3) } }) })
    expect(within.status).toBe(200)
  })
})

describe("POST records", () => {
  it("refuses a record nested past the cap (400, however deep) and stores none of its batch", async () => {
    const refusals = []
    for (const levels of [limits.maxNesting, 1_400, 3_000, 100_000]) refusals.push(await apiError(await postRecords("deep", "deep-run", deepBatch(levels), {}), 400))
    const tooDeep = { error: "invalid_record", detail: { index: 0, message: `record 0 of the batch: it is nested deeper than ${limits.maxNesting} levels` } }
    // 100,000 levels are past what msgpackr itself reads: not msgpack this server takes.
    expect(refusals.slice(0, 3)).toMatchObject([tooDeep, tooDeep, tooDeep])
    expect(refusals[3]?.error).toBe("malformed_msgpack")
    expect(await held("deep", "deep-run")).toBeUndefined()
  })

  it("refuses a record whose kind is an object that cannot be turned into text (400, not 500), naming the field, and stores none of its batch", async () => {
    const records = [...batch("odd-run", "odd", 0, 2), { kind: { toString: 0 }, seq: 2, ts: 1 }]
    const refusal = await apiError(await postRecords("odd", "odd-run", new Packr({ useRecords: false }).pack(records), {}), 400)
    expect(refusal).toMatchObject({ error: "invalid_record", detail: { index: 2, message: 'record 2 of the batch: cannot be read: "kind" holds an object that cannot be turned into text' } })
    expect(await held("odd", "odd-run")).toBeUndefined()
  })

  it("accepts a batch from a standard msgpack encoder (plain maps), which Unpackr reads as Maps by default", async () => {
    const records = batch("std-run", "std", 0, 4)
    const plain = new Packr({ useRecords: false }).pack(records)
    expect(new Unpackr().unpack(plain)[0]).toBeInstanceOf(Map)
    expect(await (await postRecords("std", "std-run", plain, {})).json()).toEqual({ ackSeq: 4 })
    const objects = new Packr({ useRecords: false, mapsAsObjects: true }).pack(batch("std-run", "std", 4, 6))
    expect(await (await postRecords("std", "std-run", objects, {})).json()).toEqual({ ackSeq: 6 })
    const stored = await held("std", "std-run")
    expect(stored?.run).toMatchObject({ name: "a-run", records: 6, historyKeys: ["acc", "loss"] })
    expect(stored?.rows.map((row) => row.step)).toEqual([0, 1, 2, 3, 4])
  })
})

describe("project names", () => {
  it("take exactly what the router routes: the longest name works end to end", async () => {
    const longest = "p".repeat(PROJECT_NAME_MAX_LENGTH)
    expect(await (await postRecords(longest, "r", gzipped(batch("r", longest, 0, 2)))).json()).toEqual({ ackSeq: 2 })
    expect((await api(`/api/v1/projects/${longest}/runs`)).status).toBe(200)
  })

  it("refuses a longer name with 400 on every endpoint, as the schema does, not 404", async () => {
    for (const length of [PROJECT_NAME_MAX_LENGTH + 1, 128, 129, 3_000]) {
      const name = "p".repeat(length)
      for (const response of [
        await api(`/api/v1/projects/${name}/runs`),
        await api(runPath(name, "r")),
        await api(`${runPath(name, "r")}/history`),
        await api(runPath(name, "r"), { method: "PUT", body: JSON.stringify(metadata) }),
        await postRecords(name, "r", gzipped(batch("r", name, 0, 2)))
      ]) {
        expect((await apiError(response, 400)).error, `${length} characters`).toBe("bad_project")
      }
      expect(await held(name, "r")).toBeUndefined()
    }
    // A run id past the router's cap, too.
    expect((await apiError(await api(runPath("p", "r".repeat(PROJECT_NAME_MAX_LENGTH + 1))), 400)).error).toBe("bad_run_id")
  })

  it("refuses `.`, `..` and `...`, which a URL reads as paths (400)", async () => {
    for (const name of [".", "..", "..."]) {
      for (const [method, target, body] of [
        ["GET", `/api/v1/projects/${name}/runs`],
        ["PUT", runPath(name, "r"), JSON.stringify(metadata)],
        ["POST", `${runPath(name, "r")}/records`, ""]
      ] as const) {
        const response = await raw(method, target, body)
        expect([response.status, JSON.parse(response.body).error], `${method} ${target}`).toEqual([400, "bad_project"])
      }
      expect(await held(name, "r")).toBeUndefined()
    }
  })
})

describe("every /api answer", () => {
  it("carries X-Content-Type-Options: nosniff and Cache-Control: no-store, refusals and unknown paths included", async () => {
    const answers = [
      await api("/api/v1/whoami"),
      await api("/api/v1/whoami", { method: "HEAD" }),
      await api("/api/v1/projects", { key: null }),
      await api("/api/v1/nothing-here"),
      await api("/api", { key: null }),
      await api("/api/v1/whoami", { method: "DELETE" }),
      await api(`${runPath("p", "r")}/history?samples=0`),
      await postRecords("p", "r", new Uint8Array(17 * MiB))
    ]
    expect(answers.map((response) => response.status)).toEqual([200, 200, 401, 404, 404, 405, 400, 413])
    for (const response of answers) {
      expect([response.headers.get("x-content-type-options"), response.headers.get("cache-control")], response.url).toEqual(["nosniff", "no-store"])
    }
  })

  it("to a method a path does not take is 405, with the declaration's methods as Allow", async () => {
    const declared = new Map<string, Set<string>>()
    HttpApi.reflect(Api, {
      onGroup: () => {},
      onEndpoint: ({ endpoint }) => {
        const methods = declared.get(endpoint.path) ?? new Set<string>()
        declared.set(endpoint.path, methods.add(endpoint.method))
      }
    })
    expect(declared.size).toBe(7)
    for (const [pattern, methods] of declared) {
      const target = pattern.replace(":project", "p").replace(":runId", "r")
      const allow = [...methods].flatMap((method) => (method === "GET" ? ["GET", "HEAD"] : [method]))
      for (const method of ["GET", "PUT", "POST", "DELETE", "PATCH"].filter((m) => !methods.has(m))) {
        const response = await api(target, { method, ...(method === "GET" ? {} : { body: "{}" }) })
        expect([response.status, response.headers.get("allow")], `${method} ${target}`).toEqual([405, allow.join(", ")])
        expect((await apiError(response, 405)).error).toBe("method_not_allowed")
      }
    }
    expect(await held("p", "r")).toBeUndefined()
  })
})

describe("the limits of src/schemas/Limits.ts", () => {
  const row = (seq: number, values: { readonly [key: string]: unknown }) => ({ kind: "history", seq, ts: 1_700_000_000_000 + seq, step: seq, values })

  it("refuses a row with more keys than a run may have, a key too long, a string value or console text too large: 400 over_limit, nothing stored", async () => {
    const cases: Array<readonly [string, unknown]> = [
      ["wide", row(1, Object.fromEntries(Array.from({ length: MAX_KEYS_PER_RUN + 1 }, (_, i) => [`k${i}`, i])))],
      ["long-key", row(1, { ["k".repeat(MAX_KEY_LENGTH + 1)]: 1 })],
      ["long-value", row(1, { note: "ü".repeat(MAX_VALUE_BYTES / 2 + 1) })],
      ["long-output", { kind: "output", seq: 1, ts: 1, stream: "stdout", text: "x".repeat(MAX_VALUE_BYTES + 1) }]
    ]
    for (const [runId, record] of cases) {
      const refusal = await apiError(await postRecords("limits", runId, gzipped([runRecord(runId, "limits"), record])), 400)
      expect([runId, refusal.error, (refusal.detail as { index: number }).index]).toEqual([runId, "over_limit", 1])
      expect(await held("limits", runId)).toBeUndefined()
    }
  })

  it("refuses a batch of more than MAX_BATCH_RECORDS records with 413 before decoding it, nothing stored", async () => {
    const records = [runRecord("many", "limits"), ...Array.from({ length: MAX_BATCH_RECORDS }, (_, i) => row(1 + i, { x: i }))]
    const refusal = await apiError(await postRecords("limits", "many", gzipped(records)), 413)
    expect(refusal).toMatchObject({ error: "payload_too_large", detail: expect.stringContaining(`${MAX_BATCH_RECORDS + 1} records`) })
    expect(await held("limits", "many")).toBeUndefined()
    expect((await postRecords("limits", "many", gzipped(records.slice(0, MAX_BATCH_RECORDS)))).status).toBe(200)
  })

  it("counts a history block as its rows against MAX_BATCH_RECORDS: 413, nothing stored", async () => {
    const rows = Array.from({ length: MAX_BATCH_RECORDS + 1 }, (_, i) => ({ kind: "history" as const, seq: 1 + i, ts: i, step: i, values: { x: i } }))
    const refusal = await apiError(await postRecords("limits", "tall", gzipped([runRecord("tall", "limits"), blockOf(rows)])), 413)
    expect(refusal).toMatchObject({ error: "payload_too_large", detail: expect.stringContaining(`${MAX_BATCH_RECORDS + 2} records (a history block counting its rows)`) })
    expect(await held("limits", "tall")).toBeUndefined()
    expect((await postRecords("limits", "tall", gzipped([runRecord("tall", "limits"), blockOf(rows.slice(0, MAX_BATCH_RECORDS - 1))]))).status).toBe(200)
  })

  it("refuses the batch that would take a run past the keys it may have, whole, and keeps the batches before it", async () => {
    const half = MAX_KEYS_PER_RUN / 2
    const keys = (from: number, count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${from + i}`, i]))
    expect((await postRecords("limits", "growing", gzipped([runRecord("growing", "limits"), row(1, keys(0, half))]))).status).toBe(200)
    expect((await postRecords("limits", "growing", gzipped([row(2, keys(half, half))]))).status).toBe(200)
    const refusal = await apiError(await postRecords("limits", "growing", gzipped([row(3, { k0: 1 }), row(4, keys(MAX_KEYS_PER_RUN, 1))])), 400)
    expect(refusal).toMatchObject({ error: "over_limit", detail: expect.stringContaining(`a run may have ${MAX_KEYS_PER_RUN}`) })
    const stored = await held("limits", "growing")
    expect(stored?.run).toMatchObject({ records: 3, historyRows: 2 })
    expect(stored?.run.historyKeys).toHaveLength(MAX_KEYS_PER_RUN)
  })
})
