/**
 * Settings resolution: each setting comes from its option, else its STEPLOG_* variable, else its
 * default, decided field by field; a bad value is an InvalidSetting a user can act on.
 */
import * as Either from "effect/Either"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { InvalidSetting, quickSettings, type InitOptions, type KeySource } from "../../src/schemas/Settings.js"
import { resolveSettings } from "../../src/schemas/SettingsSchema.js"

type Env = { readonly [name: string]: string }

const noKey: KeySource = () => null

const resolve = (options: InitOptions, env: Env = {}, keys: KeySource = noKey) => Either.getOrThrow(resolveSettings(options, env, keys))

/** The InvalidSetting that resolving fails with (the test fails if it succeeds). */
const invalid = (options: InitOptions, env: Env = {}): InvalidSetting => {
  const result = resolveSettings(options, env, noKey)
  if (Either.isRight(result)) throw new Error(`expected an InvalidSetting, got ${JSON.stringify(result.right)}`)
  expect(result.left).toBeInstanceOf(InvalidSetting)
  return result.left
}

describe("resolving settings", () => {
  it("uses the defaults when neither options nor environment say anything", () => {
    expect(resolve({})).toEqual({
      project: "default",
      mode: "offline",
      baseUrl: "http://127.0.0.1:7077",
      apiKey: null,
      dir: "./steplog",
      id: null,
      name: null,
      config: {},
      tags: [],
      notes: null,
      group: null,
      jobType: null,
      resume: "never",
      durability: "buffered",
      flushIntervalMs: 100,
      finishTimeoutMs: 60_000,
      bufferSize: expect.any(Number),
      batchSize: expect.any(Number),
      console: "capture",
      maxUnwrittenMb: 64
    })
  })

  it("takes each setting from its option over its environment variable, field by field", () => {
    const env = {
      STEPLOG_PROJECT: "from-env",
      STEPLOG_DIR: "/env/dir",
      STEPLOG_RUN_ID: "env-id",
      STEPLOG_RUN_NAME: "env-name",
      STEPLOG_RUN_GROUP: "env-group",
      STEPLOG_JOB_TYPE: "env-job",
      STEPLOG_NOTES: "env notes",
      STEPLOG_TAGS: "x,y",
      STEPLOG_DURABILITY: "fsync",
      STEPLOG_FLUSH_INTERVAL_MS: "250",
      STEPLOG_BUFFER_SIZE: "64",
      STEPLOG_RESUME: "allow",
      STEPLOG_MODE: "disabled"
    }
    // Options for half of the fields: those come from the options, the rest from the environment.
    const settings = resolve({ project: "from-option", id: "option-id", group: "option-group", tags: ["t"], flushIntervalMs: 5, mode: "offline" }, env)
    expect(settings).toMatchObject({
      project: "from-option",
      id: "option-id",
      group: "option-group",
      tags: ["t"],
      flushIntervalMs: 5,
      mode: "offline",
      dir: "/env/dir",
      name: "env-name",
      jobType: "env-job",
      notes: "env notes",
      durability: "fsync",
      bufferSize: 64,
      resume: "allow"
    })
  })

  it("falls back to the default for an environment variable that is set but empty", () => {
    expect(resolve({}, { STEPLOG_PROJECT: "", STEPLOG_FLUSH_INTERVAL_MS: "" })).toMatchObject({ project: "default", flushIntervalMs: 100 })
  })

  it("splits STEPLOG_TAGS on commas and trims each tag", () => {
    expect(resolve({}, { STEPLOG_TAGS: "a, b" }).tags).toEqual(["a", "b"])
    expect(resolve({}, { STEPLOG_TAGS: " lr-sweep ,, baseline ," }).tags).toEqual(["lr-sweep", "baseline"])
  })

  it("finds the API key in the option, else the environment, else the credentials file for the base URL", () => {
    const asked: Array<string> = []
    const stored: KeySource = (baseUrl) => {
      asked.push(baseUrl)
      return `stored-for-${baseUrl}`
    }
    expect(resolve({ apiKey: "opt" }, { STEPLOG_API_KEY: "env" }, stored).apiKey).toBe("opt")
    expect(resolve({}, { STEPLOG_API_KEY: "env" }, stored).apiKey).toBe("env")
    expect(asked).toEqual([])
    expect(resolve({}, { STEPLOG_BASE_URL: "https://track.example" }, stored).apiKey).toBe("stored-for-https://track.example")
  })

  it("defaults to online when a key is found and offline when none is, unless the mode is given", () => {
    expect(resolve({}, { STEPLOG_API_KEY: "k" }).mode).toBe("online")
    expect(resolve({}, {}, () => "stored").mode).toBe("online")
    expect(resolve({}).mode).toBe("offline")
    expect(resolve({ mode: "offline" }, { STEPLOG_API_KEY: "k" }).mode).toBe("offline")
    expect(resolve({}, { STEPLOG_API_KEY: "k", STEPLOG_MODE: "disabled" }).mode).toBe("disabled")
  })

  it("captures the console unless the option or STEPLOG_CONSOLE says off, in online and offline runs alike", () => {
    expect(resolve({}, { STEPLOG_API_KEY: "k" })).toMatchObject({ mode: "online", console: "capture" })
    expect(resolve({ console: "off" }, { STEPLOG_CONSOLE: "capture" }).console).toBe("off")
    expect(resolve({}, { STEPLOG_CONSOLE: "off" }).console).toBe("off")
  })

  it("reads whole numbers from the environment", () => {
    expect(resolve({}, { STEPLOG_FLUSH_INTERVAL_MS: "0", STEPLOG_FINISH_TIMEOUT_MS: "1500", STEPLOG_BATCH_SIZE: "32" })).toMatchObject({
      flushIntervalMs: 0,
      finishTimeoutMs: 1500,
      batchSize: 32
    })
  })
})

