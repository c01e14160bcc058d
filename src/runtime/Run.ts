/**
 * The promise facade's run: what `init()` returns. `log()` is synchronous and returns nothing:
 * it normalises the row, assigns seq, step and time, and hands the record to the Pipeline.
 * Everything else about a run (config, summary, finishing) is here too, because each of them is
 * also a record in the same seq order.
 */
import * as Either from "effect/Either"
import { decodeJsonPatch } from "../schemas/Plain.js"
import { MAX_KEY_LENGTH, MAX_KEYS_PER_RUN } from "../schemas/Limits.js"
import type { Mode } from "../schemas/Settings.js"
import type { Json, JsonPatch, Record, RunId, Value, Values } from "../schemas/Record.js"
import * as ConsoleCapture from "./ConsoleCapture.js"
import { checkArgument, normalise, type RowShape } from "./internal/normalise.js"
import type { Pipeline } from "./Pipeline.js"

/** What `log()` accepts: a plain object of numbers, strings, booleans, null and nested plain objects. */
export interface LogData {
  readonly [key: string]: unknown
}

/** Options of one `log()` call. */
export interface LogOptions {
  /**
   * The row's step. Default: the next step. A row logged with a step stays open, so further logs
   * at the same step merge into it, until a later step or the end of the run writes it (unless
   * `commit: true`), as in wandb. A row for an earlier step is written at once, without moving
   * the next step, as long as none of its keys already has a value at that step or later (a key
   * whose own steps would go backwards is dropped from it, with a warning naming the key).
   */
  readonly step?: number
  /**
   * `false` merges into the current step's row, written when the step advances or the run ends;
   * `true` writes the row now. Default: `true` without `step`, `false` with it.
   */
  readonly commit?: boolean
}

/** Whether the server holds every record the journal holds, and if not, how many it lacks and what to do. */
export type UploadOutcome =
  | { readonly uploaded: true }
  | { readonly uploaded: false; readonly pending: number; readonly hint: string }

/**
 * What `finish()` resolves to: the records the run logged, those of them in the journal (the rest
 * were `dropped`, the disk refusing them: `dropReason` says how), and whether the server has them.
 */
export type FinishResult = UploadOutcome & {
  readonly records: number
  readonly written: number
  readonly dropped: number
  readonly dropReason?: string
}

/** A run's config: set at `init()`, patched with `update()`. */
export interface RunConfig {
  /** Merges `patch` into the config (and records it); values must be JSON. */
  readonly update: (patch: { readonly [key: string]: unknown }) => void
  readonly get: (key: string) => Json | undefined
  readonly toJSON: () => { readonly [key: string]: Json }
}

/** A run's summary: the last logged value of each key, unless `set()` chose one. */
export interface RunSummary {
  /** Fixes summary values; a key set here no longer follows `log()`. */
  readonly set: (patch: { readonly [key: string]: unknown }) => void
  readonly get: (key: string) => Json | undefined
  readonly toJSON: () => { readonly [key: string]: Json }
}

/** A run, as `init()` returns it. */
export interface Run {
  readonly id: RunId
  readonly name: string
  readonly project: string
  readonly mode: Mode
  /** The run directory (empty for a disabled run). */
  readonly dir: string
  readonly config: RunConfig
  readonly summary: RunSummary
  /** Logs one row. Synchronous, returns nothing, never waits. */
  readonly log: (data: LogData, options?: LogOptions) => void
  /** Ends the run: writes the last row, the summary and the exit record. Idempotent. */
  readonly finish: (options?: { readonly exitCode?: number }) => Promise<FinishResult>
}

/** What a run needs from the process that opened it. */
export interface RunContext {
  readonly id: RunId
  readonly name: string
  readonly project: string
  readonly mode: Mode
  readonly dir: string
  readonly pipeline: Pipeline
  /** Milliseconds since the epoch, from Effect's `Clock` (a `TestClock` in tests). */
  readonly now: () => number
  readonly warn: (message: string) => void
  readonly startedAt: number
  /** Where a resumed run carries on. */
  readonly resumeFrom: {
    readonly seq: number
    readonly step: number
    /** The last step at which each key has a value. */
    readonly keySteps: ReadonlyMap<string, number>
    readonly config: JsonPatch
    readonly summary: JsonPatch
  }
  /** Stops the actors and closes the journal; called once, when the run has written its last record. */
  readonly close: () => Promise<void>
  /** The same, synchronously, for the moment the process exits. */
  readonly closeSync: () => void
  /**
   * Online runs: after `close`, waits for the upload of the `written` records of the journal (at
   * most finishTimeoutMs) and says how it went. Absent: the run stays on disk for `steplog sync`.
   */
  readonly settle?: (written: number) => Promise<UploadOutcome>
}

