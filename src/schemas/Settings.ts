/**
 * Run settings: each one comes from the `init()` option, else its `STEPLOG_*` environment
 * variable, else its default. This module holds that order, the defaults and the types, and no
 * effect/Schema, so that `init()` does not load it (bench/first-init.ts): `quickSettings` checks
 * each value in plain code, and a value it refuses goes to SettingsSchema.ts, whose schemas are the
 * definition of a good value and word the `InvalidSetting` (test/schemas/Settings.test.ts checks
 * that the two agree on every value).
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as Num from "effect/Number"
import * as Option from "effect/Option"
import { decodeJsonPatch, RUN_ID_PATTERN } from "./Plain.js"
import type { JsonPatch, RunId } from "./Record.js"

/** How the run reaches a server: `online` uploads as it goes, `offline` keeps it on disk for `steplog sync`, `disabled` does nothing. */
export const MODES = ["online", "offline", "disabled"] as const
export type Mode = (typeof MODES)[number]

/** When a logged record reaches the disk: every flush interval, the same plus fsync, or before `log()` returns. */
export const DURABILITIES = ["buffered", "fsync", "sync"] as const
export type Durability = (typeof DURABILITIES)[number]

/** What `init({ id })` does when a run with that id exists: `never` refuses, `allow` appends, `must` refuses a new run. */
export const RESUMES = ["never", "allow", "must"] as const
export type Resume = (typeof RESUMES)[number]

/** What a run does with what the process prints: `capture` records it as output records (and still prints it), `off` leaves it alone. */
export const CONSOLE_MODES = ["capture", "off"] as const
export type ConsoleMode = (typeof CONSOLE_MODES)[number]

/** What a server address must look like. */
export const URL_PATTERN = /^https?:\/\/[^\s]+$/

/** Environment spelling of a tag list: `a,b,c`, spaces around a tag and empty tags dropped. */
export const splitTags = (s: string): Array<string> => s.split(",").map((t) => t.trim()).filter((t) => t.length > 0)

/** Where a run uploads when neither option nor environment says: a local `steplog server`. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:7077"

/** The options `init()` takes; every one may be left out. */
export interface InitOptions {
  readonly project?: string
  readonly mode?: Mode
  readonly baseUrl?: string
  readonly apiKey?: string
  readonly dir?: string
  readonly id?: string
  readonly name?: string
  readonly config?: { readonly [key: string]: unknown }
  readonly tags?: ReadonlyArray<string>
  readonly notes?: string
  readonly group?: string
  readonly jobType?: string
  readonly resume?: Resume
  readonly durability?: Durability
  /** How often buffered records are written to the journal, in ms. */
  readonly flushIntervalMs?: number
  /** The longest `finish()` waits for the upload, in ms. */
  readonly finishTimeoutMs?: number
  /** Records the in-memory buffer holds before `log()` writes them itself. */
  readonly bufferSize?: number
  /** Records that make a batch: a full batch is flushed before the interval is up. */
  readonly batchSize?: number
  /** Whether the run records what the process writes to stdout and stderr. */
  readonly console?: ConsoleMode
  /** MiB of records held in memory while the disk refuses journal writes; past it the newest are dropped. */
  readonly maxUnwrittenMb?: number
}

/** Settings after resolution: every field decided. */
export interface Settings {
  readonly project: string
  readonly mode: Mode
  readonly baseUrl: string
  readonly apiKey: string | null
  readonly dir: string
  readonly id: RunId | null
  readonly name: string | null
  readonly config: JsonPatch
  readonly tags: ReadonlyArray<string>
  readonly notes: string | null
  readonly group: string | null
  readonly jobType: string | null
  readonly resume: Resume
  readonly durability: Durability
  readonly flushIntervalMs: number
  readonly finishTimeoutMs: number
  readonly bufferSize: number
  readonly batchSize: number
  readonly console: ConsoleMode
  readonly maxUnwrittenMb: number
}

/** What each setting decodes to when it is given. */
export type SettingValues = { readonly [K in keyof Settings]-?: Exclude<Settings[K], null> }
export type SettingName = keyof SettingValues
export type Source = "option" | "environment"

/** A setting whose value could not be used. */
export class InvalidSetting extends Data.TaggedError("InvalidSetting")<{
  readonly setting: string
  readonly source: Source
  readonly value: unknown
  readonly expected: string
}> {
  override get message(): string {
    const from = this.source === "option" ? `option ${this.setting}` : `environment variable ${envName(this.setting)}`
    return `steplog: invalid ${from}: ${describe(this.value)}; expected ${this.expected}`
  }
}

/** `flushIntervalMs` → `STEPLOG_FLUSH_INTERVAL_MS`; the run's own fields carry `RUN_` (`STEPLOG_RUN_ID`). */
const envName = (setting: string): string => {
  const snake = setting.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase()
  return "STEPLOG_" + (setting === "id" || setting === "name" || setting === "group" ? "RUN_" + snake : snake)
}

const describe = (value: unknown): string => {
  try {
    // Numbers as written (JSON would show NaN and Infinity as null).
    return typeof value === "string" ? JSON.stringify(value) : typeof value === "number" ? String(value) : String(JSON.stringify(value) ?? value)
  } catch {
    return String(value)
  }
}

/** Where to find an API key when neither the option nor the environment gives one. */
export interface KeySource {
  (baseUrl: string): string | null
}

/** Decodes the value given for one setting (a string when it comes from the environment), or fails with E. */
export type SettingCheck<E> = <K extends SettingName>(setting: K, source: Source, raw: unknown) => Either.Either<SettingValues[K], E>