describe("a bad setting", () => {
  // Each case: the options and environment, the setting and the variable the message must name,
  // the value as the message shows it, and words of what was expected.
  const cases: Array<{
    readonly options?: InitOptions
    readonly env?: Env
    readonly setting: string
    readonly shown: string
    readonly expected: string
  }> = [
    { options: { mode: "fast" as never }, setting: "option mode", shown: `"fast"`, expected: `one of "online", "offline", "disabled"` },
    { env: { STEPLOG_MODE: "on" }, setting: "environment variable STEPLOG_MODE", shown: `"on"`, expected: `"offline"` },
    { options: { durability: "fast" as never }, setting: "option durability", shown: `"fast"`, expected: `one of "buffered", "fsync", "sync"` },
    { env: { STEPLOG_DURABILITY: "fast" }, setting: "environment variable STEPLOG_DURABILITY", shown: `"fast"`, expected: `"sync"` },
    { options: { flushIntervalMs: -1 }, setting: "option flushIntervalMs", shown: "-1", expected: "whole number of milliseconds, 0 or more" },
    { options: { flushIntervalMs: 2.5 }, setting: "option flushIntervalMs", shown: "2.5", expected: "whole number of milliseconds" },
    { options: { flushIntervalMs: Number.NaN }, setting: "option flushIntervalMs", shown: "NaN", expected: "whole number of milliseconds" },
    { env: { STEPLOG_FLUSH_INTERVAL_MS: "abc" }, setting: "environment variable STEPLOG_FLUSH_INTERVAL_MS", shown: `"abc"`, expected: "whole number of milliseconds" },
    { env: { STEPLOG_FLUSH_INTERVAL_MS: "-1" }, setting: "environment variable STEPLOG_FLUSH_INTERVAL_MS", shown: `"-1"`, expected: "0 or more" },
    { options: { bufferSize: 0 }, setting: "option bufferSize", shown: "0", expected: "whole number, 1 or more" },
    { env: { STEPLOG_BUFFER_SIZE: "0" }, setting: "environment variable STEPLOG_BUFFER_SIZE", shown: `"0"`, expected: "1 or more" },
    { env: { STEPLOG_MAX_UNWRITTEN_MB: "0.5" }, setting: "environment variable STEPLOG_MAX_UNWRITTEN_MB", shown: `"0.5"`, expected: "whole number, 1 or more" },
    { options: { id: "a b" }, setting: "option id", shown: `"a b"`, expected: "letters, digits, '-' or '_'" },
    { env: { STEPLOG_RUN_ID: "a/b" }, setting: "environment variable STEPLOG_RUN_ID", shown: `"a/b"`, expected: "letters, digits" },
    { options: { baseUrl: "localhost:7077" }, setting: "option baseUrl", shown: `"localhost:7077"`, expected: "an http:// or https:// URL" },
    { env: { STEPLOG_BASE_URL: "ftp://example.org" }, setting: "environment variable STEPLOG_BASE_URL", shown: `"ftp://example.org"`, expected: "http://" },
    { options: { resume: "maybe" as never }, setting: "option resume", shown: `"maybe"`, expected: `one of "never", "allow", "must"` },
    { options: { console: "quiet" as never }, setting: "option console", shown: `"quiet"`, expected: `one of "capture", "off"` },
    { env: { STEPLOG_CONSOLE: "true" }, setting: "environment variable STEPLOG_CONSOLE", shown: `"true"`, expected: `one of "capture", "off"` },
    { options: { tags: "a,b" as never }, setting: "option tags", shown: `"a,b"`, expected: "an array of strings" },
    { options: { project: "" }, setting: "option project", shown: `""`, expected: "a non-empty string" }
  ]

  it.each(cases)("$setting = $shown is an InvalidSetting naming the setting, the value and what was expected", ({ options, env, setting, shown, expected }) => {
    const error = invalid(options ?? {}, env ?? {})
    expect(error.message).toContain(`invalid ${setting}: ${shown}; expected `)
    expect(error.message).toContain(expected)
    // One plain statement of what was expected, not a schema's list of "Expected …, actual …".
    expect(error.message).not.toMatch(/Expected|actual/)
  })

  it("fails even when a good value of the same setting lies underneath it", () => {
    // A bad option is not quietly replaced by the environment or the default.
    expect(invalid({ durability: "fast" as never }, { STEPLOG_DURABILITY: "sync" }).setting).toBe("durability")
    // An option that is good hides a bad environment variable.
    expect(resolve({ durability: "sync" }, { STEPLOG_DURABILITY: "fast" }).durability).toBe("sync")
  })

  it("carries the setting, where it came from, and the value as data", () => {
    const error = invalid({}, { STEPLOG_FLUSH_INTERVAL_MS: "abc" })
    expect(error).toMatchObject({ _tag: "InvalidSetting", setting: "flushIntervalMs", source: "environment", value: "abc" })
  })
})