/** Rows kept aside before they are folded into the summary (bounded memory: references only). */
const SUMMARY_FOLD_ROWS = 1024

/** The patch as JsonPatch decodes it (a copy), checked in plain code so that a run loads no effect/Schema for it (schemas/Plain.ts). */
const checkPatch = (what: string, patch: unknown): JsonPatch => {
  const decoded = decodeJsonPatch(patch)
  if (Either.isLeft(decoded)) {
    throw new TypeError(
      `steplog: ${what} takes a plain object of JSON values (null, booleans, numbers, strings, and arrays and objects of them): ${decoded.left.message}`
    )
  }
  return decoded.right
}

/** The run of an `offline` or `online` process: everything it logs goes to the journal (and, online, from there to the service). */
export class ActiveRun implements Run {
  readonly id: RunId
  readonly name: string
  readonly project: string
  readonly mode: Mode
  readonly dir: string
  readonly config: RunConfig
  readonly summary: RunSummary

  private seq: number
  private nextStep: number
  /** The row being merged into by `commit: false` (null when none), and its step. */
  private pending: { [key: string]: Value } | null = null
  private pendingStep = 0
  private readonly configValues: { [key: string]: Json }
  /** Last logged value of each key, up to the rows in `unsummarised`; `summaryOverrides` wins over it. */
  private readonly lastValues: { [key: string]: Value }
  /**
   * Rows logged since `lastValues` was brought up to date: folding them in later keeps `log()`
   * short. A row with the same keys as the one before it replaces it here, since only the last
   * value of each key counts, so a loop that logs the same keys each step folds one row, not 1,024.
   */
  private unsummarised: Array<Values> = []
  /** The keys of the last row in `unsummarised`, when it came through the fast path (else null). */
  private unsummarisedKeys: ReadonlyArray<string> | null = null
  private readonly shape: RowShape = { keys: [] }
  private readonly summaryOverrides: { [key: string]: Json } = {}
  private readonly warnedKeys = new Set<string>()
  /**
   * The last step at which each key has a value, for the rows logged at an earlier step: up to
   * date but for the keys of the latest plain rows (`fastKeys`), which the plain path leaves out
   * (it would cost every `log()` a write per key), and whose step is `nextStep - 1` until the
   * next row of another shape or with options settles them here.
   */
  private readonly keySteps: Map<string, number>
  private fastKeys: ReadonlyArray<string> | null = null
  /** Values dropped because their key's step went backwards. */
  private droppedValues = 0
  private finished: Promise<FinishResult> | null = null
  /** Ends this run's console capture (null when it has none); called before the last records. */
  private releaseConsole: (() => void) | null = null

  constructor(private readonly context: RunContext) {
    this.id = context.id
    this.name = context.name
    this.project = context.project
    this.mode = context.mode
    this.dir = context.dir
    this.seq = context.resumeFrom.seq
    this.nextStep = context.resumeFrom.step
    this.keySteps = new Map(context.resumeFrom.keySteps)
    this.configValues = { ...context.resumeFrom.config }
    this.lastValues = { ...(context.resumeFrom.summary as { [key: string]: Value }) }
    this.config = {
      update: (patch) => {
        if (this.closedFor("config.update()")) return
        const checked = checkPatch("config.update()", patch)
        Object.assign(this.configValues, checked)
        this.context.pipeline.write({ kind: "config", seq: this.seq++, ts: this.context.now(), patch: checked })
      },
      get: (key) => this.configValues[key],
      toJSON: () => ({ ...this.configValues })
    }
    this.summary = {
      set: (patch) => {
        if (this.closedFor("summary.set()")) return
        const checked = checkPatch("summary.set()", patch)
        Object.assign(this.summaryOverrides, checked)
        this.context.pipeline.write({ kind: "summary", seq: this.seq++, ts: this.context.now(), patch: checked })
      },
      get: (key) => (key in this.summaryOverrides ? this.summaryOverrides[key] : this.foldSummary()[key]),
      toJSON: () => ({ ...this.foldSummary(), ...this.summaryOverrides })
    }
  }

