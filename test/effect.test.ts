/**
 * The Effect face: `Steplog.layer` opens a run for the life of a scope and `Steplog.log` logs to
 * it. The run's timers follow the program's Clock, so under `TestClock` the flush interval passes
 * only when the test says so: that is what lets these tests see the journal before and after a
 * flush without sleeping.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as path from "node:path"
import { Steplog } from "../src/effect.js"
import { readJournal } from "../src/journal/JournalReader.js"
import type { Run } from "../src/runtime/Run.js"
import type { Record } from "../src/schemas/Record.js"
import { useTempDir } from "./support/tempDir.js"

const temp = useTempDir("effect")

/** A TestClock time far from 0, so that a ts taken from the wall clock could not pass for it. */
const START = Date.UTC(2030, 0, 1)

/** Opens a run in `scope` under the TestClock; the run finishes when the scope closes. */
const openIn = (scope: Scope.Scope) =>
  Effect.map(
    Layer.buildWithScope(Steplog.layer({ dir: temp.file("runs"), mode: "offline", flushIntervalMs: 100 }), scope),
    (context) => Context.get(context, Steplog)
  )

/** Every record in the run's journal so far; the journal must be undamaged. */
const journal = (run: Run) =>
  Effect.sync((): ReadonlyArray<Record> => {
    const scan = Either.getOrThrow(readJournal(path.join(run.dir, "journal.slog")))
    expect(scan.damage).toEqual([])
    return scan.records
  })

const history = (run: Run) => Effect.map(journal(run), (records) => records.filter((record) => record.kind === "history"))

describe("Steplog.layer", () => {
  it.scoped("writes logged rows to the journal only once the flush interval has passed on the Clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(START)
      const run = yield* openIn(yield* Effect.scope)
      for (let step = 0; step < 5; step++) yield* Steplog.log({ loss: 1 / (step + 1) }).pipe(Effect.provideService(Steplog, run))
      expect(yield* journal(run)).toEqual([])
      yield* TestClock.adjust("99 millis")
      expect(yield* history(run)).toEqual([])
      yield* TestClock.adjust("1 millis")
      const rows = yield* history(run)
      expect(rows.map((record) => record.kind === "history" && [record.step, record.values])).toEqual(
        [0, 1, 2, 3, 4].map((step) => [step, { loss: 1 / (step + 1) }])
      )
    }))

  it.scoped("stamps every record with the time on the program's Clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(START)
      const run = yield* openIn(yield* Effect.scope)
      const log = (loss: number) => Steplog.log({ loss }).pipe(Effect.provideService(Steplog, run))
      yield* log(3)
      yield* TestClock.adjust("40 millis")
      yield* log(2)
      yield* Steplog.updateConfig({ lr: 0.1 }).pipe(Effect.provideService(Steplog, run))
      yield* TestClock.adjust("60 millis")
      const records = yield* journal(run)
      expect(records.map((record) => [record.kind, record.ts])).toEqual([
        ["run", START],
        ["history", START],
        ["history", START + 40],
        ["config", START + 40]
      ])
    }))

  it.effect("finishes the run when the layer's scope closes: the last rows, the summary and the exit record", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(START)
      const scope = yield* Scope.make()
      const run = yield* openIn(scope)
      const program = Effect.gen(function* () {
        yield* Steplog.log({ loss: 0.5 })
        yield* Steplog.setSummary({ best: 0.5 })
        yield* TestClock.adjust("30 millis")
        yield* Steplog.log({ loss: 0.25 })
        return yield* Steplog.summary
      })
      const summary = yield* program.pipe(Effect.provideService(Steplog, run))
      expect(summary).toEqual({ loss: 0.25, best: 0.5 })
      // Nothing has been flushed yet: the interval has not passed.
      expect(yield* journal(run)).toEqual([])
      yield* Scope.close(scope, Exit.void)
      const records = yield* journal(run)
      expect(records.map((record) => record.kind)).toEqual(["run", "history", "summary", "history", "summary", "exit"])
      expect(records.at(-2)).toMatchObject({ kind: "summary", patch: { loss: 0.25, best: 0.5 }, ts: START + 30 })
      expect(records.at(-1)).toMatchObject({ kind: "exit", exitCode: 0, signal: null, ts: START + 30, durationMs: 30 })
    }))

  it.effect("fails to build with the typed error when the run cannot open", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.scoped(Layer.build(Steplog.layer({ dir: temp.file("online"), mode: "online", baseUrl: "http://127.0.0.1:1" }))))
      expect(error._tag).toBe("NoApiKey")
    }))
})