describe("the quick checks init() resolves settings with", () => {
  const settings = [
    "project", "mode", "baseUrl", "apiKey", "dir", "id", "name", "config", "tags", "notes", "group", "jobType",
    "resume", "durability", "flushIntervalMs", "finishTimeoutMs", "bufferSize", "batchSize", "console", "maxUnwrittenMb"
  ] as const
  const variables = [
    "STEPLOG_PROJECT", "STEPLOG_MODE", "STEPLOG_BASE_URL", "STEPLOG_API_KEY", "STEPLOG_DIR", "STEPLOG_RUN_ID", "STEPLOG_RUN_NAME",
    "STEPLOG_TAGS", "STEPLOG_NOTES", "STEPLOG_RUN_GROUP", "STEPLOG_JOB_TYPE", "STEPLOG_RESUME", "STEPLOG_DURABILITY",
    "STEPLOG_FLUSH_INTERVAL_MS", "STEPLOG_FINISH_TIMEOUT_MS", "STEPLOG_BUFFER_SIZE", "STEPLOG_BATCH_SIZE", "STEPLOG_CONSOLE",
    "STEPLOG_MAX_UNWRITTEN_MB"
  ] as const
  /** Strings near every edge a setting has: its choices, URLs, run ids, and numbers as the environment spells them. */
  const edgy = fc.constantFrom(
    "online", "offline", "disabled", "buffered", "fsync", "sync", "never", "allow", "must", "capture", "off", "Online",
    "", " ", "x", "a b", "run_1-A", "r".repeat(64), "r".repeat(65), "a/b", "http://h:1", "https://x.org/p?q=1", "http://", "http:// x", "ftp://x",
    "0", "1", "-1", "-0", "2.5", " 12 ", "0x10", "1e3", "1e400", "9007199254740993", "NaN", "Infinity", "-Infinity", "abc", "a,b, ,c", ","
  )
  const value = fc.oneof(
    edgy,
    fc.string({ maxLength: 8 }),
    fc.constantFrom(0, 1, -1, -0, 1.5, 100, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY),
    fc.integer(),
    fc.double(),
    fc.array(fc.oneof(edgy, fc.string(), fc.integer()), { maxLength: 3 }),
    fc.sparseArray(fc.string(), { maxLength: 3 }),
    fc.dictionary(fc.string(), fc.oneof(fc.jsonValue(), fc.constantFrom(undefined, () => 1)), { maxKeys: 3 }),
    fc.anything({ maxDepth: 2, withDate: true, withMap: true, withBigInt: true })
  )
  const envValue = fc.oneof(edgy, fc.string({ maxLength: 8 }))
  const keys = fc.constantFrom<KeySource>(noKey, () => "stored-key")

  /** Quick and schema agree: both accept, with equal settings, or the quick checks hand over and the schema refuses. */
  const agree = (options: InitOptions, env: Env, keySource: KeySource) => {
    const quick = quickSettings(options, env, keySource)
    const schema = resolveSettings(options, env, keySource)
    if (Either.isRight(schema)) expect(quick).toStrictEqual(schema.right)
    else expect(quick).toBeUndefined()
  }

  it("accept what the schemas accept, decoded to the same, one setting at a time", () => {
    fc.assert(fc.property(fc.constantFrom(...settings), value, keys, (setting, raw, keySource) => agree({ [setting]: raw }, {}, keySource)), {
      numRuns: 3000
    })
    fc.assert(fc.property(fc.constantFrom(...variables), envValue, keys, (variable, raw, keySource) => agree({}, { [variable]: raw }, keySource)), {
      numRuns: 3000
    })
  })

  it("agree on options and environment together", () => {
    const good = fc.record(
      {
        project: fc.constantFrom("p", "default"),
        mode: fc.constantFrom("online", "offline", "disabled"),
        dir: fc.constantFrom("./runs", "/tmp/x"),
        id: fc.constantFrom("run-1", "a_b"),
        config: fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }),
        tags: fc.array(fc.string(), { maxLength: 3 }),
        durability: fc.constantFrom("buffered", "fsync", "sync"),
        flushIntervalMs: fc.nat(1000),
        bufferSize: fc.integer({ min: 1, max: 4096 })
      },
      { requiredKeys: [] }
    )
    const options = fc.oneof(good, fc.dictionary(fc.constantFrom(...settings), value, { maxKeys: 4 }))
    const env = fc.dictionary(fc.constantFrom(...variables), envValue, { maxKeys: 4 })
    fc.assert(fc.property(options, env, keys, (o, e, keySource) => agree(o as InitOptions, e, keySource)), { numRuns: 2000 })
  })

  it("take the common options without handing over to the schemas", () => {
    const options: InitOptions = { project: "mnist", config: { lr: 0.001, layers: [64, 64] }, tags: ["mlp"], dir: "./runs", mode: "offline", flushIntervalMs: 50 }
    expect(quickSettings(options, { STEPLOG_BUFFER_SIZE: "64", STEPLOG_TAGS: "a,b" }, noKey)).toEqual(resolve(options, { STEPLOG_BUFFER_SIZE: "64", STEPLOG_TAGS: "a,b" }))
  })
})
