/**
 * `steplog inspect`, run as users run it: the compiled bin in a child process (`npm test` builds
 * first). Each test reads only stdout, stderr and the exit status.
 */
import * as Either from "effect/Either"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { beforeAll, describe, expect, it } from "vitest"
import { JournalWriter } from "../../src/journal/JournalWriter.js"
import type { Record } from "../../src/schemas/Record.js"
import { fixtureBatches } from "../journal/fixtures/records.js"
import { useTempDir } from "../support/tempDir.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const bin = path.join(root, "dist/cli/main.js")
const fixture = (name: string) => path.join(root, "test/journal/fixtures", name)
const temp = useTempDir("inspect")

interface Ran {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

const steplog = (...args: Array<string>): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { encoding: "utf8" }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
    })
  })

/** stdout as parsed JSON lines. */
const lines = (ran: Ran): Array<unknown> => ran.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as unknown)

/** What inspect prints for a record: the record, with NaN and ±Infinity as strings. */
const printed = (value: unknown): unknown => {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value)
  if (Array.isArray(value)) return value.map(printed)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, printed(v)]))
  }
  return value
}

const writeJournal = (file: string, batches: ReadonlyArray<ReadonlyArray<Record>>): void => {
  const writer = Either.getOrThrow(JournalWriter.create(file))
  for (const batch of batches) writer.append(batch)
  writer.close()
}

const [run, firstSteps, laterSteps, ending] = fixtureBatches.map((batch) => batch.map(printed))
/** The fixture run, whole, plus a flush holding -Infinity. */
const cooldown: Record = { kind: "history", seq: 10, ts: 1_764_460_800_800, step: 5, values: { "val/min": Number.NEGATIVE_INFINITY } }
const allRecords = [...run!, ...firstSteps!, ...laterSteps!, ...ending!, printed(cooldown)]
let goodJournal = ""

beforeAll(() => {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` first (\`npm test\` does)`)
  goodJournal = temp.file("journal.slog")
  writeJournal(goodJournal, [...fixtureBatches, [cooldown]])
})

describe("steplog inspect on a healthy journal", () => {
  it("prints every record as one JSON line, in order, then a summary counting records, frames and kinds, and exits 0", async () => {
    const ran = await steplog("inspect", goodJournal)
    expect(ran.status).toBe(0)
    expect(ran.stderr).toBe("")
    expect(lines(ran)).toEqual([
      ...allRecords,
      { summary: { records: 11, frames: 5, byKind: { run: 1, history: 6, summary: 1, output: 1, stats: 1, exit: 1 }, damage: [] } }
    ])
  })

  it('spells NaN, Infinity and -Infinity as the strings "NaN", "Infinity" and "-Infinity"', async () => {
    const ran = await steplog("inspect", goodJournal)
    const out = ran.stdout.split("\n")
    expect(out).toContain(
      '{"kind":"history","seq":6,"ts":1764460800600,"step":4,"values":{"train/loss":"NaN","train/acc":0.1,"grad/max":"Infinity"}}'
    )
    expect(out).toContain('{"kind":"history","seq":10,"ts":1764460800800,"step":5,"values":{"val/min":"-Infinity"}}')
  })

  it("reads journal.slog when given a run directory", async () => {
    const dir = temp.file("run-20251130_000000-fx7k2q9m")
    fs.mkdirSync(dir)
    fs.copyFileSync(goodJournal, path.join(dir, "journal.slog"))
    const ran = await steplog("inspect", dir)
    expect(ran.status).toBe(0)
    expect(lines(ran).slice(0, -1)).toEqual(allRecords)
  })

  it("with --kind prints only records of that kind, while the summary still counts the whole journal", async () => {
    const ran = await steplog("inspect", "--kind", "history", goodJournal)
    expect(ran.status).toBe(0)
    const out = lines(ran)
    expect(out.slice(0, -1)).toEqual(allRecords.filter((r) => (r as { kind: string }).kind === "history"))
    expect(out.at(-1)).toMatchObject({ summary: { records: 11, frames: 5 } })
  })

  it("with --tail N prints only the last N records", async () => {
    const ran = await steplog("inspect", "--tail", "3", goodJournal)
    expect(ran.status).toBe(0)
    expect(lines(ran).slice(0, -1)).toEqual(allRecords.slice(-3))
  })

  it("with --kind and --tail prints the last N records of that kind", async () => {
    const ran = await steplog("inspect", "--kind", "history", "--tail", "2", goodJournal)
    expect(lines(ran).slice(0, -1)).toEqual([printed(fixtureBatches[2]![1]), printed(cooldown)])
  })

  it("with --tail 0 prints the summary alone", async () => {
    const ran = await steplog("inspect", "--tail", "0", goodJournal)
    expect(lines(ran)).toEqual([expect.objectContaining({ summary: expect.objectContaining({ records: 11 }) })])
  })
})