  readonly log = (data: LogData, options?: LogOptions): void => {
    checkArgument(data)
    if (this.finished !== null) return this.warnOnce("log-after-finish", "log() after finish() is ignored")
    const values = normalise(data, this.skipped, this.shape)
    if (options === undefined && this.pending === null) {
      const keys = this.shape.keys
      if (keys === this.unsummarisedKeys) this.unsummarised[this.unsummarised.length - 1] = values
      else {
        // A row of another shape than the one before: the only moment the plain path has to
        // note keys' steps (see keySteps) and look at the limits on keys.
        if (keys !== this.fastKeys) {
          this.settleFastKeys(keys)
          if (this.mayBreakKeyLimits(keys) && this.dropOverLimitKeys(values)) {
            // Not a plain row after all (writeRow notes its keys' steps): rows of this shape keep
            // taking this way, so that each loses the same keys.
            this.fastKeys = null
            return this.writeRow(this.nextStep++, values)
          }
        }
        this.unsummarisedKeys = keys
        this.unsummarise(values)
      }
      this.context.pipeline.write({ kind: "history", seq: this.seq++, ts: this.context.now(), step: this.nextStep++, values })
      return
    }
    this.logWithOptions(values, options ?? {})
  }

  readonly finish = (options?: { readonly exitCode?: number }): Promise<FinishResult> => {
    if (this.finished === null) {
      this.endConsole()
      this.writeLast(options?.exitCode ?? 0, null)
      this.finished = this.context.close().then(async () => {
        const written = this.seq - this.context.pipeline.status().dropped
        return this.result(this.context.settle === undefined ? this.stored(written) : await this.context.settle(written))
      })
    }
    return this.finished
  }

  /** Ends the run synchronously as the process goes down (exit, uncaught exception, signal). */
  finishSync(exitCode: number, signal: string | null): void {
    if (this.finished !== null) return
    this.endConsole()
    this.writeLast(exitCode, signal)
    this.finished = Promise.resolve(this.result(this.stored(this.seq - this.context.pipeline.status().dropped)))
    this.context.closeSync()
  }

  /**
   * Records what the process prints from now until this run ends (ConsoleCapture); false when
   * another run already captures it. The output records take their seq from the same counter as
   * `log()`, which does nothing more for it.
   */
  captureConsole(holdMs: number): boolean {
    this.releaseConsole = ConsoleCapture.capture(this.writeOutput, holdMs)
    return this.releaseConsole !== null
  }

  private readonly writeOutput = (stream: ConsoleCapture.Stream, text: string): void => {
    if (this.finished !== null) return
    this.context.pipeline.write({ kind: "output", seq: this.seq++, ts: this.context.now(), stream, text })
  }

  /** Whether the new keys of a row may take the run past MAX_KEYS_PER_RUN, or be too long: a cheap test before `dropOverLimitKeys`. */
  private mayBreakKeyLimits(keys: ReadonlyArray<string>): boolean {
    if (this.keySteps.size + keys.length > MAX_KEYS_PER_RUN) return true
    for (const key of keys) if (key.length > MAX_KEY_LENGTH) return true
    return false
  }

  /**
   * Drops from `values` the keys the run may not have: longer than MAX_KEY_LENGTH, or new past
   * MAX_KEYS_PER_RUN (Limits.ts). One warning names each key; true when any was dropped.
   */
  private dropOverLimitKeys(values: { [key: string]: Value }): boolean {
    let known = this.keySteps.size
    if (this.pending !== null) for (const key in this.pending) if (!this.keySteps.has(key)) known++
    let dropped = false
    for (const key in values) {
      if (this.keySteps.has(key) || (this.pending !== null && key in this.pending)) continue
      if (key.length <= MAX_KEY_LENGTH && known < MAX_KEYS_PER_RUN) {
        known++
        continue
      }
      delete values[key]
      dropped = true
      this.warnOnce(
        `over-limit:${key}`,
        key.length > MAX_KEY_LENGTH
          ? `log() dropped key "${key.slice(0, 40)}…": it is ${key.length} characters long, and a key may have ${MAX_KEY_LENGTH} (shown once per key)`
          : `log() dropped key "${key}": a run may have ${MAX_KEYS_PER_RUN} history keys, and this one would be past them (shown once per key)`
      )
    }
    return dropped
  }

  /** Records the open lines and puts the streams' own write functions back. */
  private endConsole(): void {
    const release = this.releaseConsole
    this.releaseConsole = null
    release?.()
  }

  /** An offline run's outcome: every written record waits on disk for `steplog sync`. */
  private stored(written: number): UploadOutcome {
    const what = written === this.seq ? "this run is" : `${written} of this run's ${this.seq} records are`
    return { uploaded: false, pending: written, hint: `${what} stored offline in ${this.dir}; upload it with: steplog sync ${this.dir}` }
  }

  /** The outcome with the counts of the run's records: logged, in the journal, dropped and why. */
  private result(outcome: UploadOutcome): FinishResult {
    const { dropped, dropReason } = this.context.pipeline.status()
    return { ...outcome, records: this.seq, written: this.seq - dropped, dropped, ...(dropReason === null ? {} : { dropReason }) }
  }

