/**
 * fast-check arbitraries for every record kind of `src/schemas/Record.ts`, valid by construction,
 * reaching the corners a journal must carry: NaN, ±Infinity and -0, unicode text, `a/b` keys, and
 * runs of like history rows (which the writer packs as column blocks).
 */
import fc from "fast-check"
import {
  type ConfigRecord,
  type ExitRecord,
  type HistoryRecord,
  type Json,
  type OutputRecord,
  type Record,
  RunId,
  type RunRecord,
  type StatsRecord,
  type SummaryRecord
} from "../../src/schemas/Record.js"

/**
 * Well-formed unicode (emoji, combining marks, CJK, …). Lone surrogates are left out: UTF-8 cannot
 * carry them, so msgpack (like JSON on the wire) turns each into U+FFFD.
 */
const text = fc.string({ unit: "grapheme", maxLength: 20 })

/**
 * Keys as logged: nested names flattened to `a/b`, and any text. `__proto__` is left out: msgpackr
 * decodes that key as `__proto_` (a prototype-pollution guard), a known limit of the format.
 */
const key = fc
  .oneof(
    fc.constantFrom("loss", "acc", "train/loss", "eval/acc@1", "a/b", "a/b/c", "ünï/日本/🙂", ""),
    text,
    fc.tuple(text, text).map(([a, b]) => `${a}/${b}`)
  )
  .filter((k) => k !== "__proto__")

/** Any double (NaN, ±Infinity, -0, subnormals included), with the named corners made frequent. */
const number = fc.oneof(
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, Number.MAX_SAFE_INTEGER),
  fc.integer()
)

const seq = fc.nat()
const ts = fc.oneof(fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }), fc.double())
const nullable = <A>(arbitrary: fc.Arbitrary<A>): fc.Arbitrary<A | null> => fc.option(arbitrary, { nil: null })
const dictionary = <A>(value: fc.Arbitrary<A>) => fc.dictionary(key, value, { maxKeys: 6, noNullPrototype: true })

const { json } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    number,
    text,
    fc.array(tie("json"), { maxLength: 4 }),
    fc.dictionary(key, tie("json"), { maxKeys: 4, noNullPrototype: true })
  )
}))

const runRecord: fc.Arbitrary<RunRecord> = fc.record({
  kind: fc.constant("run"),
  seq,
  ts,
  runId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/).map((id) => RunId.make(id)),
  project: text,
  name: text,
  config: dictionary(json),
  tags: fc.array(text, { maxLength: 4 }),
  notes: nullable(text),
  group: nullable(text),
  jobType: nullable(text),
  host: text,
  pid: fc.integer({ min: 1, max: 4_194_304 }),
  argv: fc.array(text, { maxLength: 4 }),
  gitCommit: nullable(fc.stringMatching(/^[0-9a-f]{40}$/)),
  sdkVersion: fc.constantFrom("0.1.0", "1.2.3-beta.4"),
  resumed: fc.boolean()
})

const historyRecord: fc.Arbitrary<HistoryRecord> = fc.record({
  kind: fc.constant("history"),
  seq,
  ts,
  step: fc.oneof(fc.nat(), fc.maxSafeNat()),
  values: dictionary(fc.oneof(number, text, fc.boolean(), fc.constant(null)))
})

const configRecord: fc.Arbitrary<ConfigRecord> = fc.record({ kind: fc.constant("config"), seq, ts, patch: dictionary(json) })

const summaryRecord: fc.Arbitrary<SummaryRecord> = fc.record({ kind: fc.constant("summary"), seq, ts, patch: dictionary(json) })

const outputRecord: fc.Arbitrary<OutputRecord> = fc.record({
  kind: fc.constant("output"),
  seq,
  ts,
  stream: fc.constantFrom("stdout", "stderr"),
  text: fc.string({ unit: "grapheme", maxLength: 200 })
})

const statsRecord: fc.Arbitrary<StatsRecord> = fc.record({ kind: fc.constant("stats"), seq, ts, values: dictionary(number) })

const exitRecord: fc.Arbitrary<ExitRecord> = fc.record({
  kind: fc.constant("exit"),
  seq,
  ts,
  exitCode: fc.integer({ min: -255, max: 255 }),
  signal: nullable(fc.constantFrom("SIGINT", "SIGTERM", "SIGKILL")),
  durationMs: fc.oneof(fc.double({ min: 0, noNaN: true }), fc.constant(Number.POSITIVE_INFINITY))
})

/** Any valid record, of any kind. */
export const record: fc.Arbitrary<Record> = fc.oneof(
  runRecord,
  historyRecord,
  configRecord,
  summaryRecord,
  outputRecord,
  statsRecord,
  exitRecord
)

/**
 * A run of like history rows, as a training loop logs them: the same numeric keys, step after
 * step. The writer packs such runs as column blocks, so this is what reaches that path.
 */
const likeRows: fc.Arbitrary<Array<Record>> = fc
  .tuple(fc.uniqueArray(key, { maxLength: 5 }), fc.nat({ max: 100_000 }), fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }))
  .chain(([keys, step0, t0]) =>
    fc
      .array(fc.array(number, { minLength: keys.length, maxLength: keys.length }), { minLength: 2, maxLength: 12 })
      .map((rows) =>
        rows.map((row, i): Record => ({
          kind: "history",
          seq: 0,
          ts: t0 + 100 * i,
          step: step0 + i,
          values: Object.fromEntries(keys.map((k, j) => [k, row[j]!]))
        }))
      )
  )

/** One flush: lone records of any kind and runs of like history rows, 1 to about 40 records. */
export const batch: fc.Arbitrary<Array<Record>> = fc
  .array(fc.oneof(record.map((r) => [r]), likeRows), { minLength: 1, maxLength: 5 })
  .map((parts) => parts.flat())

/**
 * Gives the records of `batches` the seqs a run gives them: consecutive from `first`, except that
 * each position in `gaps` skips one (so that a gap can fall inside a run of like rows).
 */
export const inSeqOrder = (
  batches: ReadonlyArray<ReadonlyArray<Record>>,
  first: number,
  gaps: ReadonlyArray<number> = []
): Array<Array<Record>> => {
  let seq = first
  let position = 0
  return batches.map((records) =>
    records.map((r) => {
      if (gaps.includes(position++)) seq++
      return { ...r, seq: seq++ }
    })
  )
}

/** Batches with run-like seqs (see `inSeqOrder`). */
export const journalOf = (batches: fc.Arbitrary<ReadonlyArray<ReadonlyArray<Record>>>): fc.Arbitrary<Array<Array<Record>>> =>
  fc
    .tuple(batches, fc.nat({ max: 1_000_000 }), fc.array(fc.nat({ max: 60 }), { maxLength: 3 }))
    .map(([bs, first, gaps]) => inSeqOrder(bs, first, gaps))

/**
 * `value` with every -0 made 0, for comparing up to the sign of zero: the journal keeps -0 in a
 * column block (float64) but not in a lone record (msgpackr writes -0 as the integer 0).
 */
export const zeroSignless = <A>(value: A): A => {
  if (Object.is(value, -0)) return 0 as A
  if (Array.isArray(value)) return value.map(zeroSignless) as A
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, zeroSignless(v)])) as A
  }
  return value
}
