/**
 * The definition of a good value for each setting, as schemas, and the `InvalidSetting` that names
 * what a bad one should have been. `init()` loads this module only when Settings.ts's quick checks
 * refuse a value (effect/Schema is slow to load: bench/first-init.ts); the two agree on every value
 * (test/schemas/Settings.test.ts).
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { JsonPatch, RunId } from "./Record.js"
import {
  CONSOLE_MODES,
  DURABILITIES,
  InvalidSetting,
  type InitOptions,
  type KeySource,
  MODES,
  RESUMES,
  resolveWith,
  type SettingName,
  type Settings,
  type Source,
  splitTags,
  URL_PATTERN
} from "./Settings.js"

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
const oneOf = <const L extends readonly [string, ...Array<string>]>(literals: L) =>
  Schema.Literal(...literals).annotations({ message: () => ({ message: `one of ${literals.map((l) => JSON.stringify(l)).join(", ")}`, override: true }) })
const Tags = Schema.Array(Schema.String).annotations({ message: () => ({ message: "an array of strings", override: true }) })
const TagsFromEnv = Schema.transform(Schema.String, Tags, { strict: true, decode: splitTags, encode: (tags) => tags.join(",") })

interface Field {
  readonly option: Schema.Schema<any, any>
  /** Decodes the environment variable's string; the option's schema when absent. */
  readonly env?: Schema.Schema<any, string>
}

const fields: { readonly [K in SettingName]: Field } = {
  project: { option: Text },
  mode: { option: oneOf(MODES) },
  baseUrl: { option: Schema.String.pipe(Schema.pattern(URL_PATTERN, { message: () => "an http:// or https:// URL" })) },
  apiKey: { option: Text },
  dir: { option: Text },
  id: { option: RunId },
  name: { option: Text },
  config: { option: JsonPatch },
  tags: { option: Tags, env: TagsFromEnv },
  notes: { option: Schema.String },
  group: { option: Text },
  jobType: { option: Text },
  resume: { option: oneOf(RESUMES) },
  durability: { option: oneOf(DURABILITIES) },
  flushIntervalMs: Millis,
  finishTimeoutMs: Millis,
  bufferSize: PositiveInt,
  batchSize: PositiveInt,
  console: { option: oneOf(CONSOLE_MODES) },
  maxUnwrittenMb: PositiveInt
}

const decode = (setting: SettingName, source: Source, value: unknown): Either.Either<any, InvalidSetting> => {
  const field = fields[setting]
  const schema = source === "environment" ? field.env ?? field.option : field.option
  return Either.mapLeft(
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
}

/**
 * Resolves settings as Settings.ts orders them, each value decoded with its schema: a bad value is
 * an `InvalidSetting` naming the setting, where it came from, the value and what was expected.
 */
export const resolveSettings = (
  options: InitOptions,
  env: Readonly<Record<string, string | undefined>>,
  keyFromCredentials: KeySource
): Either.Either<Settings, InvalidSetting> => resolveWith(options, env, keyFromCredentials, decode)
