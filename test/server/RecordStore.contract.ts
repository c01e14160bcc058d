/**
 * The contract every RecordStore backend passes (src/server/store/RecordStore.ts lists the guarantees).
 * A backend's test file calls `recordStoreContract(name, layer)`. The layer is built once for the
 * whole suite, so every test works in a project of its own and never assumes an empty store.
 */
import { expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { HistoryRecord, JsonPatch, Record, RunId, RunRecord, UploadRecord, Value } from "../../src/schemas/Record.js"
import type { History, HistoryRow, ProjectName, RunMetadata } from "../../src/schemas/Wire.js"
import { HISTORY_PAGE_ROWS, OUTPUT_PAGE_BYTES } from "../../src/schemas/Limits.js"
import { type HistoryQuery, type OutputQuery, RecordStore } from "../../src/server/store/RecordStore.js"
import { MAX_KEYS_PER_RUN } from "../../src/schemas/Limits.js"
import { MAX_RUNS_LIMIT, parseRunQuery } from "../../src/schemas/RunQuery.js"
import { blockOf } from "../support/historyBlock.js"

/** Every run of a project, newest first (up to a listing's most). */
const ALL_RUNS = Either.getOrThrow(parseRunQuery({ limit: MAX_RUNS_LIMIT }))

let projects = 0
/** A project nothing else in this process has used. */
const freshProject = (): ProjectName => `contract-${process.pid}-${projects++}` as ProjectName
const RUN = "run-1" as RunId

const runRecord = (seq: number, project: ProjectName, runId: RunId, over: Partial<RunRecord> = {}): RunRecord => ({
  kind: "run",
  seq,
  ts: 1_000 + seq,
  runId,
  project,
  name: "brave-otter",
  config: { lr: 0.1, layers: 4 },
  tags: ["a", "b"],
  notes: "first try",
  group: null,
  jobType: "train",
  host: "box",
  pid: 42,
  argv: ["node", "train.js"],
  gitCommit: null,
  sdkVersion: "0.1.0",
  resumed: false,
  ...over
})
const historyRecord = (seq: number, step: number, values: { [key: string]: Value }): HistoryRecord => ({
  kind: "history",
  seq,
  ts: 1_000 + seq,
  step,
  values
})
/** Records seq from..to-1, each a history row at step = seq with one value `loss`. */
const rows = (from: number, to: number): Array<Record> =>
  Array.from({ length: to - from }, (_, i) => historyRecord(from + i, from + i, { loss: (from + i) / 10 }))

const metadata = (over: Partial<RunMetadata> = {}): RunMetadata => ({
  name: "from-put",
  config: { batch: 32 },
  tags: ["put"],
  notes: null,
  group: "g",
  jobType: null,
  host: "put-host",
  startedAt: 5_000,
  ...over
})

const detail = (project: ProjectName, runId: RunId = RUN) =>
  Effect.flatMap(RecordStore, (store) => store.getRun(project, runId)).pipe(Effect.map(Option.getOrThrow))
const ingest = (project: ProjectName, records: ReadonlyArray<UploadRecord>, runId: RunId = RUN) =>
  Effect.flatMap(RecordStore, (store) => store.ingest(project, runId, records))
const history = (project: ProjectName, query: HistoryQuery = {}) =>
  Effect.flatMap(RecordStore, (store) => store.history(project, RUN, query)).pipe(
    Effect.map((found) => Option.getOrThrow(found).rows)
  )
/** Every page of a history read without samples, following `next` from `query.minStep`. */
const pages = (project: ProjectName, query: HistoryQuery = {}) =>
  Effect.gen(function* () {
    const store = yield* RecordStore
    const got: Array<ReadonlyArray<HistoryRow>> = []
    let minStep: number | null = query.minStep ?? 0
    while (minStep !== null) {
      const page: History = Option.getOrThrow(yield* store.history(project, RUN, { ...query, minStep }))
      got.push(page.rows)
      if (page.next !== null) expect(page.next).toBeGreaterThan(page.rows.at(-1)?.step ?? minStep - 1)
      minStep = page.next
    }
    return got
  })
const output = (project: ProjectName, query: OutputQuery) =>
  Effect.flatMap(RecordStore, (store) => store.output(project, RUN, query)).pipe(Effect.map(Option.getOrThrow))

/** A deterministic pseudo-random number in [0, 1) from a seed's sequence. */
const randoms = (seed: number) => {
  let x = seed
  return () => ((x = (x * 1103515245 + 12345) % 2 ** 31), x / 2 ** 31)
}

/**
 * 5,000 steps of `loss`, `acc` every 7th step, a string `phase` every 100th, steps from 10, sent in
 * shuffled, overlapping batches so that no backend can rely on arrival order.
 */
const ingestLongRun = (project: ProjectName) =>
  Effect.gen(function* () {
    const logged: Array<HistoryRecord> = []
    const random = randoms(12345)
    for (let step = 0; step < 5_000; step++) {
      const values: { [key: string]: Value } = { loss: random() * 10 - 5 }
      if (step % 7 === 3) values["acc"] = random()
      if (step % 100 === 0) values["phase"] = `p${step}`
      logged.push(historyRecord(step, step + 10, values))
    }
    const batches = Array.from({ length: 50 }, (_, i) => logged.slice(i * 100, i * 100 + 150))
    for (let i = batches.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[batches[i], batches[j]] = [batches[j]!, batches[i]!]
    }
    for (const batch of batches) yield* ingest(project, batch)
    return logged
  })

/** Checks `samples` buckets against the rows they were made of (`logged`, in step order). */
const expectBuckets = (got: ReadonlyArray<HistoryRow>, samples: number, keys: ReadonlyArray<string>, logged: ReadonlyArray<HistoryRecord>) => {
  expect(got.length).toBeGreaterThan(0)
  expect(got.length).toBeLessThanOrEqual(samples)
  const rowsWith = logged.filter((row) => keys.some((key) => key in row.values))
  expect(got.at(-1)!.step).toBe(rowsWith.at(-1)!.step)
  let previous = -1
  for (const bucket of got) {
    expect(bucket.step).toBeGreaterThan(previous)
    // A bucket holds the logged steps after the previous bucket's last, up to its own last.
    const inside = rowsWith.filter((row) => row.step > previous && row.step <= bucket.step)
    expect(inside.at(-1)!.step).toBe(bucket.step)
    expect(bucket.ts).toBe(inside.at(-1)!.ts)
    for (const key of keys) {
      const withKey = inside.filter((row) => key in row.values)
      if (withKey.length === 0) {
        expect(key in bucket.values).toBe(false)
        continue
      }
      expect(bucket.values[key]).toBe(withKey.at(-1)!.values[key])
      const numbers = withKey.map((row) => row.values[key]).filter((v): v is number => typeof v === "number")
      expect(bucket.min?.[key]).toBe(numbers.length > 0 ? Math.min(...numbers) : undefined)
      expect(bucket.max?.[key]).toBe(numbers.length > 0 ? Math.max(...numbers) : undefined)
    }
    previous = bucket.step
  }
}

/** Registers the contract suite against one backend. */
export const recordStoreContract = <E>(name: string, store: Layer.Layer<RecordStore, E>) =>
  layer(store)(`RecordStore contract: ${name}`, (it) => {
    it.effect("acknowledges a batch and stores a re-sent batch only once", () =>
      Effect.gen(function* () {
        const project = freshProject()
        expect(yield* ingest(project, rows(0, 10))).toEqual({ ackSeq: 10 })
        expect(yield* ingest(project, rows(0, 10))).toEqual({ ackSeq: 10 })
        expect(yield* ingest(project, [...rows(5, 12), ...rows(5, 12)])).toEqual({ ackSeq: 12 })
        const run = yield* detail(project)
        expect([run.records, run.historyRows]).toEqual([12, 12])
        expect((yield* history(project)).map((row) => row.step)).toEqual(Array.from({ length: 12 }, (_, i) => i))
      }))

    it.effect("stores a history block as the rows it stands for, and of a block partly held only the rows not held yet", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const logged = Array.from({ length: 30 }, (_, i) => historyRecord(i, i, { loss: i / 10, acc: -i }))
        expect(yield* ingest(project, logged.slice(0, 5))).toEqual({ ackSeq: 5 })
        // Rows 3 and 4 again, with other values: held already, they change nothing.
        const resent = logged.slice(3, 15).map((row) => (row.seq < 5 ? { ...row, values: { loss: 99, acc: 99 } } : row))
        expect(yield* ingest(project, [blockOf(resent)])).toEqual({ ackSeq: 15 })
        // Within a batch the first of a seq wins: row 25 comes in the block before the lone record.
        const late = [blockOf(logged.slice(20, 30)), historyRecord(25, 25, { loss: 7 }), blockOf(logged.slice(15, 20))]
        expect(yield* ingest(project, late)).toEqual({ ackSeq: 30 })
        expect(yield* ingest(project, [blockOf(logged)])).toEqual({ ackSeq: 30 })
        const run = yield* detail(project)
        expect([run.records, run.historyRows, run.updatedAt]).toEqual([30, 30, 1_029])
        expect(run.summary).toEqual({ loss: 2.9, acc: -29 })
        expect(yield* history(project)).toEqual(logged.map(({ step, ts, values }) => ({ step, ts, values })))
        // A block past a gap is held, but the prefix ends at the gap until it is filled.
        const other = freshProject()
        expect(yield* ingest(other, [blockOf(logged.slice(10, 20))])).toEqual({ ackSeq: 0 })
        expect(yield* ingest(other, [blockOf(logged.slice(0, 12))])).toEqual({ ackSeq: 20 })
        expect((yield* detail(other)).records).toBe(20)
      }))

    it.effect("gives back every number of a history block exactly: NaN, ±Infinity, -0, subnormals", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const values = { nan: NaN, inf: Infinity, ninf: -Infinity, nzero: -0, tiny: 5e-324, sum: 0.1 + 0.2 }
        yield* ingest(project, [blockOf([historyRecord(0, 0, values), historyRecord(1, 1, values)])])
        for (const row of yield* history(project)) {
          for (const [key, value] of Object.entries(values)) expect(Object.is(row.values[key], value), key).toBe(true)
        }
      }))

    it.effect("acknowledges only the contiguous prefix, whatever order batches arrive in", () =>
      Effect.gen(function* () {
        const project = freshProject()
        expect(yield* ingest(project, rows(0, 10))).toEqual({ ackSeq: 10 })
        expect(yield* ingest(project, rows(20, 30))).toEqual({ ackSeq: 10 })
        expect((yield* detail(project)).records).toBe(20)
        expect(yield* ingest(project, rows(10, 20).reverse())).toEqual({ ackSeq: 30 })
        expect(yield* ingest(project, rows(15, 25))).toEqual({ ackSeq: 30 })
        const run = yield* detail(project)
        expect([run.records, run.historyRows]).toEqual([30, 30])
        const other = freshProject()
        expect(yield* ingest(other, rows(1, 5))).toEqual({ ackSeq: 0 })
        expect(yield* ingest(other, [])).toEqual({ ackSeq: 0 })
      }))

    it.effect("stores nothing of a batch that fails part-way", () =>
      Effect.gen(function* () {
        const project = freshProject()
        yield* ingest(project, [runRecord(0, project, RUN), ...rows(1, 5)])
        // A run record naming another run is refused: the rows before it in the batch go with it.
        const bad = [...rows(5, 9), runRecord(9, project, "someone-else" as RunId), ...rows(10, 12)]
        const exit = yield* Effect.exit(ingest(project, bad))
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("StoreFailed")
        const run = yield* detail(project)
        expect([run.records, run.historyRows, run.updatedAt]).toEqual([5, 4, 1_004])
        expect((yield* history(project)).map((row) => row.step)).toEqual([1, 2, 3, 4])
        expect(yield* ingest(project, rows(5, 7))).toEqual({ ackSeq: 7 })
        // A brand-new run whose first batch fails is not created at all.
        const fresh = freshProject()
        expect(Exit.isFailure(yield* Effect.exit(ingest(fresh, [runRecord(0, project, RUN)], RUN)))).toBe(true)
        expect(yield* Effect.flatMap(RecordStore, (store) => store.getRun(fresh, RUN))).toEqual(Option.none())
      }))

    it.effect("keeps config and summary as their patches in seq order, whatever order they arrive in", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const config = (seq: number, patch: JsonPatch): Record => ({ kind: "config", seq, ts: 1_000 + seq, patch })
        const summary = (seq: number, patch: JsonPatch): Record => ({ kind: "summary", seq, ts: 1_000 + seq, patch })
        yield* ingest(project, [config(3, { lr: 0.3, extra: { deep: [1, 2] } }), summary(5, { best: 2 })])
        yield* ingest(project, [runRecord(0, project, RUN), config(1, { lr: 0.2, seed: 7 }), summary(4, { best: 1, acc: 0.5 })])
        const run = yield* detail(project)
        expect(run.config).toEqual({ lr: 0.3, layers: 4, seed: 7, extra: { deep: [1, 2] } })
        expect(run.summary).toEqual({ best: 2, acc: 0.5 })
      }))

    it.effect("shows the last value of each history key as the summary of a run without summary records", () =>
      Effect.gen(function* () {
        const project = freshProject()
        yield* ingest(project, [historyRecord(2, 2, { loss: 0.2 }), historyRecord(3, 3, { acc: "high" })])
        yield* ingest(project, [historyRecord(0, 0, { loss: 0.9, acc: 0.1 }), historyRecord(1, 1, { loss: 0.5 })])
        expect((yield* detail(project)).summary).toEqual({ loss: 0.2, acc: "high" })
      }))

    it.effect("follows the run's state: running, finished with its exit code, crashed", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore
        const project = freshProject()
        yield* ingest(project, [runRecord(0, project, RUN), ...rows(1, 3)])
        expect([(yield* detail(project)).state, (yield* detail(project)).exitCode]).toEqual(["running", null])
        const crashed = yield* store.putRun(project, RUN, metadata({ crashed: true }))
        expect([crashed.state, crashed.exitCode]).toEqual(["crashed", null])
        yield* ingest(project, [{ kind: "exit", seq: 3, ts: 2_000, exitCode: 3, signal: null, durationMs: 1_000 }])
        expect([(yield* detail(project)).state, (yield* detail(project)).exitCode]).toEqual(["finished", 3])
        // An exit record wins over a crash report.
        expect((yield* store.putRun(project, RUN, metadata({ crashed: true }))).state).toBe("finished")
      }))

    it.effect("takes name, tags, notes, host and start from the run record or putRun, and counts what it holds", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore
        const project = freshProject()
        const put = yield* store.putRun(project, RUN, metadata())
        expect(put).toMatchObject({
          runId: RUN,
          project,
          name: "from-put",
          state: "running",
          config: { batch: 32 },
          tags: ["put"],
          group: "g",
          host: "put-host",
          startedAt: 5_000,
          updatedAt: null,
          records: 0,
          historyRows: 0,
          historyKeys: []
        })
        yield* ingest(project, [runRecord(0, project, RUN), rows(1, 2)[0]!, { kind: "output", seq: 2, ts: 3_000, stream: "stdout", text: "hi" }])
        expect(yield* detail(project)).toMatchObject({
          name: "brave-otter",
          tags: ["a", "b"],
          notes: "first try",
          jobType: "train",
          host: "box",
          startedAt: 1_000,
          config: { batch: 32, lr: 0.1, layers: 4 },
          updatedAt: 3_000,
          records: 3,
          historyRows: 1,
          historyKeys: ["loss"],
          lastSteps: { loss: 1 }
        })
      }))

    it.effect("lists a project's runs newest first and projects with their run counts", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore
        const project = freshProject()
        const other = freshProject()
        yield* store.putRun(project, "old" as RunId, metadata({ startedAt: 1 }))
        yield* store.putRun(project, "new" as RunId, metadata({ startedAt: 3 }))
        yield* store.putRun(project, "mid" as RunId, metadata({ startedAt: 2 }))
        yield* ingest(other, rows(0, 1))
        expect((yield* store.listRuns(project, ALL_RUNS)).runs.map((run) => run.runId)).toEqual(["new", "mid", "old"])
        expect((yield* store.listRuns(freshProject(), ALL_RUNS)).runs).toEqual([])
        const listed = (yield* store.listProjects).projects.filter((p) => p.name === project || p.name === other)
        expect(listed.map(({ name, runs }) => ({ name, runs })).sort((a, b) => a.runs - b.runs)).toEqual([
          { name: other, runs: 1 },
          { name: project, runs: 3 }
        ])
        expect(listed.find((p) => p.name === other)?.updatedAt).toBe(1_000)
      }))

    it.effect("reads history in step order, picking keys and leaving out rows without them", () =>
      Effect.gen(function* () {
        const project = freshProject()
        yield* ingest(project, [historyRecord(2, 20, { loss: 2, acc: 0.2 }), historyRecord(3, 30, { acc: 0.3 })])
        yield* ingest(project, [historyRecord(0, 0, { loss: 0 }), historyRecord(1, 10, { loss: 1, lr: 1e-3 })])
        expect(yield* history(project)).toEqual([
          { step: 0, ts: 1_000, values: { loss: 0 } },
          { step: 10, ts: 1_001, values: { loss: 1, lr: 1e-3 } },
          { step: 20, ts: 1_002, values: { loss: 2, acc: 0.2 } },
          { step: 30, ts: 1_003, values: { acc: 0.3 } }
        ])
        expect(yield* history(project, { keys: ["loss"] })).toEqual([
          { step: 0, ts: 1_000, values: { loss: 0 } },
          { step: 10, ts: 1_001, values: { loss: 1 } },
          { step: 20, ts: 1_002, values: { loss: 2 } }
        ])
        expect((yield* history(project, { keys: ["acc", "lr"] })).map((row) => row.step)).toEqual([10, 20, 30])
        expect(yield* history(project, { keys: ["nope"] })).toEqual([])
        expect(yield* Effect.flatMap(RecordStore, (store) => store.history(project, "absent" as RunId, {}))).toEqual(
          Option.none()
        )
      }))

    it.effect("gives back every value exactly: NaN, ±Infinity, -0, subnormals, strings, booleans, null", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const values: { [key: string]: Value } = {
          nan: NaN,
          inf: Infinity,
          ninf: -Infinity,
          nzero: -0,
          zero: 0,
          sum: 0.1 + 0.2,
          tiny: 5e-324,
          huge: Number.MAX_VALUE,
          big: 2 ** 53 + 2,
          int: 7,
          text: "NaN",
          quoted: '"x"',
          empty: "",
          yes: true,
          no: false,
          nothing: null
        }
        yield* ingest(project, [historyRecord(0, 0, values), historyRecord(1, 1, values)])
        const check = (got: { readonly [key: string]: Value }) => {
          expect(Object.keys(got).sort()).toEqual(Object.keys(values).sort())
          for (const key of Object.keys(values)) expect(Object.is(got[key], values[key]), key).toBe(true)
        }
        const [raw] = yield* history(project)
        check(raw!.values)
        const [bucket] = yield* history(project, { samples: 1 })
        check(bucket!.values)
        // Min and max are of the numbers other than NaN; -0 may come back as 0 there (-0 === 0).
        const { nzero, ...min } = bucket!.min ?? {}
        expect(nzero === 0).toBe(true)
        expect(min).toEqual({ inf: Infinity, ninf: -Infinity, zero: 0, sum: 0.1 + 0.2, tiny: 5e-324, huge: Number.MAX_VALUE, big: 2 ** 53 + 2, int: 7 })
        expect(bucket!.max).toEqual(bucket!.min)
        check((yield* detail(project)).summary as { [key: string]: Value })
      }))

    it.effect("samples a long run into at most N buckets with the last row, min and max of each", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const logged = yield* ingestLongRun(project)
        expect((yield* detail(project)).historyRows).toBe(5_000)

        for (const samples of [1, 3, 10, 100, 1_000, 10_000]) {
          expectBuckets(yield* history(project, { samples, keys: ["loss"] }), samples, ["loss"], logged)
        }
        expectBuckets(yield* history(project, { samples: 7, keys: ["acc"] }), 7, ["acc"], logged)
        expectBuckets(yield* history(project, { samples: 40 }), 40, ["loss", "acc", "phase"], logged)
        expectBuckets(yield* history(project, { samples: 40, keys: ["phase"] }), 40, ["phase"], logged)
        // Enough buckets for every step: each row comes back as it was, with min = max = value.
        const all = yield* history(project, { samples: 5_000, keys: ["loss"] })
        expect(all.map((row) => row.values["loss"])).toEqual(logged.map((row) => row.values["loss"]))
      }))

    it.effect("samples a run read again as it grows and as a stored step is written again (a live chart): each answer as the store holds the run then", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const random = randoms(777)
        const logged: Array<HistoryRecord> = []
        for (let step = 0; step < 5_000; step++) {
          logged.push(historyRecord(step, step, step % 5 === 0 ? { loss: random(), acc: random() } : { loss: random() }))
        }
        // Narrow buckets (every entry folded) and wide ones (block summaries where a backend keeps them), each read twice.
        const readAll = (upTo: number) =>
          Effect.gen(function* () {
            for (const samples of [10, 100, 1_000, 100, 10]) {
              expectBuckets(yield* history(project, { samples }), samples, ["loss", "acc"], logged.slice(0, upTo))
            }
          })
        yield* ingest(project, logged.slice(0, 3_000))
        yield* readAll(3_000)
        // Grown within the same bucket widths (1,000 samples of 4 steps): the rows of the chunks
        // not written since stand, the others are made again.
        yield* ingest(project, logged.slice(3_000, 3_500))
        yield* readAll(3_500)
        yield* ingest(project, logged.slice(3_500))
        yield* readAll(5_000)
        // A later record at a step stored long ago (one of `loss` alone, in a chunk no other write touched since): it wins.
        const again = historyRecord(5_000, 1_501, { loss: 42 })
        yield* ingest(project, [again])
        logged[1_501] = again
        yield* readAll(5_000)
      }))

    it.effect("samples again alike after a late row in a bucket over two chunks, and after one before the first step", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const logged = Array.from({ length: 3_000 }, (_, step) => historyRecord(step, 1_000 + step, { loss: step }))
        yield* ingest(project, logged)
        // samples=10: buckets 320 steps wide, from step 960; the one of steps 1,920–2,239 spans two
        // chunks (CHUNK_STEPS 1,024) of any backend that keeps them so, and a late row lands in the second.
        expectBuckets(yield* history(project, { samples: 10 }), 10, ["loss"], logged)
        const late = historyRecord(3_000, 2_100, { loss: -5 })
        yield* ingest(project, [late])
        logged[1_100] = late
        expectBuckets(yield* history(project, { samples: 10 }), 10, ["loss"], logged)
        // A row before the first step moves where the buckets start, not how wide they are.
        yield* history(project, { samples: 200 })
        const early = historyRecord(3_001, 900, { loss: 7 })
        yield* ingest(project, [early])
        logged.unshift(early)
        const again = yield* history(project, { samples: 200 })
        expect(again[0]).toMatchObject({ min: { loss: 7 } })
        expectBuckets(again, 200, ["loss"], logged)
        // As a read of another range (nothing kept of it) answers.
        expect(again).toEqual(yield* history(project, { samples: 200, maxStep: 1_000_000 }))
        // No keys, or none the run has: no rows (the run is still found).
        for (const keys of [[], ["no-such-key"]]) {
          expect(yield* history(project, { samples: 200, keys })).toEqual([])
          expect(yield* history(project, { keys })).toEqual([])
        }
      }))

    it.effect("reads only the steps from minStep to maxStep, and samples only those", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const logged = yield* ingestLongRun(project)
        const between = (from: number, to: number) => logged.filter((row) => row.step >= from && row.step <= to)
        const asRows = (records: ReadonlyArray<HistoryRecord>) => records.map(({ step, ts, values }) => ({ step, ts, values }))
        // Bounds off the chunk and block edges of any backend, and on them.
        expect(yield* history(project, { minStep: 1_531, maxStep: 3_107 })).toEqual(asRows(between(1_531, 3_107)))
        expect(yield* history(project, { minStep: 1_024, maxStep: 2_047 })).toEqual(asRows(between(1_024, 2_047)))
        expect(yield* history(project, { minStep: 700, maxStep: 700 })).toEqual(asRows(between(700, 700)))
        // A live chart asks for what came after the last step it has.
        expect(yield* history(project, { minStep: 5_000 })).toEqual(asRows(between(5_000, Infinity)))
        expect(yield* history(project, { minStep: 5_010 })).toEqual([])
        expect(yield* history(project, { maxStep: 15 })).toEqual(asRows(between(0, 15)))
        expect((yield* history(project, { minStep: 1_531, maxStep: 3_107, keys: ["acc"] })).map((row) => row.step)).toEqual(
          between(1_531, 3_107).filter((row) => "acc" in row.values).map((row) => row.step)
        )
        // A zoom samples the range alone: wide buckets (read from block summaries where a backend
        // has them) and narrow ones.
        for (const samples of [1, 3, 10, 100, 2_000]) {
          expectBuckets(yield* history(project, { samples, keys: ["loss"], minStep: 1_531, maxStep: 3_107 }), samples, ["loss"], between(1_531, 3_107))
        }
        expectBuckets(yield* history(project, { samples: 20, minStep: 2_100, maxStep: 4_500 }), 20, ["loss", "acc", "phase"], between(2_100, 4_500))
        expectBuckets(yield* history(project, { samples: 5, minStep: 4_000 }), 5, ["loss", "acc"], between(4_000, Infinity))
        expect(yield* history(project, { samples: 10, minStep: 6_000 })).toEqual([])
      }))

    it.effect("reads a step's partial rows (a validation row logged after the step's row) as one row, and names each key's last step", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const records: Array<HistoryRecord> = []
        for (let step = 0; step < 5; step++) {
          records.push(historyRecord(records.length, step, { loss: step }))
          if (step % 2 === 0) records.push(historyRecord(records.length, step, { "val/loss": step * 10 }))
        }
        // Split so that a late row comes in a batch after its step's row.
        yield* ingest(project, records.slice(0, 3))
        yield* ingest(project, records.slice(3))
        expect(yield* history(project)).toEqual([0, 1, 2, 3, 4].map((step) => ({
          step,
          ts: records.find((record) => record.step === step)!.ts,
          values: step % 2 === 0 ? { loss: step, "val/loss": step * 10 } : { loss: step }
        })))
        expect((yield* history(project, { keys: ["val/loss"] })).map((row) => [row.step, row.values])).toEqual([
          [0, { "val/loss": 0 }],
          [2, { "val/loss": 20 }],
          [4, { "val/loss": 40 }]
        ])
        expect((yield* history(project, { samples: 1 }))[0]).toMatchObject({ step: 4, values: { loss: 4, "val/loss": 40 } })
        expect((yield* detail(project)).lastSteps).toEqual({ loss: 4, "val/loss": 4 })
      }))

    it.effect("refuses a batch that would give a run more than MAX_KEYS_PER_RUN keys, whole, with BatchOverLimit", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const wide = (seq: number, from: number, count: number) =>
          historyRecord(seq, seq, Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${from + i}`, i])))
        yield* ingest(project, [wide(0, 0, MAX_KEYS_PER_RUN - 1)])
        // A row of a key the run has, then one of two new keys: one past the limit.
        const refused = yield* Effect.flip(ingest(project, [historyRecord(1, 1, { k0: 1 }), wide(2, MAX_KEYS_PER_RUN, 2)]))
        expect(refused._tag).toBe("BatchOverLimit")
        expect(refused._tag === "BatchOverLimit" ? refused.detail : refused.message).toContain(`${MAX_KEYS_PER_RUN + 1} history keys`)
        expect(yield* detail(project)).toMatchObject({ records: 1, historyRows: 1 })
        expect((yield* detail(project)).historyKeys).toHaveLength(MAX_KEYS_PER_RUN - 1)
        // The key that fits still does.
        expect(yield* ingest(project, [historyRecord(1, 1, { k0: 1 }), wide(2, MAX_KEYS_PER_RUN, 1)])).toEqual({ ackSeq: 3 })
      }))

    it.effect("names a run's history keys, sorted, in getRun and listRuns", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore
        const project = freshProject()
        yield* ingest(project, [historyRecord(0, 0, { zeta: 1, alpha: 2 }), historyRecord(1, 1, { beta: "b" })])
        yield* ingest(project, [historyRecord(2, 2, { alpha: 3, "Upper/case": 4 })])
        const keys = ["Upper/case", "alpha", "beta", "zeta"]
        expect((yield* detail(project)).historyKeys).toEqual(keys)
        yield* store.putRun(project, "quiet" as RunId, metadata())
        const listed = (yield* store.listRuns(project, ALL_RUNS)).runs
        expect(listed.find((run) => run.runId === RUN)?.historyKeys).toEqual(keys)
        expect(listed.find((run) => run.runId === "quiet")?.historyKeys).toEqual([])
      }))

    it.effect("names history keys that Object.prototype also has (constructor, toString, …) like any other", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const keys = ["constructor", "toString", "hasOwnProperty", "valueOf"]
        const row = (seq: number) => historyRecord(seq, seq, Object.fromEntries(keys.map((key, k) => [key, seq * 10 + k])))
        yield* ingest(project, [runRecord(0, project, RUN), row(1), row(2)])
        const run = yield* detail(project)
        expect(run.historyKeys).toEqual([...keys].sort())
        expect(keys.map((key) => [Object.hasOwn(run.summary, key) ? run.summary[key] : "missing", run.lastSteps[key]])).toEqual([[20, 2], [21, 2], [22, 2], [23, 2]])
        expect((yield* history(project, { keys: ["constructor"] })).map((got) => got.values["constructor"])).toEqual([10, 20])
      }))

    it.effect("reads console output in seq order after a seq, at most a limit, with where to go on", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const line = (seq: number, stream: "stdout" | "stderr", text: string): Record => ({ kind: "output", seq, ts: 1_000 + seq, stream, text })
        yield* ingest(project, [line(5, "stderr", "warning: x\n"), historyRecord(4, 0, { loss: 1 }), line(7, "stdout", "done")])
        yield* ingest(project, [runRecord(0, project, RUN), line(1, "stdout", "epoch 1"), line(2, "stdout", ""), historyRecord(3, 1, { loss: 0.5 })])
        const all = [
          { seq: 1, ts: 1_001, stream: "stdout", text: "epoch 1" },
          { seq: 2, ts: 1_002, stream: "stdout", text: "" },
          { seq: 5, ts: 1_005, stream: "stderr", text: "warning: x\n" },
          { seq: 7, ts: 1_007, stream: "stdout", text: "done" }
        ]
        expect(yield* output(project, { after: -1, limit: 1_000 })).toEqual({ lines: all, next: 7 })
        expect(yield* output(project, { after: -1, limit: 2 })).toEqual({ lines: all.slice(0, 2), next: 2 })
        expect(yield* output(project, { after: 2, limit: 2 })).toEqual({ lines: all.slice(2), next: 7 })
        expect(yield* output(project, { after: 3, limit: 1 })).toEqual({ lines: all.slice(2, 3), next: 5 })
        expect(yield* output(project, { after: 7, limit: 10 })).toEqual({ lines: [], next: 7 })
        const quiet = freshProject()
        yield* ingest(quiet, rows(0, 3))
        expect(yield* Effect.flatMap(RecordStore, (store) => store.output(quiet, RUN, { after: -1, limit: 10 }))).toEqual(
          Option.some({ lines: [], next: -1 })
        )
        expect(yield* Effect.flatMap(RecordStore, (store) => store.output(project, "absent" as RunId, { after: -1, limit: 10 }))).toEqual(
          Option.none()
        )
      }))

    it.effect("answers history without samples a page of at most HISTORY_PAGE_ROWS rows at a time, next reading on without a gap or a repeat", () =>
      Effect.gen(function* () {
        const project = freshProject()
        // 25,000 steps, then a gap of 40,000, then 3,000 more; `acc` only on even steps.
        const logged = [...Array.from({ length: 25_000 }, (_, i) => i), ...Array.from({ length: 3_000 }, (_, i) => 65_000 + i)].map((step, seq) =>
          historyRecord(seq, step, step % 2 === 0 ? { loss: step / 7, acc: -step } : { loss: step / 7 }))
        for (let from = 0; from < logged.length; from += 4_000) yield* ingest(project, logged.slice(from, from + 4_000))
        const all = yield* pages(project)
        expect(all.length).toBeGreaterThan(2)
        for (const page of all) expect(page.length).toBeLessThanOrEqual(HISTORY_PAGE_ROWS)
        expect(all.flat()).toEqual(logged.map(({ step, ts, values }) => ({ step, ts, values })))
        // Within a step range, and for one key: still every row once, in order.
        const range = (yield* pages(project, { minStep: 9_000, maxStep: 66_000, keys: ["acc"] })).flat()
        expect(range.map((row) => row.step)).toEqual(logged.filter((r) => r.step >= 9_000 && r.step <= 66_000 && "acc" in r.values).map((r) => r.step))
        // The last page says so; samples answer the whole range at once.
        const last = Option.getOrThrow(yield* Effect.flatMap(RecordStore, (store) => store.history(project, RUN, { minStep: 67_000 })))
        expect(last).toEqual({ rows: logged.slice(-1_000).map(({ step, ts, values }) => ({ step, ts, values })), next: null })
        const sampled = Option.getOrThrow(yield* Effect.flatMap(RecordStore, (store) => store.history(project, RUN, { samples: 100 })))
        expect(sampled.next).toBeNull()
      }))

    it.effect("caps an output answer at OUTPUT_PAGE_BYTES of text, but always answers one line", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const line = (seq: number, length: number): Record => ({ kind: "output", seq, ts: seq, stream: "stdout", text: "x".repeat(length) })
        const third = Math.floor(OUTPUT_PAGE_BYTES / 3)
        yield* ingest(project, [line(0, third), line(1, third), line(2, third), line(3, third), line(4, OUTPUT_PAGE_BYTES * 2), line(5, 1)])
        const first = yield* output(project, { after: -1, limit: 1_000 })
        expect([first.lines.map((l) => l.seq), first.next]).toEqual([[0, 1, 2], 2])
        const second = yield* output(project, { after: first.next, limit: 1_000 })
        expect([second.lines.map((l) => l.seq), second.next]).toEqual([[3], 3])
        const big = yield* output(project, { after: second.next, limit: 1_000 })
        expect([big.lines.map((l) => l.text.length), big.next]).toEqual([[OUTPUT_PAGE_BYTES * 2], 4])
        expect((yield* output(project, { after: 4, limit: 1_000 })).lines.map((l) => l.seq)).toEqual([5])
      }))

    it.effect("stores a batch far over one slice whole, and nothing of it when its last record is refused", () =>
      Effect.gen(function* () {
        const project = freshProject()
        const wide = (seq: number): HistoryRecord => historyRecord(seq, seq, Object.fromEntries(Array.from({ length: 10 }, (_, k) => [`k${k}`, seq + k])))
        // ~30 slices: rows, then a block of 60,000 rows, then rows again.
        const rowsBefore = Array.from({ length: 20_000 }, (_, i) => wide(i))
        const block = blockOf(Array.from({ length: 60_000 }, (_, i) => historyRecord(20_000 + i, 20_000 + i, { k0: i, k1: -i })))
        const rowsAfter = Array.from({ length: 1_000 }, (_, i) => wide(80_000 + i))
        const refused = yield* Effect.exit(ingest(project, [...rowsBefore, block, ...rowsAfter, runRecord(81_000, project, "other" as RunId)]))
        expect(Exit.isFailure(refused)).toBe(true)
        expect(Option.isNone(yield* Effect.flatMap(RecordStore, (store) => store.getRun(project, RUN))) || (yield* detail(project)).records === 0).toBe(true)
        expect(yield* ingest(project, [...rowsBefore, block, ...rowsAfter])).toEqual({ ackSeq: 81_000 })
        const run = yield* detail(project)
        expect([run.records, run.historyRows, run.summary["k9"], run.summary["k1"]]).toEqual([81_000, 81_000, 80_999 + 9, 80_999 + 1])
        const edge = yield* history(project, { minStep: 19_998, maxStep: 20_001, keys: ["k0", "k1"] })
        expect(edge.map((row) => [row.step, row.values["k0"], row.values["k1"]])).toEqual([[19_998, 19_998, 19_999], [19_999, 19_999, 20_000], [20_000, 0, -0], [20_001, 1, -1]])
      }))

    it.effect("stores a slice whose writes pass PostgreSQL's 65,535 parameters of a statement, whole", () =>
      Effect.gen(function* () {
        const project = freshProject()
        // One slice (slices.ts): 12,000 output lines (48,000 parameters) and 3,000 rows a chunk apart (a frame and a chunk each: 57,000).
        const lines = Array.from({ length: 12_000 }, (_, i): Record => ({ kind: "output", seq: 1 + i, ts: i, stream: "stdout", text: `line ${i}` }))
        const sparse = Array.from({ length: 3_000 }, (_, i) => historyRecord(12_001 + i, i * 2_048, { loss: i }))
        expect(yield* ingest(project, [runRecord(0, project, RUN), ...lines, ...sparse])).toEqual({ ackSeq: 15_001 })
        expect([(yield* detail(project)).records, (yield* detail(project)).historyRows]).toEqual([15_001, 3_000])
        const read = yield* output(project, { after: 11_995, limit: 10 })
        expect(read.lines.map((line) => line.text)).toEqual(["line 11995", "line 11996", "line 11997", "line 11998", "line 11999"])
        const tail = yield* history(project, { minStep: 2_996 * 2_048 })
        expect(tail.map((row) => [row.step, row.values["loss"]])).toEqual([[2_996 * 2_048, 2_996], [2_997 * 2_048, 2_997], [2_998 * 2_048, 2_998], [2_999 * 2_048, 2_999]])
      }))

    it.effect("deletes a run whole, keeps other runs, and refuses every later write of its id with RunGone", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore
        const project = freshProject()
        const kept = "kept" as RunId
        yield* ingest(project, [runRecord(0, project, RUN), ...rows(1, 50), blockOf(rows(50, 80) as Array<HistoryRecord>)])
        yield* ingest(project, [runRecord(0, project, kept), ...rows(1, 5)], kept)
        expect(yield* store.deleteRun(project, RUN)).toEqual(Option.some({ project, runId: RUN, records: 80, historyRows: 79 }))

        expect(yield* store.getRun(project, RUN)).toEqual(Option.none())
        expect(yield* store.history(project, RUN, {})).toEqual(Option.none())
        expect((yield* store.listRuns(project, ALL_RUNS)).runs.map((run) => run.runId)).toEqual([kept])
        expect((yield* store.history(project, kept, {})).pipe(Option.map((found) => found.rows.length))).toEqual(Option.some(4))

        const refusedTag = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) => Effect.map(Effect.flip(effect), (error) => error._tag)
        expect(yield* refusedTag(ingest(project, rows(80, 90)))).toBe("RunGone")
        expect(yield* refusedTag(ingest(project, rows(0, 10)))).toBe("RunGone")
        expect(yield* refusedTag(store.putRun(project, RUN, metadata()))).toBe("RunGone")
        expect(yield* refusedTag(store.deleteRun(project, RUN))).toBe("RunGone")
        expect(yield* store.getRun(project, RUN)).toEqual(Option.none())
        // Only that id of that project: the same id elsewhere, and an id never stored, are as before.
        const other = freshProject()
        expect(yield* ingest(other, rows(0, 3))).toEqual({ ackSeq: 3 })
        expect(yield* store.deleteRun(project, "never" as RunId)).toEqual(Option.none())
      }))

    it.effect("filters, sorts and pages a project's runs as the query says, runs without a value last", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore
        const project = freshProject()
        // Five runs: lr and val/acc differ; one has no val/acc, one a string lr; tags and states vary.
        const made = [
          { id: "r1", lr: 0.001, acc: 0.95, tags: ["mlp", "big"], exit: true, started: 1 },
          { id: "r2", lr: 0.003, acc: 0.91, tags: ["mlp"], exit: true, started: 2 },
          { id: "r3", lr: 0.03, acc: 0.97, tags: ["cnn"], exit: false, started: 3 },
          { id: "r4", lr: 0.0005, acc: undefined, tags: ["mlp"], exit: false, started: 4 },
          { id: "r5", lr: "auto", acc: 0.5, tags: [], exit: true, started: 5 }
        ]
        for (const run of made) {
          const runId = run.id as RunId
          const records: Array<Record> = [runRecord(0, project, runId, { config: { lr: run.lr, opt: { name: run.id === "r3" ? "sgd" : "adam" } }, tags: run.tags, name: `name-${run.id}` })]
          if (run.acc !== undefined) records.push({ kind: "summary", seq: 1, ts: 2_000, patch: { "val/acc": run.acc } })
          if (run.exit) records.push({ kind: "exit", seq: records.length, ts: 3_000, exitCode: 0, signal: null, durationMs: 1 })
          yield* ingest(project, records, runId)
          yield* store.putRun(project, runId, metadata({ startedAt: run.started, tags: run.tags, name: `name-${run.id}`, config: {} }))
        }
        const ids = (filter?: string, sort?: string, limit?: number, cursor?: string) =>
          Effect.map(
            store.listRuns(project, Either.getOrThrow(parseRunQuery({ filter, sort, limit, cursor }))),
            (list) => ({ ids: list.runs.map((run) => run.runId as string), next: list.next })
          )
        expect((yield* ids()).ids).toEqual(["r5", "r4", "r3", "r2", "r1"])
        expect((yield* ids("state = finished")).ids).toEqual(["r5", "r2", "r1"])
        expect((yield* ids("state != finished")).ids).toEqual(["r4", "r3"])
        expect((yield* ids("config.lr < 0.01")).ids).toEqual(["r4", "r2", "r1"])
        expect((yield* ids(`config.lr < 0.01 and summary["val/acc"] > 0.9`)).ids).toEqual(["r2", "r1"])
        expect((yield* ids("summary.val/acc >= 0.95 and tags has mlp")).ids).toEqual(["r1"])
        expect((yield* ids("config.lr = auto")).ids).toEqual(["r5"])
        expect((yield* ids(`config.opt.name = "sgd"`)).ids).toEqual(["r3"])
        expect((yield* ids("config.lr != 0.001")).ids).toEqual(["r4", "r3", "r2"])
        expect((yield* ids("name ~ NAME-R2")).ids).toEqual(["r2"])
        // text looks in the name, the id, notes, group, job type, host and tags at once.
        expect((yield* ids("text ~ BIG")).ids).toEqual(["r1"])
        expect((yield* ids("text ~ r3 and text ~ cnn")).ids).toEqual(["r3"])
        expect((yield* ids("config.missing > 1")).ids).toEqual([])
        // Sorted by val/acc, best first; r4 has none and comes last either way.
        expect((yield* ids(undefined, `-summary["val/acc"]`)).ids).toEqual(["r3", "r1", "r2", "r5", "r4"])
        expect((yield* ids(undefined, `summary["val/acc"]`)).ids).toEqual(["r5", "r2", "r1", "r3", "r4"])
        // Numbers before strings; paged two at a time, each page after the last one's cursor.
        const pages: Array<string> = []
        let cursor: string | undefined
        do {
          const page = yield* ids(undefined, "config.lr", 2, cursor)
          pages.push(page.ids.join(","))
          cursor = page.next
        } while (cursor !== undefined)
        expect(pages).toEqual(["r4,r1", "r2,r3", "r5"])
        // A cursor is its sort's: with another sort it is refused, not misread.
        const cursor2 = (yield* ids(undefined, "config.lr", 2)).next!
        expect(Either.isLeft(parseRunQuery({ sort: "-config.lr", cursor: cursor2 }))).toBe(true)
      }))

    it.effect("pages through ties, runs without the value and non-finite values, each run once", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore
        const project = freshProject()
        // loss: three runs tie at 1, one diverged (Infinity: no value), one never logged it, one at 2.
        const losses: ReadonlyArray<readonly [string, number | undefined]> = [["a", 1], ["b", Infinity], ["c", 1], ["d", undefined], ["e", 2], ["f", 1]]
        for (const [id, loss] of losses) {
          const values = loss === undefined ? { acc: 0.5 } : { loss }
          yield* ingest(project, [runRecord(0, project, id as RunId), historyRecord(1, 0, values)], id as RunId)
        }
        for (const [sort, limit, expected] of [
          ["-summary.loss", 2, ["e", "a", "c", "f", "b", "d"]],
          ["summary.loss", 4, ["a", "c", "f", "e", "b", "d"]],
          ["summary.loss", 1, ["a", "c", "f", "e", "b", "d"]]
        ] as const) {
          const seen: Array<string> = []
          let cursor: string | undefined
          do {
            const page = yield* store.listRuns(project, Either.getOrThrow(parseRunQuery({ sort, limit, cursor })))
            seen.push(...page.runs.map((run) => run.runId))
            cursor = page.next
          } while (cursor !== undefined && seen.length <= losses.length)
          expect([sort, limit, seen]).toEqual([sort, limit, expected])
        }
        expect((yield* store.listRuns(project, Either.getOrThrow(parseRunQuery({ filter: "summary.loss >= 1" })))).runs.map((run) => run.runId).sort()).toEqual(["a", "c", "e", "f"])
      }))
  })
