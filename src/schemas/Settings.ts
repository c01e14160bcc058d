/**
 * Run settings: each one comes from the `init()` option, else its `STEPLOG_*` environment
 * variable, else its default, and is decoded with Schema on the way in. A bad value is an
 * `InvalidSetting` naming the setting, where it came from and what was expected.
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { JsonPatch, RunId } from "./Record.js"

/** How the run reaches a server: `online` uploads as it goes, `offline` keeps it on disk for `steplog sync`, `disabled` does nothing. */
export const Mode = Schema.Literal("online", "offline", "disabled")
export type Mode = typeof Mode.Type

/** When a logged record reaches the disk: every flush interval, the same plus fsync, or before `log()` returns. */
export const Durability = Schema.Literal("buffered", "fsync", "sync")
export type Durability = typeof Durability.Type

/** What `init({ id })` does when a run with that id exists: `never` refuses, `allow` appends, `must` refuses a new run. */
export const Resume = Schema.Literal("never", "allow", "must")
export type Resume = typeof Resume.Type

/** What a run does with what the process prints: `capture` records it as output records (and still prints it), `off` leaves it alone. */
export const ConsoleMode = Schema.Literal("capture", "off")
export type ConsoleMode = typeof ConsoleMode.Type

const Text = Schema.String.pipe(Schema.minLength(1, { message: () => "a non-empty string" }))
/**
 * A whole number, at least `min`, whose every failure (not a number, a fraction, too small) reads
 * as `expected`; the `env` twin decodes the same from a string such as "100".
 */
const wholeNumber = (expected: string, min: number) => {
  const message = () => expected
  const option = Schema.Number.annotations({ message }).pipe(Schema.int({ message }), Schema.greaterThanOrEqualTo(min, { message }))
  return { option, env: Schema.compose(Schema.NumberFromString.annotations({ message }), option) }
}
const PositiveInt = wholeNumber("a whole number, 1 or more", 1)
const Millis = wholeNumber("a whole number of milliseconds, 0 or more", 0)
/** A literal union whose failure lists the choices once, rather than one "Expected …" per choice. */
const oneOf = <const L extends readonly [string, ...Array<string>]>(schema: Schema.Literal<L>) =>
  schema.annotations({ message: () => ({ message: `one of ${schema.literals.map((l) => JSON.stringify(l)).join(", ")}`, override: true }) })
const Tags = Schema.Array(Schema.String).annotations({ message: () => ({ message: "an array of strings", override: true }) })
/** Environment spelling of a tag list: `a,b,c`. */
const TagsFromEnv = Schema.transform(Schema.String, Tags, {
  strict: true,
  decode: (s) => s.split(",").map((t) => t.trim()).filter((t) => t.length > 0),
  encode: (tags) => tags.join(",")
})

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
}

/** A setting whose value could not be used. */
export class InvalidSetting extends Data.TaggedError("InvalidSetting")<{
  readonly setting: string
  readonly source: "option" | "environment"
  readonly value: unknown
  readonly expected: string
}> {
  override get message(): string {
    const from = this.source === "option" ? `option ${this.setting}` : `environment variable ${envName(this.setting)}`
    return `steplog: invalid ${from}: ${describe(this.value)}; expected ${this.expected}`
  }
}

interface Field<A> {
  readonly option: Schema.Schema<A, any>
  readonly env: Schema.Schema<A, string> | null
}

const field = <A>(option: Schema.Schema<A, any>, env: Schema.Schema<A, string> | null = option as any): Field<A> => ({
  option,
  env
})

const fields = {
  project: field(Text),
  mode: field(oneOf(Mode)),
  baseUrl: field(Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s]+$/, { message: () => "an http:// or https:// URL" }))),
  apiKey: field(Text),
  dir: field(Text),
  id: field(RunId),
  name: field(Text),
  config: field(JsonPatch, null),
  tags: field(Tags, TagsFromEnv),
  notes: field(Schema.String),
  group: field(Text),
  jobType: field(Text),
  resume: field(oneOf(Resume)),
  durability: field(oneOf(Durability)),
  flushIntervalMs: field(Millis.option, Millis.env),
  finishTimeoutMs: field(Millis.option, Millis.env),
  bufferSize: field(PositiveInt.option, PositiveInt.env),
  batchSize: field(PositiveInt.option, PositiveInt.env),
  console: field(oneOf(ConsoleMode))
} as const

type FieldName = keyof typeof fields

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

/**
 * Resolves settings: options beat environment beat defaults. The first bad value fails the whole
 * resolution, so `init()` never starts a run on a setting it would have to guess.
 */
export const resolveSettings = (
  options: InitOptions,
  env: Readonly<Record<string, string | undefined>>,
  keyFromCredentials: KeySource
): Either.Either<Settings, InvalidSetting> => {
  const pick = <K extends FieldName>(name: K): Either.Either<Schema.Schema.Type<(typeof fields)[K]["option"]> | undefined, InvalidSetting> => {
    const spec = fields[name] as Field<any>
    const fromOption = (options as Record<string, unknown>)[name]
    if (fromOption !== undefined) return decode(name, "option", spec.option, fromOption) as any
    const fromEnv = spec.env === null ? undefined : env[envName(name)]
    if (fromEnv !== undefined && fromEnv !== "") return decode(name, "environment", spec.env!, fromEnv) as any
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
      console: (yield* pick("console")) ?? "capture"
    }
  })
}

const decode = <A>(
  setting: string,
  source: "option" | "environment",
  schema: Schema.Schema<A, any>,
  value: unknown
): Either.Either<A, InvalidSetting> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(schema)(value),
    (error) =>
      new InvalidSetting({
        setting,
        source,
        value,
        expected: ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
          issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message
        ).join("; ")
      })
  )
