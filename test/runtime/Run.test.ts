/**
 * The promise API as a user meets it: what `log()` stores, how steps and `commit: false` behave,
 * config and summary, finishing, and the three modes. Every assertion reads the run's journal back
 * from disk, so it checks what was recorded, not what the run object says about itself.
 *
 * Runs are opened with `openRun(options, { env })` so that this machine's STEPLOG_* variables and
 * credentials file cannot change a result; a few tests go through `init()` to check the facade.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it, vi } from "vitest"
import { init, InvalidSetting, NoApiKey } from "../../src/index.js"
import { readJournal } from "../../src/journal/JournalReader.js"
import { openRun } from "../../src/runtime/OpenRun.js"
import type { Run } from "../../src/runtime/Run.js"
import type { LinkedRunOptions, ServiceLink } from "../../src/runtime/ServiceLink.js"
import { MAX_KEY_LENGTH, MAX_KEYS_PER_RUN, MAX_VALUE_BYTES } from "../../src/schemas/Limits.js"
import type { HistoryRecord, Record } from "../../src/schemas/Record.js"
import type { InitOptions } from "../../src/schemas/Settings.js"
import { garbageCollector } from "../support/gc.js"
import { useTempDir } from "../support/tempDir.js"
import { useSteplogWarnings } from "../support/warnings.js"

const temp = useTempDir("run")

/** Runs opened by the current test; each is finished afterwards so that no exit hook outlives it. */
const opened: Array<Run> = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((run) => run.finish()))
})

type Env = { readonly [name: string]: string }

/** Opens a run in a fresh directory, reading `env` instead of `process.env`. */
const start = async (options: InitOptions, env: Env): Promise<Run> => {
  const run = await Effect.runPromise(openRun({ dir: temp.file("runs"), ...options }, { env }))
  opened.push(run)
  return run
}

/** Opens an offline run (chosen explicitly, so no notice is printed). */
const open = (options: InitOptions = {}, env: Env = {}): Promise<Run> => start({ mode: "offline", ...options }, env)

/** The error `openRun` fails with (the test fails if it succeeds). */
const openError = (options: InitOptions, env: Env = {}) => Effect.runPromise(Effect.flip(openRun(options, { env })))

/** Every record in the run's journal, which must be undamaged. */
const journal = (run: Run): ReadonlyArray<Record> => {
  const scan = Either.getOrThrow(readJournal(path.join(run.dir, "journal.slog")))
  expect(scan.damage).toEqual([])
  return scan.records
}

const historyOf = (run: Run): Array<HistoryRecord> =>
  journal(run).filter((record): record is HistoryRecord => record.kind === "history")

const rows = (run: Run) => historyOf(run).map(({ step, values }) => ({ step, values }))

const ofKind = <K extends Record["kind"]>(run: Run, kind: K) =>
  journal(run).filter((record): record is Extract<Record, { kind: K }> => record.kind === kind)

const warnings = useSteplogWarnings()

class Point {
  constructor(readonly x = 1, readonly y = 2) {}
}

