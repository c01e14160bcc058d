/**
 * RunUpload against a real server on 127.0.0.1 (in this process, over an in-memory store whose
 * ingest calls are counted), uploading runs written by the real runtime in offline mode; and its
 * metadata PUT's timeout against a scripted client, under TestClock.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as Auth from "../../src/actors/Auth.js"
import { init } from "../../src/index.js"
import { readJournal, walk } from "../../src/journal/JournalReader.js"
import * as RunUpload from "../../src/runtime/RunUpload.js"
import * as UploadCursor from "../../src/journal/UploadCursor.js"
import { useTempDir } from "../support/tempDir.js"
import { useTestServer } from "../support/testServer.js"

const temp = useTempDir("run-upload")
const server = useTestServer(temp.dir)

/** Writes an offline run of `rows` rows with config and summary; `finish: false` leaves it open. */
const offlineRun = async (rows: number, options: { readonly finish?: boolean } = {}) => {
  const dir = temp.file("runs")
  const run = await init({ mode: "offline", dir, project: "upload-test", config: { lr: 0.01, layers: 3 }, durability: "sync" })
  for (let i = 0; i < rows; i++) run.log({ loss: 1 / (i + 1), acc: i / rows, phase: i % 2 === 0 ? "even" : "odd" })
  run.summary.set({ best: 0.99 })
  if (options.finish !== false) await run.finish()
  return { run, dir: run.dir }
}

/** A journal's size: where it ends. */
const sizeOf = (dir: string) => fs.statSync(path.join(dir, "journal.slog")).size

/** Runs `f` with a RunUpload of `dir` flushed as `flushed` says (default: the whole file), closing it after. */
const withUpload = <A, E>(
  dir: string,
  f: (upload: RunUpload.RunUpload, flushed: SubscriptionRef.SubscriptionRef<RunUpload.Flushed>) => Effect.Effect<A, E>,
  flushed: RunUpload.Flushed = { offset: sizeOf(dir), final: true }
) =>
  Effect.runPromise(
    Effect.flatMap(SubscriptionRef.make(flushed), (ref) => Effect.flatMap(RunUpload.open({ dir, baseUrl: server.baseUrl, flushed: ref }), (upload) => f(upload, ref))).pipe(
      Effect.scoped,
      Effect.provide(Layer.merge(NodeHttpClient.layerUndici, Auth.layer({ baseUrl: server.baseUrl, apiKey: server.key })))
    )
  )

const history = async (runId: string) => {
  const response = await fetch(`${server.baseUrl}/api/v1/projects/upload-test/runs/${runId}/history`, { headers: { authorization: `Bearer ${server.key}` } })
  return ((await response.json()) as { rows: Array<unknown> }).rows
}
const detail = async (runId: string) => {
  const response = await fetch(`${server.baseUrl}/api/v1/projects/upload-test/runs/${runId}`, { headers: { authorization: `Bearer ${server.key}` } })
  return (await response.json()) as { state: string; summary: unknown; config: unknown; name: string; records: number }
}

/** A dead process's pid: one that ran and exited. */
const deadPid = () => spawnSync(process.execPath, ["-e", "0"]).pid!