describe("steplog inspect on a damaged journal", () => {
  it("prints the whole flushes before a torn tail, reports the tail on stderr with its offset and size, and exits 1", async () => {
    const ran = await steplog("inspect", fixture("torn-tail.slog"))
    expect(ran.status).toBe(1)
    expect(ran.stderr).toBe("steplog: damage at offset 861 (72 bytes): torn-tail: payload of 136 bytes, 64 present\n")
    expect(lines(ran)).toEqual([
      ...run!,
      ...firstSteps!,
      ...laterSteps!,
      {
        summary: {
          records: 8,
          frames: 3,
          byKind: { run: 1, history: 5, output: 1, stats: 1 },
          damage: [{ offset: 861, bytes: 72, kind: "torn-tail", detail: "payload of 136 bytes, 64 present" }]
        }
      }
    ])
  })

  it("skips a corrupt frame, prints the records before and after it, reports it on stderr, and exits 1", async () => {
    const ran = await steplog("inspect", fixture("corrupt-frame.slog"))
    expect(ran.status).toBe(1)
    expect(ran.stderr).toBe("steplog: damage at offset 352 (254 bytes): corrupt-frame: CRC-32 does not match the payload\n")
    expect(lines(ran)).toEqual([
      ...run!,
      ...laterSteps!,
      ...ending!,
      {
        summary: {
          records: 6,
          frames: 3,
          byKind: { run: 1, history: 2, summary: 1, stats: 1, exit: 1 },
          damage: [{ offset: 352, bytes: 254, kind: "corrupt-frame", detail: "CRC-32 does not match the payload" }]
        }
      }
    ])
  })

  it("still exits 1 for damage when --kind filters out every record", async () => {
    const ran = await steplog("inspect", "--kind", "config", fixture("torn-tail.slog"))
    expect(ran.status).toBe(1)
    expect(lines(ran)).toEqual([expect.objectContaining({ summary: expect.objectContaining({ records: 8 }) })])
  })
})

describe("steplog inspect on something it cannot read", () => {
  it("refuses a file that is not a journal with exit 2, naming the file, and prints nothing on stdout", async () => {
    const file = temp.file("metrics.csv")
    fs.writeFileSync(file, "step,loss\n0,2.3\n")
    const ran = await steplog("inspect", file)
    expect(ran.status).toBe(2)
    expect(ran.stdout).toBe("")
    expect(ran.stderr).toContain(file)
    expect(ran.stderr).toContain("does not start with the steplog journal magic")
  })

  it("refuses a missing path with exit 2, naming it", async () => {
    const missing = temp.file("no-such-run")
    const ran = await steplog("inspect", missing)
    expect(ran.status).toBe(2)
    expect(ran.stdout).toBe("")
    expect(ran.stderr).toBe(`steplog: cannot read journal ${missing}: no such file or directory\n`)
  })

  it("refuses a directory that holds no journal.slog with exit 2, saying it is not a run directory", async () => {
    const dir = temp.file("empty-dir")
    fs.mkdirSync(dir)
    const ran = await steplog("inspect", dir)
    expect(ran.status).toBe(2)
    expect(ran.stderr).toContain(dir)
    expect(ran.stderr).toContain("not a steplog run directory")
  })

  it("refuses a journal of a newer format version with exit 2, naming the version", async () => {
    const file = temp.file("journal.slog")
    const header = Buffer.from("SLOG\0\0\0\0", "latin1")
    header.writeUInt32LE(7, 4)
    fs.writeFileSync(file, header)
    const ran = await steplog("inspect", file)
    expect(ran.status).toBe(2)
    expect(ran.stderr).toContain("format version 7")
  })

  it("rejects an unknown --kind or a negative --tail as a usage error, exit 2", async () => {
    expect((await steplog("inspect", "--kind", "metrics", goodJournal)).status).toBe(2)
    const negative = await steplog("inspect", "--tail", "-1", goodJournal)
    expect(negative.status).toBe(2)
    expect(negative.stderr).toContain("--tail takes a number of records, 0 or more")
  })
})

describe("steplog help", () => {
  it("steplog --help describes the tool, lists inspect and explains the exit statuses", async () => {
    const ran = await steplog("--help")
    expect(ran.status).toBe(0)
    expect(ran.stdout).toContain("Experiment tracking for TypeScript and Node.js")
    expect(ran.stdout).toContain("inspect")
    expect(ran.stdout).toContain("Print a run's journal as JSON lines")
    expect(ran.stdout).toContain("EXIT STATUS")
  })

  it("steplog inspect --help describes the argument and every option", async () => {
    const ran = await steplog("inspect", "--help")
    expect(ran.status).toBe(0)
    for (const text of [
      "<run-dir | journal>",
      "A run directory (run-<date>-<id>/, which holds journal.slog) or a journal file itself.",
      "--kind run | history | config | summary | output | stats | exit",
      "Print only records of this kind.",
      "--tail N",
      "Print only the last N records",
      "torn-tail",
      "corrupt-frame",
      "invalid-record"
    ]) {
      expect(ran.stdout).toContain(text)
    }
  })
})