describe("log() values", () => {
  it("stores finite numbers, NaN, ±Infinity, strings, booleans and null exactly as given", async () => {
    const run = await open()
    const row = {
      int: 42,
      negative: -7,
      fraction: 0.1,
      tiny: 5e-324,
      huge: 1e300,
      maxSafe: Number.MAX_SAFE_INTEGER,
      nan: Number.NaN,
      inf: Number.POSITIVE_INFINITY,
      negInf: Number.NEGATIVE_INFINITY,
      text: "héllo, 日本 🙂",
      empty: "",
      yes: true,
      no: false,
      nothing: null
    }
    run.log(row)
    await run.finish()
    expect(rows(run)).toEqual([{ step: 0, values: row }])
    expect(await warnings.settled()).toEqual([])
  })

  it("flattens nested plain objects into a/b keys, at any depth", async () => {
    const run = await open()
    run.log({ top: 1, train: { loss: 0.5, acc: 0.9 }, eval: { top1: { acc: 0.7, label: "x" }, deep: { a: { b: { c: true } } } } })
    await run.finish()
    expect(rows(run)).toEqual([
      {
        step: 0,
        values: { top: 1, "train/loss": 0.5, "train/acc": 0.9, "eval/top1/acc": 0.7, "eval/top1/label": "x", "eval/deep/a/b/c": true }
      }
    ])
  })

  it.each([
    { given: 5, named: "number" },
    { given: "loss", named: "string" },
    { given: null, named: "null" },
    { given: undefined, named: "undefined" },
    { given: [1, 2], named: "array" },
    { given: new Map([["loss", 1]]), named: "Map" },
    { given: new Point(), named: "Point" }
  ])("throws a TypeError naming a $named given as the argument, and records nothing", async ({ given, named }) => {
    const run = await open()
    expect(() => run.log(given as never)).toThrow(TypeError)
    expect(() => run.log(given as never)).toThrow(new RegExp(`given (a |an )?${named}\\b`))
    await run.finish()
    expect(historyOf(run)).toEqual([])
  })

  it.each([
    { value: () => 1, type: "function" },
    { value: Symbol("s"), type: "symbol" },
    { value: 10n, type: "bigint" },
    { value: new Date(0), type: "Date" },
    { value: new Point(), type: "Point" },
    { value: new Map(), type: "Map" },
    { value: [1, 2, 3], type: "array" }
  ])("skips a $type value with one warning naming the key and the type, and keeps the rest of the row", async ({ value, type }) => {
    const run = await open()
    run.log({ loss: 1, bad: value })
    run.log({ loss: 2, bad: value })
    run.log({ loss: 3, nested: { bad: value } })
    await run.finish()
    expect(rows(run)).toEqual([
      { step: 0, values: { loss: 1 } },
      { step: 1, values: { loss: 2 } },
      { step: 2, values: { loss: 3 } }
    ])
    const seen = await warnings.settled()
    // One per key: "bad" (logged twice) once, and "nested/bad" once.
    expect(seen).toHaveLength(2)
    expect(seen[0]).toContain(`"bad"`)
    expect(seen[0]).toContain(type)
    expect(seen[1]).toContain(`"nested/bad"`)
    expect(seen[1]).toContain(type)
  })

  it("skips the key of a cycle inside a logged object and keeps what came before it", async () => {
    const run = await open()
    const model: { [key: string]: unknown } = { layers: 3 }
    model["self"] = model
    run.log({ loss: 1, model })
    await run.finish()
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1, "model/layers": 3 } }])
    const seen = await warnings.settled()
    expect(seen).toHaveLength(1)
    expect(seen[0]).toContain(`"model/self"`)
    expect(seen[0]).toContain("cyclic")
  })

  it("skips a key that points back at the logged object itself", async () => {
    const run = await open()
    const row: { [key: string]: unknown } = { loss: 1 }
    row["self"] = row
    run.log(row)
    await run.finish()
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1 } }])
    const seen = await warnings.settled()
    expect(seen).toHaveLength(1)
    expect(seen[0]).toContain(`"self"`)
    expect(seen[0]).toContain("cyclic")
  })
})