/**
 * Resolves settings with `check` deciding each value given: options beat environment beat
 * defaults. The first bad value fails the whole resolution, so `init()` never starts a run on a
 * setting it would have to guess. `config` has no environment variable.
 */
export const resolveWith = <E>(
  options: InitOptions,
  env: Readonly<Record<string, string | undefined>>,
  keyFromCredentials: KeySource,
  check: SettingCheck<E>
): Either.Either<Settings, E> => {
  const pick = <K extends SettingName>(setting: K): Either.Either<SettingValues[K] | undefined, E> => {
    const fromOption = (options as Record<string, unknown>)[setting]
    if (fromOption !== undefined) return check(setting, "option", fromOption)
    const fromEnv = setting === "config" ? undefined : env[envName(setting)]
    if (fromEnv !== undefined && fromEnv !== "") return check(setting, "environment", fromEnv)
    return Either.right(undefined)
  }
  return Either.gen(function* () {
    const baseUrl = (yield* pick("baseUrl")) ?? DEFAULT_BASE_URL
    const apiKey = (yield* pick("apiKey")) ?? keyFromCredentials(baseUrl)
    return {
      project: (yield* pick("project")) ?? "default",
      mode: (yield* pick("mode")) ?? (apiKey === null ? "offline" : "online"),
      baseUrl,
      apiKey,
      dir: (yield* pick("dir")) ?? "./steplog",
      id: (yield* pick("id")) ?? null,
      name: (yield* pick("name")) ?? null,
      config: (yield* pick("config")) ?? {},
      tags: (yield* pick("tags")) ?? [],
      notes: (yield* pick("notes")) ?? null,
      group: (yield* pick("group")) ?? null,
      jobType: (yield* pick("jobType")) ?? null,
      resume: (yield* pick("resume")) ?? "never",
      durability: (yield* pick("durability")) ?? "buffered",
      flushIntervalMs: (yield* pick("flushIntervalMs")) ?? 100,
      finishTimeoutMs: (yield* pick("finishTimeoutMs")) ?? 60_000,
      bufferSize: (yield* pick("bufferSize")) ?? 2_048,
      batchSize: (yield* pick("batchSize")) ?? 1_024,
      console: (yield* pick("console")) ?? "capture",
      maxUnwrittenMb: (yield* pick("maxUnwrittenMb")) ?? 64
    }
  })
}

/** A value the quick checks do not take, left for SettingsSchema.ts to judge. */
const refused = Either.left("refused" as const)
type Quick<A> = (raw: unknown, source: Source) => Either.Either<A, "refused">

const text: Quick<string> = (raw) => (typeof raw === "string" && raw.length >= 1 ? Either.right(raw) : refused)
const matching = (pattern: RegExp): Quick<string> => (raw) => (typeof raw === "string" && pattern.test(raw) ? Either.right(raw) : refused)
const oneOf = <L extends string>(choices: ReadonlyArray<L>): Quick<L> => (raw) => (choices.includes(raw as L) ? Either.right(raw as L) : refused)
const wholeNumber = (min: number): Quick<number> => (raw, source) => {
  // The environment's string is read as Schema.NumberFromString reads it: effect/Number's parse.
  const n = source === "option" ? raw : Option.getOrUndefined(Num.parse(raw as string))
  return typeof n === "number" && Number.isSafeInteger(n) && n >= min ? Either.right(n) : refused
}
const strings: Quick<ReadonlyArray<string>> = (raw, source) => {
  if (source === "environment") return Either.right(splitTags(raw as string))
  if (!Array.isArray(raw)) return refused
  const copy: Array<string> = []
  // Index by index, as a hole is not a string (Array.prototype.every would skip it).
  for (let i = 0; i < raw.length; i++) {
    const tag: unknown = raw[i]
    if (typeof tag !== "string") return refused
    copy.push(tag)
  }
  return Either.right(copy)
}

/** Each setting's schema in SettingsSchema.ts, in plain code: the same values accepted, decoded to the same. */
const quick: { readonly [K in SettingName]: Quick<SettingValues[K]> } = {
  project: text,
  mode: oneOf(MODES),
  baseUrl: matching(URL_PATTERN),
  apiKey: text,
  dir: text,
  // RUN_ID_PATTERN is what makes a RunId.
  id: matching(RUN_ID_PATTERN) as Quick<RunId>,
  name: text,
  config: (raw) => Either.mapLeft(decodeJsonPatch(raw), () => "refused" as const),
  tags: strings,
  notes: (raw) => (typeof raw === "string" ? Either.right(raw) : refused),
  group: text,
  jobType: text,
  resume: oneOf(RESUMES),
  durability: oneOf(DURABILITIES),
  flushIntervalMs: wholeNumber(0),
  finishTimeoutMs: wholeNumber(0),
  bufferSize: wholeNumber(1),
  batchSize: wholeNumber(1),
  console: oneOf(CONSOLE_MODES),
  maxUnwrittenMb: wholeNumber(1)
}

/**
 * Settings resolved by the quick checks, or undefined when one of them refused a value: then
 * `resolveSettings` of SettingsSchema.ts decides, and says what is wrong.
 */
export const quickSettings = (
  options: InitOptions,
  env: Readonly<Record<string, string | undefined>>,
  keyFromCredentials: KeySource
): Settings | undefined =>
  Either.getOrUndefined(resolveWith(options, env, keyFromCredentials, (setting, source, raw) => quick[setting](raw, source)))
