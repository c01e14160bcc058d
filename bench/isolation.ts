/**
 * Whether one request can hold the server: against `steplog server` (SQLite, a process of its own),
 * while a client asks `GET /api/v1/whoami` every 5 ms, one heavy request of each kind that once
 * held or bloated the server (issue 9's probes) is sent, and the whoami answers' latency is taken
 * while it runs (ms: p50, p99, max; target max ≤ 100 ms), with the heavy request's status and time
 * and the server's RSS growth. The baseline: whoami alone, on the same server, in the same run.
 * Left out: gzip (the bodies go plain, as a loopback upload sends them).
 */
import { Packr } from "msgpackr"
import * as fs from "node:fs"
import * as path from "node:path"
import { blockOf } from "../test/support/historyBlock.js"
import { MAX_BATCH_RECORDS } from "../src/schemas/Limits.js"
import type { HistoryRecord } from "../src/schemas/Record.js"
import { quantile, report, startServerProcess, tempDir } from "./fixtures.js"

const EVERY_MS = 5
const dir = tempDir("isolation")
const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, "config") }
const server = await startServerProcess(dir, env)
const { baseUrl, apiKey } = server
const packr = new Packr({ useRecords: true })
const auth = { authorization: `Bearer ${apiKey}` }

const rssMb = (): number => {
  const status = fs.readFileSync(`/proc/${server.pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024
}

/** POSTs a packed batch. Every heavy body is packed before its measurement: this process's own work would count as the server's. */
const post = (runId: string, body: Uint8Array) =>
  fetch(`${baseUrl}/api/v1/projects/iso/runs/${runId}/records`, { method: "POST", headers: { ...auth, "content-type": "application/msgpack" }, body })
const pack = (records: ReadonlyArray<unknown>): Uint8Array => packr.pack(records)

const runRecord = (runId: string) => ({
  kind: "run", seq: 0, ts: 1, runId, project: "iso", name: runId, config: {}, tags: [], notes: null, group: null, jobType: null,
  host: "bench", pid: 1, argv: [], gitCommit: null, sdkVersion: "0", resumed: false
})

/** Whoami latencies (ms, sorted) while `heavy` runs (or for `forMs` when it is null); and the heavy request's status and ms. */
const whileRunning = async (heavy: (() => Promise<number>) | null, forMs = 1_000) => {
  const waits: Array<number> = []
  let going = true
  const poller = (async () => {
    while (going) {
      const started = performance.now()
      await (await fetch(`${baseUrl}/api/v1/whoami`, { headers: auth })).arrayBuffer()
      waits.push(performance.now() - started)
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, EVERY_MS - (performance.now() - started))))
    }
  })()
  const started = performance.now()
  let status = 0
  if (heavy === null) await new Promise((resolve) => setTimeout(resolve, forMs))
  else status = await heavy()
  const ms = performance.now() - started
  going = false
  await poller
  return { waits: Float64Array.from(waits).sort(), status, ms }
}

// A run of a million steps (history paging) and one with a lot of console output, made beforehand.
const STEPS = 1_000_000
for (let from = 0; from < STEPS; from += 10_000) {
  const rows: Array<HistoryRecord> = Array.from({ length: 10_000 }, (_, i) => ({ kind: "history", seq: 1 + from + i, ts: from + i, step: from + i, values: { loss: Math.random(), acc: Math.random() } }))
  const response = await post("long", pack([...(from === 0 ? [runRecord("long")] : []), blockOf(rows)]))
  if (response.status !== 200) throw new Error(`seeding the long run: ${response.status} ${await response.text()}`)
}
const LINE = "a line of console output, as a chatty training script prints it\n".repeat(900)
for (let batch = 0; batch < 40; batch++) {
  const lines = Array.from({ length: 40 }, (_, i) => ({ kind: "output", seq: 1 + batch * 40 + i, ts: batch * 40 + i, stream: "stdout", text: LINE }))
  const response = await post("chatty", pack([...(batch === 0 ? [runRecord("chatty")] : []), ...lines]))
  if (response.status !== 200) throw new Error(`seeding the chatty run: ${response.status} ${await response.text()}`)
}

const wide = (runId: string) => pack([runRecord(runId), { kind: "history", seq: 1, ts: 1, step: 0, values: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`key${i}`, i])) }])
const huge = Array.from({ length: 550_000 }, (_, i): HistoryRecord => ({ kind: "history", seq: 1 + i, ts: i, step: i, values: { x: i % 100 } }))
const hugeBody = pack([runRecord("huge"), ...huge])
const hugeSlices: Array<Uint8Array> = []
for (let from = 0; from < huge.length; from += MAX_BATCH_RECORDS - 1) {
  hugeSlices.push(pack([...(from === 0 ? [runRecord("sliced")] : []), ...huge.slice(from, from + MAX_BATCH_RECORDS - 1)]))
}
const blockBody = pack([runRecord("block"), blockOf(huge)])
const blockSlices: Array<Uint8Array> = []
for (let from = 0; from < huge.length; from += MAX_BATCH_RECORDS - 1) {
  blockSlices.push(pack([...(from === 0 ? [runRecord("blocks")] : []), blockOf(huge.slice(from, from + MAX_BATCH_RECORDS - 1))]))
}
const wideBodies = [1, 2, 3, 4].map((n) => wide(`wide-${n}`))

const cases: ReadonlyArray<readonly [string, (() => Promise<number>) | null]> = [
  ["baseline: whoami alone", null],
  [`one batch of 550,000 one-row records, ${(hugeBody.length / 2 ** 20).toFixed(1)} MB (refused: MAX_BATCH_RECORDS)`, async () => (await post("huge", hugeBody)).status],
  [`the same rows in ${hugeSlices.length} batches under the cap, one after another`, async () => {
    let last = 0
    for (const body of hugeSlices) last = (await post("sliced", body)).status
    return last
  }],
  ["the same rows as one history block (refused: MAX_BATCH_RECORDS counts its rows)", async () => (await post("block", blockBody)).status],
  [`the same rows as ${blockSlices.length} blocks under the cap, one after another`, async () => {
    let last = 0
    for (const body of blockSlices) last = (await post("blocks", body)).status
    return last
  }],
  ["one row of 100,000 keys (refused: MAX_KEYS_PER_RUN)", async () => (await post("wide-1", wideBodies[0]!)).status],
  ["three rows of 100,000 keys, one after another", async () => {
    let last = 0
    for (const n of [1, 2, 3]) last = (await post(`wide-${n + 1}`, wideBodies[n]!)).status
    return last
  }],
  ["history of a 1,000,000-step run, no samples (a page)", async () => {
    const response = await fetch(`${baseUrl}/api/v1/projects/iso/runs/long/history`, { headers: auth })
    await response.arrayBuffer()
    return response.status
  }],
  ["output of a run with 100 MB of console text, default limit (a page)", async () => {
    const response = await fetch(`${baseUrl}/api/v1/projects/iso/runs/chatty/output`, { headers: auth })
    await response.arrayBuffer()
    return response.status
  }]
]

const rows: Array<{ [column: string]: string | number }> = []
for (const [name, heavy] of cases) {
  const before = rssMb()
  const { waits, status, ms } = await whileRunning(heavy)
  rows.push({
    request: name,
    status: heavy === null ? "-" : status,
    "request ms": heavy === null ? "-" : +ms.toFixed(0),
    "whoami answers": waits.length,
    "whoami p50 ms": +quantile(waits, 0.5).toFixed(1),
    "whoami p99 ms": +quantile(waits, 0.99).toFixed(1),
    "whoami max ms": +waits[waits.length - 1]!.toFixed(1),
    "server RSS growth MB": +(rssMb() - before).toFixed(0)
  })
}
server.stop()
report("isolation: GET /api/v1/whoami every 5 ms while one heavy request runs, steplog server on SQLite (target: whoami max ≤ 100 ms)", rows)