describe("log() limits (src/schemas/Limits.ts)", () => {
  const manyKeys = (from: number, count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${from + i}`, i]))

  it("drops the keys past MAX_KEYS_PER_RUN, each named once, and keeps the rest of the row and the keys it has", async () => {
    const run = await open()
    run.log(manyKeys(0, MAX_KEYS_PER_RUN - 1))
    // One more key fits; the next two do not, and the keys already known still do.
    run.log({ k0: -1, extra1: 1, extra2: 2, extra3: 3 })
    run.log({ k0: -2, extra1: 10, extra2: 20 })
    run.log({ extra2: 30 }, { step: 7 })
    await run.finish()
    const history = rows(run)
    expect(history.slice(1)).toEqual([
      { step: 1, values: { k0: -1, extra1: 1 } },
      { step: 2, values: { k0: -2, extra1: 10 } },
      { step: 7, values: {} }
    ])
    const seen = await warnings.settled()
    expect(seen).toEqual([
      expect.stringMatching(new RegExp(`dropped key "extra2": a run may have ${MAX_KEYS_PER_RUN} history keys`)),
      expect.stringMatching(/dropped key "extra3"/)
    ])
  })

  it("drops a key longer than MAX_KEY_LENGTH and a string value over MAX_VALUE_BYTES, with a warning each", async () => {
    const run = await open()
    const long = "k".repeat(MAX_KEY_LENGTH + 1)
    run.log({ loss: 1, [long]: 2, note: "x".repeat(MAX_VALUE_BYTES + 1) })
    run.log({ loss: 2, note: "ok" })
    await run.finish()
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1 } }, { step: 1, values: { loss: 2, note: "ok" } }])
    const seen = await warnings.settled()
    expect(seen).toHaveLength(2)
    expect(seen.find((w) => w.includes(`${MAX_KEY_LENGTH + 1} characters long`))).toBeDefined()
    expect(seen.find((w) => w.includes(`"note"`) && w.includes(`more than ${MAX_VALUE_BYTES} bytes`))).toBeDefined()
  })
})

describe("log() steps", () => {
  it("numbers rows 0, 1, 2, … when no step is given", async () => {
    const run = await open()
    for (let i = 0; i < 3; i++) run.log({ i })
    await run.finish()
    expect(rows(run)).toEqual([0, 1, 2].map((i) => ({ step: i, values: { i } })))
  })

  it("merges rows given the same step, writes a step's row when a later step arrives, and lets a plain log() complete it", async () => {
    const run = await open()
    run.log({ a: 1 }, { step: 10 })
    run.log({ b: 2 }, { step: 10 })
    run.log({ a: 3 }, { step: 20 })
    run.log({ c: 4 })
    run.log({ a: 5 })
    run.log({ a: 6 }, { step: 30, commit: true })
    run.log({ a: 7 })
    await run.finish()
    expect(rows(run)).toEqual([
      { step: 10, values: { a: 1, b: 2 } },
      { step: 20, values: { a: 3, c: 4 } },
      { step: 21, values: { a: 5 } },
      { step: 30, values: { a: 6 } },
      { step: 31, values: { a: 7 } }
    ])
  })

  it("writes the open row of the last given step when the run finishes", async () => {
    const run = await open()
    run.log({ a: 1 }, { step: 4 })
    await run.finish()
    expect(rows(run)).toEqual([{ step: 4, values: { a: 1 } }])
  })

  it("drops a key whose step goes backwards, naming it in a warning, and carries on", async () => {
    const run = await open()
    run.log({ a: 1 }, { step: 5 })
    run.log({ a: 2 }, { step: 3 })
    const atLog = await warnings.settled()
    expect(atLog).toHaveLength(1)
    expect(atLog[0]).toMatch(/step 3/)
    expect(atLog[0]).toMatch(/key "a" already has a value at step 5/)
    expect(atLog[0]).toMatch(/backwards/)
    run.log({ b: 3 })
    await run.finish()
    expect(rows(run)).toEqual([{ step: 5, values: { a: 1, b: 3 } }])
    // finish() adds the count of dropped values.
    const atFinish = (await warnings.settled()).slice(1)
    expect(atFinish).toHaveLength(1)
    expect(atFinish[0]).toMatch(/\b1 value was dropped/)
  })

  it("drops a key that already has a value at the step given, saying so", async () => {
    const run = await open()
    run.log({ a: 1 })
    run.log({ a: 2 }, { step: 0 })
    const atLog = await warnings.settled()
    expect(atLog).toHaveLength(1)
    expect(atLog[0]).toMatch(/key "a" already has a value at step 0/)
    await run.finish()
    expect(rows(run)).toEqual([{ step: 0, values: { a: 1 } }])
  })

  it("keeps the README's pattern: validation rows at steps already written are stored, and the next step does not move", async () => {
    const run = await open({ durability: "sync" })
    for (let step = 0; step < 5; step++) {
      run.log({ loss: 1 / (step + 1), acc: step / 10 })
      if (step % 2 === 0) run.log({ val: { loss: step, acc: step / 5 } }, { step })
    }
    // Written at once, not held open for a later step.
    expect(rows(run).at(-1)).toEqual({ step: 4, values: { "val/loss": 4, "val/acc": 0.8 } })
    run.log({ loss: 0 })
    await run.finish()
    expect(await warnings.settled()).toEqual([])
    expect(rows(run)).toEqual([
      { step: 0, values: { loss: 1, acc: 0 } },
      { step: 0, values: { "val/loss": 0, "val/acc": 0 } },
      { step: 1, values: { loss: 1 / 2, acc: 0.1 } },
      { step: 2, values: { loss: 1 / 3, acc: 0.2 } },
      { step: 2, values: { "val/loss": 2, "val/acc": 0.4 } },
      { step: 3, values: { loss: 1 / 4, acc: 0.3 } },
      { step: 4, values: { loss: 1 / 5, acc: 0.4 } },
      { step: 4, values: { "val/loss": 4, "val/acc": 0.8 } },
      { step: 5, values: { loss: 0 } }
    ])
    expect(run.summary.toJSON()).toMatchObject({ loss: 0, acc: 0.4, "val/loss": 4, "val/acc": 0.8 })
  })

  it("stores the keys of an earlier row that are new at its step and drops, by name, those that are not", async () => {
    const run = await open()
    run.log({ a: 1, b: 1 })
    run.log({ a: 2 })
    run.log({ a: 3, b: 3, c: 3 }, { step: 1 })
    run.log({ c: 4 }, { step: 0 })
    await run.finish()
    const dropped = await warnings.settled()
    expect(dropped.slice(0, 2)).toEqual([
      expect.stringMatching(/key "a" already has a value at step 1/),
      expect.stringMatching(/key "c" already has a value at step 1/)
    ])
    expect(dropped[2]).toMatch(/\b2 values were dropped/)
    expect(rows(run)).toEqual([
      { step: 0, values: { a: 1, b: 1 } },
      { step: 1, values: { a: 2 } },
      { step: 1, values: { b: 3, c: 3 } }
    ])
  })

  it("lets an earlier row with a new key land below a step left open, and writes the open one later", async () => {
    const run = await open()
    run.log({ a: 1 }, { step: 10 })
    run.log({ b: 2 }, { step: 7 })
    run.log({ a: 3 })
    run.log({ a: 4 })
    await run.finish()
    expect(await warnings.settled()).toEqual([])
    expect(rows(run)).toEqual([
      { step: 7, values: { b: 2 } },
      { step: 10, values: { a: 3 } },
      { step: 11, values: { a: 4 } }
    ])
  })

  it("remembers each key's last step across a resume", async () => {
    const dir = temp.file("runs")
    const first = await open({ dir, id: "again" })
    first.log({ loss: 1 })
    first.log({ loss: 2, "val/loss": 2 })
    await first.finish()
    const second = await open({ dir, id: "again", resume: "allow" })
    second.log({ loss: 3, "val/loss": 3, "test/loss": 3 }, { step: 1 })
    await second.finish()
    expect((await warnings.settled())[0]).toMatch(/key "loss" already has a value at step 1/)
    expect(rows(second)).toEqual([
      { step: 0, values: { loss: 1 } },
      { step: 1, values: { loss: 2, "val/loss": 2 } },
      { step: 1, values: { "test/loss": 3 } }
    ])
  })

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("rejects step %s with a TypeError and records nothing", async (step) => {
    const run = await open()
    expect(() => run.log({ a: 1 }, { step })).toThrow(TypeError)
    expect(() => run.log({ a: 1 }, { step })).toThrow(String(step))
    await run.finish()
    expect(historyOf(run)).toEqual([])
  })
})

describe("log() with commit: false", () => {
  // durability "sync" writes each record before log() returns, so the journal shows exactly
  // which rows have been written at each point.
  const sync = { durability: "sync" } as const

  it("merges into the current step's row, written when a plain log() commits it", async () => {
    const run = await open(sync)
    run.log({ loss: 1 }, { commit: false })
    run.log({ acc: 0.5 }, { commit: false })
    expect(historyOf(run)).toEqual([])
    run.log({ lr: 0.1 })
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1, acc: 0.5, lr: 0.1 } }])
    run.log({ loss: 2 })
    expect(rows(run).at(-1)).toEqual({ step: 1, values: { loss: 2 } })
  })

  it("writes the merged row when the step advances", async () => {
    const run = await open(sync)
    run.log({ loss: 1 }, { commit: false })
    run.log({ acc: 0.5 }, { step: 0, commit: false })
    run.log({ loss: 2 }, { step: 1, commit: false })
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1, acc: 0.5 } }])
  })

  it("writes the merged row when the run ends", async () => {
    const run = await open(sync)
    run.log({ loss: 1 }, { commit: false })
    run.log({ acc: 0.5 }, { commit: false })
    expect(historyOf(run)).toEqual([])
    await run.finish()
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1, acc: 0.5 } }])
  })
})

describe("config", () => {
  it("starts from the init() config, takes updates, and records both in the journal", async () => {
    const run = await open({ config: { lr: 0.1, layers: [64, 32] } })
    expect(run.config.toJSON()).toEqual({ lr: 0.1, layers: [64, 32] })
    run.config.update({ lr: 0.05, optimizer: { name: "adam", betas: [0.9, 0.999] } })
    expect(run.config.get("lr")).toBe(0.05)
    expect(run.config.get("optimizer")).toEqual({ name: "adam", betas: [0.9, 0.999] })
    expect(run.config.get("missing")).toBeUndefined()
    expect(run.config.toJSON()).toEqual({ lr: 0.05, layers: [64, 32], optimizer: { name: "adam", betas: [0.9, 0.999] } })
    await run.finish()
    expect(ofKind(run, "run")[0]!.config).toEqual({ lr: 0.1, layers: [64, 32] })
    expect(ofKind(run, "config").map((record) => record.patch)).toEqual([{ lr: 0.05, optimizer: { name: "adam", betas: [0.9, 0.999] } }])
  })

  it("refuses an update that is not JSON with a TypeError, and keeps the config as it was", async () => {
    const run = await open({ config: { lr: 0.1 } })
    expect(() => run.config.update({ lr: 0.2, callback: () => 1 })).toThrow(TypeError)
    expect(run.config.toJSON()).toEqual({ lr: 0.1 })
    await run.finish()
    expect(ofKind(run, "config")).toEqual([])
  })
})

describe("summary", () => {
  it("holds the last logged value of each key", async () => {
    const run = await open()
    run.log({ loss: 3, acc: 0.1 })
    run.log({ loss: 2, train: { loss: 2.5 } })
    expect(run.summary.toJSON()).toEqual({ loss: 2, acc: 0.1, "train/loss": 2.5 })
    expect(run.summary.get("acc")).toBe(0.1)
  })

  it("stays the last value of each key over thousands of rows, whichever keys each row has", async () => {
    const run = await open()
    const last: { [key: string]: number } = {}
    // Keys come and go with different periods, so the last value of each is set at a different row.
    for (let i = 0; i < 5000; i++) {
      const row: { [key: string]: number } = { loss: i }
      if (i % 7 === 0) row["eval"] = i
      if (i % 1000 === 3) row["rare"] = i
      Object.assign(last, row)
      run.log(row)
      if (i === 2500) expect(run.summary.toJSON()).toEqual(last)
    }
    expect(run.summary.toJSON()).toEqual(last)
    expect(run.summary.get("rare")).toBe(4003)
    await run.finish()
    expect(ofKind(run, "summary").at(-1)!.patch).toEqual(last)
  })

  it("keeps a value set with summary.set() over later logs, and records it", async () => {
    const run = await open()
    run.log({ loss: 3, acc: 0.1 })
    run.summary.set({ loss: 1.5, best: { epoch: 2 } })
    run.log({ loss: 1, acc: 0.2 })
    expect(run.summary.get("loss")).toBe(1.5)
    expect(run.summary.toJSON()).toEqual({ loss: 1.5, acc: 0.2, best: { epoch: 2 } })
    await run.finish()
    const patches = ofKind(run, "summary").map((record) => record.patch)
    expect(patches).toEqual([
      { loss: 1.5, best: { epoch: 2 } },
      // Written at finish: the whole summary.
      { loss: 1.5, acc: 0.2, best: { epoch: 2 } }
    ])
  })
})

describe("finish()", () => {
  it("writes the summary and exit records last, with seq counting every record from 0", async () => {
    const run = await open()
    run.log({ loss: 1 })
    run.config.update({ lr: 0.1 })
    run.log({ loss: 0.5 })
    const result = await run.finish({ exitCode: 3 })
    const records = journal(run)
    expect(records.map((record) => record.kind)).toEqual(["run", "history", "config", "history", "summary", "exit"])
    expect(records.map((record) => record.seq)).toEqual([0, 1, 2, 3, 4, 5])
    expect(records.at(-2)).toMatchObject({ kind: "summary", patch: { loss: 0.5 } })
    expect(records.at(-1)).toMatchObject({ kind: "exit", exitCode: 3, signal: null })
    expect(result).toEqual({
      uploaded: false,
      records: records.length,
      written: records.length,
      dropped: 0,
      pending: records.length,
      hint: expect.stringContaining(`steplog sync ${run.dir}`)
    })
  })

  it("is idempotent: later calls resolve to the same result and write nothing more", async () => {
    const run = await open()
    run.log({ loss: 1 })
    const first = run.finish()
    const second = run.finish({ exitCode: 1 })
    expect(await second).toEqual(await first)
    const third = await run.finish()
    expect(third).toEqual(await first)
    expect(ofKind(run, "exit")).toHaveLength(1)
    expect(ofKind(run, "exit")[0]!.exitCode).toBe(0)
  })

  it("ignores log(), config.update() and summary.set() afterwards, each with one warning", async () => {
    const run = await open()
    run.log({ loss: 1 })
    await run.finish()
    const before = journal(run)
    run.log({ loss: 2 })
    run.log({ loss: 3 })
    run.config.update({ lr: 1 })
    run.summary.set({ best: 1 })
    expect(journal(run)).toEqual(before)
    expect(run.config.get("lr")).toBeUndefined()
    const seen = await warnings.settled()
    expect(seen).toHaveLength(3)
    expect(seen[0]).toMatch(/log\(\) after finish\(\) is ignored/)
    expect(seen[1]).toMatch(/config\.update\(\) after finish\(\) is ignored/)
    expect(seen[2]).toMatch(/summary\.set\(\) after finish\(\) is ignored/)
  })

  it("removes the run's lock, so the directory is free for a resume", async () => {
    const run = await open()
    expect(fs.existsSync(path.join(run.dir, "lock"))).toBe(true)
    await run.finish()
    expect(fs.existsSync(path.join(run.dir, "lock"))).toBe(false)
  })
})

describe("modes", () => {
  it("does nothing at all in mode disabled: no directory, no records, no warnings", async () => {
    const dir = temp.file("disabled")
    const run = await Effect.runPromise(openRun({ dir, mode: "disabled", config: { lr: 0.1 } }, { env: {} }))
    expect(run.mode).toBe("disabled")
    run.log({ loss: 1 })
    run.log({ loss: 1 }, { step: 5, commit: false })
    run.config.update({ lr: 0.2 })
    run.summary.set({ best: 1 })
    expect(run.config.get("lr")).toBeUndefined()
    expect(run.summary.toJSON()).toEqual({})
    expect(await run.finish()).toMatchObject({ uploaded: false, records: 0 })
    expect(fs.existsSync(dir)).toBe(false)
    expect(await warnings.settled()).toEqual([])
  })

  it("is disabled by STEPLOG_MODE=disabled", async () => {
    const dir = temp.file("disabled")
    const run = await Effect.runPromise(openRun({ dir }, { env: { STEPLOG_MODE: "disabled" } }))
    expect(run.mode).toBe("disabled")
    run.log({ loss: 1 })
    await run.finish()
    expect(fs.existsSync(dir)).toBe(false)
  })

  /** A service link that starts no service: it records what it was told and reports every finish as uploaded. */
  const fakeLink = () => {
    const registered: Array<LinkedRunOptions> = []
    const link: ServiceLink = {
      register: (run) => {
        registered.push(run)
        return { flushed: () => {}, finish: () => Effect.succeed({ uploaded: true }), forget: () => {} }
      }
    }
    return { link, registered }
  }

  it("refuses mode online without an API key with NoApiKey, saying how to get one", async () => {
    const dir = temp.file("online")
    const error = await openError({ dir, mode: "online" }, { XDG_CONFIG_HOME: temp.file("xdg") })
    expect(error).toBeInstanceOf(NoApiKey)
    expect(error.message).toContain(`mode "online" needs an API key for http://127.0.0.1:7077`)
    expect(error.message).toContain("STEPLOG_API_KEY")
    expect(error.message).toContain("steplog login")
    expect(error.message).toContain("steplog keys create")
    expect(error.message).toContain(`mode: "offline"`)
    expect(fs.existsSync(dir)).toBe(false)
  })

  it("defaults to online when STEPLOG_API_KEY holds a key, and registers the run with the service link", async () => {
    const { link, registered } = fakeLink()
    const run = await Effect.runPromise(openRun({ dir: temp.file("online") }, { env: { STEPLOG_API_KEY: "sk-test" }, serviceLink: link }))
    expect(run.mode).toBe("online")
    expect(registered).toMatchObject([{ runId: run.id, runDir: run.dir, baseUrl: "http://127.0.0.1:7077", apiKey: "sk-test" }])
    run.log({ loss: 1 })
    expect(await run.finish()).toEqual({ uploaded: true, records: 4, written: 4, dropped: 0 })
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1 } }])
  })

  it("defaults to online when the credentials file holds a key for the server", async () => {
    const config = temp.file("xdg")
    fs.mkdirSync(path.join(config, "steplog"), { recursive: true })
    fs.writeFileSync(path.join(config, "steplog", "credentials.json"), JSON.stringify({ keys: { "http://127.0.0.1:9999": "sk-test" } }), {
      mode: 0o600
    })
    const env = { XDG_CONFIG_HOME: config, STEPLOG_BASE_URL: "http://127.0.0.1:9999" }
    const { link, registered } = fakeLink()
    const run = await Effect.runPromise(openRun({ dir: temp.file("online") }, { env, serviceLink: link }))
    expect(run.mode).toBe("online")
    expect(registered).toMatchObject([{ baseUrl: "http://127.0.0.1:9999", apiKey: "sk-test" }])
    await run.finish()
    // A key stored for another server is not a key for this one.
    const other = await start({}, { XDG_CONFIG_HOME: config })
    expect(other.mode).toBe("offline")
  })

  it("records offline when asked to, even with a key at hand", async () => {
    const run = await open({ mode: "offline" }, { STEPLOG_API_KEY: "sk-test" })
    expect(run.mode).toBe("offline")
    run.log({ loss: 1 })
    await run.finish()
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1 } }])
  })

  describe("the offline notice", () => {
    const stderr = () => {
      const spy = vi.spyOn(process.stderr, "write").mockImplementation(() => true)
      return {
        notices: () => spy.mock.calls.map(([chunk]) => String(chunk)).filter((text) => text.startsWith("steplog:")),
        restore: () => spy.mockRestore()
      }
    }

    it("is printed when offline is the default, naming the run, its directory and the sync command", async () => {
      const captured = stderr()
      try {
        const run = await start({}, {})
        expect(run.mode).toBe("offline")
        const notices = captured.notices()
        expect(notices).toHaveLength(1)
        expect(notices[0]).toContain(run.id)
        expect(notices[0]).toContain("offline")
        expect(notices[0]).toContain(`steplog sync ${run.dir}`)
      } finally {
        captured.restore()
      }
    })

    it("is not printed when the mode was chosen", async () => {
      const captured = stderr()
      try {
        await open({ mode: "offline" })
        await start({}, { STEPLOG_MODE: "offline" })
        expect(captured.notices()).toEqual([])
      } finally {
        captured.restore()
      }
    })
  })
})