describe("RunUpload", () => {
  it("uploads every record of a finished run, and the server shows it finished with its summary", async () => {
    const { run, dir } = await offlineRun(300)
    const journal = Either.getOrThrow(readJournal(path.join(dir, "journal.slog")))
    const progress = await withUpload(dir, (upload) => upload.awaitUploaded)
    expect(progress).toEqual({ acknowledged: journal.records.length, total: journal.records.length, uploaded: true })
    const expected = journal.records.flatMap((r) => (r.kind === "history" ? [{ step: r.step, ts: r.ts, values: r.values }] : []))
    expect(expected).toHaveLength(300)
    expect(await history(run.id)).toEqual(expected)
    const shown = await detail(run.id)
    expect(shown).toMatchObject({ state: "finished", name: run.name, config: { lr: 0.01, layers: 3 }, records: journal.records.length })
    expect(shown.summary).toMatchObject({ best: 0.99 })
    expect(await Effect.runPromise(UploadCursor.read(UploadCursor.cursorPath(dir), server.baseUrl))).toMatchObject({ ackSeq: journal.records.length })
  })

  it("sends nothing when the cursor says the server holds every record", async () => {
    const { dir } = await offlineRun(50)
    await withUpload(dir, (upload) => upload.awaitUploaded)
    const before = server.ingests
    const again = await withUpload(dir, (upload) => Effect.map(upload.awaitUploaded, (progress) => ({ progress, start: upload.startAckSeq })))
    expect(again.start).toBe(again.progress.total)
    expect(server.ingests).toBe(before)
  })

  it("uploads what is flushed so far, and the rest once told of more", async () => {
    const { run, dir } = await offlineRun(200)
    const size = sizeOf(dir)
    // The training process reports flushes at frame ends: here, the end of the middle frame.
    const frames = [...walk(path.join(dir, "journal.slog")).to(size, true)].flatMap((entry) => (entry._tag === "Frame" ? [entry] : []))
    const half = frames[Math.floor(frames.length / 2)]!.end
    const result = await withUpload(dir, (upload, flushed) =>
      Effect.gen(function* () {
        const first = yield* upload.awaitUploaded
        yield* RunUpload.flushedTo(flushed, size)
        const second = yield* upload.awaitUploaded
        return { first, second }
      }), { offset: half, final: false })
    expect(result.first.acknowledged).toBeGreaterThan(0)
    expect(result.first.acknowledged).toBeLessThan(result.second.total)
    expect(result.second.acknowledged).toBe(result.second.total)
    expect(await history(run.id)).toHaveLength(200)
  })

  it("skips a corrupt frame in the middle of a journal, reports it with its offset, and finishes without waiting for its records", async () => {
    const { run, dir } = await offlineRun(100)
    // Durability "sync": one frame a record. Break the frame of row 50.
    const journalPath = path.join(dir, "journal.slog")
    const frames = [...walk(journalPath).to(sizeOf(dir), true)].flatMap((entry) => (entry._tag === "Frame" ? [entry] : []))
    const broken = frames.find((frame) => frame.records[0]?.kind === "history" && frame.records[0].step === 50)!
    const bytes = fs.readFileSync(journalPath)
    bytes[broken.offset + 12] = bytes[broken.offset + 12]! ^ 0xff
    fs.writeFileSync(journalPath, bytes)
    const { progress, damage } = await withUpload(dir, (upload) => Effect.all({ progress: upload.awaitUploaded, damage: upload.damage }))
    expect(progress).toMatchObject({ uploaded: true, acknowledged: progress.total })
    expect(damage.map((d) => [d.kind, d.offset, d.bytes])).toEqual([["corrupt-frame", broken.offset, broken.end - broken.offset]])
    const steps = ((await history(run.id)) as Array<{ step: number }>).map((row) => row.step)
    expect(steps).toEqual(Array.from({ length: 100 }, (_, i) => i).filter((step) => step !== 50))
  })

  it("marks a run without an exit record crashed once its writer is gone, and only then", async () => {
    const { run, dir } = await offlineRun(120, { finish: false })
    // While this process holds the run, it is not abandoned.
    const live = await withUpload(dir, (upload) => Effect.zipRight(upload.awaitUploaded, upload.markCrashedIfAbandoned))
    expect(live).toBe(false)
    expect((await detail(run.id)).state).toBe("running")
    // The same journal, its lock left by a process that is gone.
    const copy = path.join(temp.file("crashed"), path.basename(dir))
    fs.mkdirSync(copy, { recursive: true })
    fs.copyFileSync(path.join(dir, "journal.slog"), path.join(copy, "journal.slog"))
    fs.writeFileSync(path.join(copy, "lock"), String(deadPid()))
    const marked = await withUpload(copy, (upload) => Effect.zipRight(upload.awaitUploaded, upload.markCrashedIfAbandoned))
    expect(marked).toBe(true)
    expect((await detail(run.id)).state).toBe("crashed")
    expect(await history(run.id)).toHaveLength(120)
    await run.finish()
  })

  it("sends a metadata PUT that was accepted and never answered again after 10 s (TestClock, a scripted client)", async () => {
    const { run, dir } = await offlineRun(5)
    const puts: Array<number> = []
    // The first PUT is taken and never answered; the next is; whoami is answered (as a protocol-1
    // server would), and every POST waits (this is about the PUT).
    const client = HttpClient.make((request) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) => {
        if (request.method === "GET" && request.url.endsWith("/whoami")) return Effect.succeed(HttpClientResponse.fromWeb(request, Response.json({ name: "k", projects: "*" })))
        if (request.method !== "PUT") return Effect.never
        puts.push(at)
        if (puts.length === 1) return Effect.never
        const detail = {
          runId: run.id, project: "upload-test", name: run.name, state: "running", exitCode: null, config: {}, summary: {}, tags: [], notes: null,
          group: null, jobType: null, host: null, startedAt: null, updatedAt: null, records: 0, historyRows: 0, historyKeys: [], lastSteps: {}
        }
        return Effect.succeed(HttpClientResponse.fromWeb(request, Response.json(detail)))
      }))
    const opened = await Effect.runPromise(
      Effect.gen(function* () {
        const flushed = yield* SubscriptionRef.make({ offset: sizeOf(dir), final: true })
        const fiber = yield* Effect.fork(RunUpload.open({ dir, baseUrl: "http://127.0.0.1:7077", flushed }))
        yield* TestClock.adjust(9_999)
        const before = [...puts]
        // Timed out at 10 s, then sent again after the first retry delay (200 ms).
        yield* TestClock.adjust(1 + 200)
        yield* Fiber.join(fiber)
        return { before, after: [...puts] }
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.merge(Layer.succeed(HttpClient.HttpClient, client), Auth.layer({ baseUrl: "http://127.0.0.1:7077", apiKey: "key" }))),
        Effect.provide(TestContext.TestContext)
      )
    )
    expect(opened).toEqual({ before: [0], after: [0, 10_200] })
  })

  it("fails with a clear reason when no server answers", async () => {
    const { dir } = await offlineRun(5)
    const failed = await Effect.runPromise(
      Effect.flatMap(SubscriptionRef.make({ offset: sizeOf(dir), final: true }), (flushed) => RunUpload.open({ dir, baseUrl: "http://127.0.0.1:1", flushed })).pipe(
        Effect.flip,
        Effect.scoped,
        Effect.provide(Layer.merge(NodeHttpClient.layerUndici, Auth.layer({ baseUrl: "http://127.0.0.1:1", apiKey: server.key })))
      )
    )
    expect(failed.reason).toBe("unreachable")
    expect(failed.message).toMatch(/no steplog server answers at http:\/\/127\.0\.0\.1:1/)
  })
})
