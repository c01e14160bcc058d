/**
 * `steplog inspect <run-dir | journal>`: prints a journal as JSON lines, one record a line, then a
 * summary line. Damage goes to stderr the moment the reader meets it, and the records around it are
 * still printed. It reads through JournalReader, so it sees exactly what resume and upload see.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { JournalUnreadable } from "../journal/JournalError.js"
import { checkFile, walk, type Damage, type FrameEntry } from "../journal/JournalReader.js"
import { historyRows } from "../schemas/UploadRecords.js"
import { Record } from "../schemas/Record.js"
import { jsonLine } from "./internal/jsonLine.js"

/** The journal was read to its end and holds damage, already reported on stderr. */
export class JournalDamaged extends Data.TaggedError("JournalDamaged")<{
  readonly path: string
  readonly damage: ReadonlyArray<Damage>
}> {
  override get message(): string {
    return `steplog: ${this.path} holds ${this.damage.length} damaged region(s)`
  }
}

type Kind = Record["kind"]
// Taken from the schema, so that a new record kind is a valid --kind without touching this file.
const kinds: ReadonlyArray<Kind> = Record.members.map((member) => member.fields.kind.literals[0])

const target = Args.path({ name: "run-dir | journal" }).pipe(
  Args.withDescription(
    "A run directory (run-<date>-<id>/, which holds journal.slog) or a journal file itself."
  )
)

const kind = Options.choice("kind", kinds).pipe(
  Options.withDescription(
    "Print only records of this kind. The summary still counts every record of the journal."
  ),
  Options.optional
)

const tail = Options.integer("tail").pipe(
  Options.withPseudoName("N"),
  Options.filterMap((n) => (n >= 0 ? Option.some(n) : Option.none()), "--tail takes a number of records, 0 or more"),
  Options.withDescription(
    "Print only the last N records (the last N of --kind, when both are given). Damage is still reported as it is met."
  ),
  Options.optional
)

/** The journal `target` names: the file itself, or a run directory's `journal.slog`. */
const locate = (target: string): Either.Either<string, JournalUnreadable> => {
  let stat: fs.Stats
  try {
    stat = fs.statSync(target)
  } catch (cause) {
    return Either.left(unreadable(target, cause))
  }
  if (!stat.isDirectory()) return Either.right(target)
  const journal = path.join(target, "journal.slog")
  if (fs.existsSync(journal)) return Either.right(journal)
  return Either.left(
    new JournalUnreadable({ path: target, reason: "missing", detail: "a directory without a journal.slog, so not a steplog run directory" })
  )
}

/** The file's size: where its journal ends, for the walk over it. */
const sizeOf = (file: string): Either.Either<number, JournalUnreadable> => {
  try {
    return Either.right(fs.statSync(file).size)
  } catch (cause) {
    return Either.left(unreadable(file, cause))
  }
}

const unreadable = (file: string, cause: unknown): JournalUnreadable => {
  const missing = (cause as NodeJS.ErrnoException).code === "ENOENT"
  return new JournalUnreadable({ path: file, reason: missing ? "missing" : "io", detail: missing ? "no such file or directory" : String(cause) })
}

const describeDamage = (damage: Damage): string =>
  `steplog: damage at offset ${damage.offset} (${damage.bytes} bytes): ${damage.kind}: ${damage.detail}`

/** Keeps the last `n` of what it is given, in order; amortised O(1) a record. */
const lastOf = <A>(n: number) => {
  let kept: Array<A> = []
  return {
    add: (item: A) => {
      kept.push(item)
      if (kept.length >= 2 * n + 64) kept = kept.slice(-n)
    },
    items: (): Array<A> => (n === 0 ? [] : kept.slice(-n))
  }
}

const inspectJournal = (options: { readonly target: string; readonly kind: Option.Option<Kind>; readonly tail: Option.Option<number> }) =>
  Effect.gen(function* () {
    const file = yield* locate(options.target)
    const size = yield* sizeOf(file)
    const tornHeader = yield* checkFile(file)
    // The walk the upload reads with, a chunk at a time: a journal of any size in bounded memory.
    const entries: Iterable<FrameEntry> = tornHeader === null ? walk(file).to(size, true) : [{ _tag: "Damage", damage: tornHeader }]
    const wanted = (record: Record) => Option.isNone(options.kind) || options.kind.value === record.kind
    const kept = Option.map(options.tail, (n) => lastOf<Record>(n))

    let records = 0
    let frames = 0
    const byKind = new Map<Kind, number>(kinds.map((k) => [k, 0]))
    const damage: Array<Damage> = []
    for (const entry of entries) {
      if (entry._tag === "Damage") {
        damage.push(entry.damage)
        yield* Console.error(describeDamage(entry.damage))
        continue
      }
      frames++
      const lines: Array<string> = []
      for (const record of entry.records.flatMap((r) => (r.kind === "historyBlock" ? historyRows(r) : [r]))) {
        records++
        byKind.set(record.kind, (byKind.get(record.kind) ?? 0) + 1)
        if (!wanted(record)) continue
        if (Option.isSome(kept)) kept.value.add(record)
        else lines.push(jsonLine(record))
      }
      // One write a frame rather than a record: journals run to millions of records.
      if (lines.length > 0) yield* Console.log(lines.join("\n"))
    }
    if (Option.isSome(kept)) {
      const last = kept.value.items()
      if (last.length > 0) yield* Console.log(last.map(jsonLine).join("\n"))
    }

    const counts = Object.fromEntries([...byKind].filter(([, n]) => n > 0))
    yield* Console.log(jsonLine({ summary: { records, frames, byKind: counts, damage } }))
    if (damage.length > 0) return yield* new JournalDamaged({ path: file, damage })
  })

/** The `inspect` command: a journal as JSON lines, damage on stderr; fails with what went wrong. */
export const inspect = Command.make("inspect", { target, kind, tail }, inspectJournal).pipe(
  Command.withDescription(
    "Print a run's journal as JSON lines, one record a line in the order written, then one summary line, " +
      `{"summary":{"records":N,"frames":N,"byKind":{...},"damage":[...]}}, that counts the whole journal. ` +
      `NaN, Infinity and -Infinity, which JSON cannot hold, print as the strings "NaN", "Infinity" and "-Infinity". ` +
      "Damage goes to stderr as it is met, with its byte offset, length, kind and detail, and the records around it are still printed: " +
      "torn-tail (the last write was cut off by a crash, its records never complete), " +
      "corrupt-frame (stored bytes changed; that frame's records are lost) or " +
      "invalid-record (a whole frame holds a record this steplog does not accept)."
  )
)