describe("init()", () => {
  it("resolves to a recording run", async () => {
    const run = await init({ dir: temp.file("runs"), mode: "offline", project: "p" })
    opened.push(run)
    run.log({ loss: 1 })
    await run.finish()
    expect(run.project).toBe("p")
    expect(rows(run)).toEqual([{ step: 0, values: { loss: 1 } }])
  })

  it("rejects with the typed error itself", async () => {
    await expect(init({ dir: temp.file("online"), mode: "online", baseUrl: "http://127.0.0.1:1" })).rejects.toBeInstanceOf(NoApiKey)
    await expect(init({ dir: temp.file("bad"), mode: "offline", durability: "fast" as never })).rejects.toBeInstanceOf(InvalidSetting)
  })
})

describe("bounded memory", () => {
  it("takes a million log() calls with a buffer of 16: every row in the journal, in order, and the heap bounded", async () => {
    const TOTAL = 1_000_000
    const collectGarbage = garbageCollector()
    const run = await open({ bufferSize: 16 })
    collectGarbage()
    const baseline = process.memoryUsage().heapUsed
    let peak = 0
    for (let i = 0; i < TOTAL; i++) {
      run.log({ loss: 1 / (i + 1), acc: i / TOTAL })
      if ((i + 1) % 100_000 === 0) {
        collectGarbage()
        peak = Math.max(peak, process.memoryUsage().heapUsed - baseline)
      }
    }
    // A buffer that grew would hold a million rows here: well over 100 MiB.
    expect(peak).toBeLessThan(16 * 1024 * 1024)
    await run.finish()
    const history = historyOf(run)
    expect(history).toHaveLength(TOTAL)
    history.forEach((record, i) => {
      if (record.step !== i || record.values["acc"] !== i / TOTAL) throw new Error(`row ${i} is out of place: ${JSON.stringify(record)}`)
    })
  })
})