  private logWithOptions(values: { [key: string]: Value }, options: LogOptions): void {
    this.settleFastKeys(null)
    this.dropOverLimitKeys(values)
    const floor = this.pending !== null ? this.pendingStep : this.nextStep
    const step = options.step ?? floor
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new TypeError(`steplog: log() option step must be a whole number, 0 or more; it was ${String(step)}`)
    }
    if (step < floor) return this.writeEarlier(step, values)
    if (this.pending !== null && step > this.pendingStep) this.commitPending()
    if (this.pending === null) {
      this.pending = values
      this.pendingStep = step
    } else {
      Object.assign(this.pending, values)
    }
    if (options.commit ?? options.step === undefined) this.commitPending()
  }

  /**
   * A row for a step before the open one (or before the next, when none is open): written at once
   * with the keys that have no value at that step or later; the others are dropped, each named in
   * a warning. History is kept per key, so readers merge a step's partial rows into one.
   */
  private writeEarlier(step: number, values: { [key: string]: Value }): void {
    const kept: { [key: string]: Value } = {}
    let keeps = false
    for (const key in values) {
      const last = this.pending !== null && key in this.pending ? this.pendingStep : (this.keySteps.get(key) ?? -1)
      if (last < step) {
        kept[key] = values[key]!
        keeps = true
        continue
      }
      this.droppedValues++
      this.warnOnce(
        `backward-step:${key}`,
        `log() at step ${step}: key "${key}" already has a value at step ${last}, and a key's steps may not go backwards, ` +
          `so this value was dropped (the rest of the row was kept; shown once per key, finish() reports how many values were dropped)`
      )
    }
    if (keeps) this.writeRow(step, kept)
  }

  /** Notes the steps of the latest plain rows' keys in `keySteps`; `next`: the keys of the plain row about to be written. */
  private settleFastKeys(next: ReadonlyArray<string> | null): void {
    const keys = this.fastKeys
    if (keys !== null) for (const key of keys) this.keySteps.set(key, this.nextStep - 1)
    this.fastKeys = next
    // The plain path only looks at its keys when the shape changes.
    this.unsummarisedKeys = null
  }

  private commitPending(): void {
    if (this.pending === null) return
    const row = this.pending
    this.pending = null
    this.nextStep = this.pendingStep + 1
    this.writeRow(this.pendingStep, row)
  }

  private writeRow(step: number, values: Values): void {
    this.unsummarisedKeys = null
    for (const key in values) this.keySteps.set(key, step)
    this.unsummarise(values)
    this.context.pipeline.write({ kind: "history", seq: this.seq++, ts: this.context.now(), step, values })
  }

  private unsummarise(values: Values): void {
    if (this.unsummarised.push(values) === SUMMARY_FOLD_ROWS) this.foldSummary()
  }

  private foldSummary(): { [key: string]: Value } {
    const last = this.lastValues
    for (const values of this.unsummarised) for (const key in values) last[key] = values[key]!
    this.unsummarised = []
    this.unsummarisedKeys = null
    return last
  }

  private writeLast(exitCode: number, signal: string | null): void {
    this.commitPending()
    if (this.droppedValues > 0) {
      this.context.warn(`${this.droppedValues} ${this.droppedValues === 1 ? "value was" : "values were"} dropped because ${this.droppedValues === 1 ? "its" : "their"} key's step went backwards`)
    }
    const now = this.context.now()
    const records: Array<Record> = [
      { kind: "summary", seq: this.seq++, ts: now, patch: this.summary.toJSON() },
      { kind: "exit", seq: this.seq++, ts: now, exitCode, signal, durationMs: Math.max(0, now - this.context.startedAt) }
    ]
    for (const record of records) this.context.pipeline.write(record)
  }

  private readonly skipped = (key: string, what: string): void =>
    this.warnOnce(
      `key:${key}`,
      `log() skipped key "${key}": ${/^[aeiou]/i.test(what) ? "an" : "a"} ${what} cannot be stored (values are numbers, strings, booleans and null; ` +
        `nested plain objects become "a/b" keys). The rest of the row was kept; this warning is shown once per key.`
    )

  private warnOnce(id: string, message: string): void {
    if (this.warnedKeys.has(id)) return
    this.warnedKeys.add(id)
    this.context.warn(message)
  }

  private closedFor(call: string): boolean {
    if (this.finished === null) return false
    this.warnOnce(`closed:${call}`, `${call} after finish() is ignored`)
    return true
  }
}
