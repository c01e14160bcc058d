import * as Either from "effect/Either"
import fc from "fast-check"
import * as fs from "node:fs"
import { describe, expect, it } from "vitest"
import { readEntries, readFrames, readJournal, type JournalScan } from "../../src/journal/JournalReader.js"
import { JournalWriter } from "../../src/journal/JournalWriter.js"
import type { HistoryBlock, Record } from "../../src/schemas/Record.js"
import { historyRows, rowCount } from "../../src/schemas/UploadRecords.js"
import { useTempDir } from "../support/tempDir.js"
import { batch, journalOf, record, zeroSignless } from "./arbitraries.js"

const temp = useTempDir("journal")

/** Where one appended batch landed. */
interface Written {
  readonly start: number
  readonly end: number
  readonly records: ReadonlyArray<Record>
}

/** Writes `batches` to a new journal at `path`; returns the frames that hold them. */
const writeJournal = (path: string, batches: ReadonlyArray<ReadonlyArray<Record>>): Array<Written> => {
  const writer = Either.getOrThrow(JournalWriter.create(path))
  const frames: Array<Written> = []
  for (const records of batches) {
    const start = writer.offset
    writer.append(records)
    if (writer.offset !== start) frames.push({ start, end: writer.offset, records })
  }
  writer.close()
  return frames
}

const read = (path: string): JournalScan => Either.getOrThrow(readJournal(path))

/** Reopens a journal as a resumed run does: read it, then append after its last whole frame. */
const reopen = (path: string) => {
  const scan = read(path)
  return { writer: Either.getOrThrow(JournalWriter.reopen(path, scan)), scan }
}
const recordsOf = (frames: ReadonlyArray<Written>) => frames.flatMap((frame) => frame.records)
/** Deep equality with NaN equal to NaN, up to the sign of zero (see `zeroSignless`). */
const expectSameRecords = (actual: ReadonlyArray<Record>, expected: ReadonlyArray<Record>) =>
  expect(zeroSignless(actual)).toEqual(zeroSignless(expected))

/** Runs `body` with a fresh journal path, removed afterwards so that 100 runs leave no litter. */
const withFile = <A>(body: (path: string) => A): A => {
  const path = temp.file("journal.slog")
  try {
    return body(path)
  } finally {
    fs.rmSync(path, { force: true })
  }
}

describe("writing and reading a journal", () => {
  it("reads back every record of every batch, in order, with no damage", () => {
    fc.assert(
      fc.property(journalOf(fc.array(fc.oneof({ weight: 5, arbitrary: batch }, { weight: 1, arbitrary: fc.constant([]) }), { maxLength: 8 })), (batches) =>
        withFile((path) => {
          const frames = writeJournal(path, batches)
          const scan = read(path)
          expect(scan.damage).toEqual([])
          expectSameRecords(scan.records, batches.flat())
          expect(scan.frames).toBe(batches.filter((b) => b.length > 0).length)
          expect(scan.end).toBe(fs.statSync(path).size)
          expect(frames.length).toBe(scan.frames)
        })
      )
    )
  })

  it("decodes each frame on its own: reading from any frame boundary gives the records from there on", () => {
    fc.assert(
      fc.property(journalOf(fc.array(batch, { minLength: 1, maxLength: 6 })), fc.nat(), (batches, pick) =>
        withFile((path) => {
          const frames = writeJournal(path, batches)
          const from = pick % frames.length
          const entries = [...readEntries(fs.readFileSync(path), frames[from]!.start)]
          expect(entries.map((entry) => entry._tag)).toEqual(frames.slice(from).map(() => "Frame"))
          expectSameRecords(entries.flatMap((entry) => (entry._tag === "Frame" ? entry.records : [])), recordsOf(frames.slice(from)))
        })
      )
    )
  })

  it("writes no frame for an empty batch", () =>
    withFile((path) => {
      const writer = Either.getOrThrow(JournalWriter.create(path))
      writer.append([])
      writer.close()
      expect(fs.statSync(path).size).toBe(8)
      expect(read(path)).toEqual({ records: [], frames: 0, damage: [], end: 8 })
    }))

  it("keeps NaN and ±Infinity, in a lone row and in a block of like rows; -0 may come back as 0", () =>
    withFile((path) => {
      const values = { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, ninf: Number.NEGATIVE_INFINITY, nzero: -0 }
      const row = (seq: number): Record => ({ kind: "history", seq, ts: 0, step: seq, values })
      // A lone row (a frame of its own), then three like rows, which the writer packs as a block.
      writeJournal(path, [[row(0)], [row(1), row(2), row(3)]])
      const { records } = read(path)
      expect(records).toHaveLength(4)
      for (const record of records) {
        const got = record.kind === "history" ? record.values : {}
        expect(got).toEqual({ ...values, nzero: expect.anything() })
        // -0 === 0: either zero passes; anything else fails.
        expect(got["nzero"] === 0).toBe(true)
      }
    }))

  it("reads back long runs of wide rows, which the writer splits into several blocks, and a batch that alternates key sets", () =>
    withFile((path) => {
      const keys = Array.from({ length: 2000 }, (_, k) => `layer${k}/grad_norm`)
      const wide = Array.from({ length: 150 }, (_, i): Record => ({
        kind: "history",
        seq: i,
        ts: 1_764_000_000_000 + i,
        step: i,
        values: Object.fromEntries(keys.map((key, k) => [key, i * 1e-3 + k]))
      }))
      const alternating = Array.from({ length: 500 }, (_, i): Record => ({
        kind: "history",
        seq: 150 + i,
        ts: 0,
        step: 150 + i,
        values: i % 2 === 0 ? { loss: i / 7 } : { acc: i / 9 }
      }))
      writeJournal(path, [wide, alternating])
      const scan = read(path)
      expect(scan.damage).toEqual([])
      expectSameRecords(scan.records, [...wide, ...alternating])
    }))

  it("refuses to create a journal over an existing file", () =>
    withFile((path) => {
      fs.writeFileSync(path, "keep me")
      const created = JournalWriter.create(path)
      expect(Either.isLeft(created) && created.left.reason).toBe("io")
      expect(fs.readFileSync(path, "utf8")).toBe("keep me")
    }))
})

describe("a torn tail", () => {
  /**
   * Whole batches, then the one to tear (small, since every byte of it is a cut to try). With no
   * whole batch, the torn frame is the only one and nothing comes back.
   */
  const journals = journalOf(
    fc.tuple(fc.array(batch, { maxLength: 4 }), fc.array(record, { minLength: 1, maxLength: 4 })).map(([whole, torn]) => [...whole, torn])
  )

  it("recovers every whole frame and reports one torn tail at the last frame, wherever that frame is cut", () => {
    fc.assert(
      fc.property(journals, (batches) =>
        withFile((path) => {
          const frames = writeJournal(path, batches)
          const last = frames.at(-1)!
          const whole = recordsOf(frames.slice(0, -1))
          // From one byte short of the end down to one byte of the frame's header: each a torn write.
          for (let size = last.end - 1; size > last.start; size--) {
            fs.truncateSync(path, size)
            const scan = read(path)
            expectSameRecords(scan.records, whole)
            expect(scan.frames).toBe(frames.length - 1)
            expect(scan.damage).toEqual([{ offset: last.start, bytes: size - last.start, kind: "torn-tail", detail: expect.any(String) }])
            expect(scan.end).toBe(last.start)
          }
        })
      ),
      // Each run tries every cut of its last frame: 50 runs are thousands of torn files.
      { numRuns: 50 }
    )
  })

  it("reopening cuts the torn tail and appends the next batch right after the last whole frame", () => {
    fc.assert(
      fc.property(journalOf(fc.tuple(fc.array(batch, { minLength: 1, maxLength: 5 }), batch).map(([bs, next]) => [...bs, next])), fc.nat(), (all, cut) =>
        withFile((path) => {
          // The last batch is the one appended after the reopen, with the seqs that follow.
          const batches = all.slice(0, -1)
          const next = all.at(-1)!
          const frames = writeJournal(path, batches)
          const last = frames.at(-1)!
          fs.truncateSync(path, last.start + 1 + (cut % (last.end - last.start - 1)))

          const { writer, scan } = reopen(path)
          expect(scan.damage.map((damage) => damage.kind)).toEqual(["torn-tail"])
          expect(writer.offset).toBe(last.start)
          expect(fs.statSync(path).size).toBe(last.start)
          writer.append(next)
          writer.close()

          const reread = read(path)
          expect(reread.damage).toEqual([])
          expectSameRecords(reread.records, [...recordsOf(frames.slice(0, -1)), ...next])
          expect(reread.frames).toBe(frames.length)
        })
      )
    )
  })

  it("has no damage when the cut falls exactly on a frame boundary", () =>
    withFile((path) => {
      const frames = writeJournal(path, [
        [{ kind: "history", seq: 0, ts: 1, step: 0, values: { loss: 1 } }],
        [{ kind: "history", seq: 1, ts: 2, step: 1, values: { loss: 0.5 } }]
      ])
      fs.truncateSync(path, frames[1]!.start)
      expect(read(path)).toEqual({ records: recordsOf(frames.slice(0, 1)), frames: 1, damage: [], end: frames[1]!.start })
    }))

  it("treats a zero-filled tail (the file grew, its data never reached the disk) as a torn tail that reopen cuts", () =>
    withFile((path) => {
      const frames = writeJournal(path, [[{ kind: "history", seq: 0, ts: 1, step: 0, values: { loss: 1 } }]])
      fs.appendFileSync(path, Buffer.alloc(4096))
      const scan = read(path)
      expect(scan.records).toEqual(recordsOf(frames))
      expect(scan.damage).toEqual([{ offset: frames[0]!.end, bytes: 4096, kind: "torn-tail", detail: expect.any(String) }])

      const { writer } = reopen(path)
      writer.close()
      expect(fs.statSync(path).size).toBe(frames[0]!.end)
    }))
})

describe("a corrupt frame", () => {
  it("one flipped byte in a frame with whole frames after it is reported at that frame, and every other frame is read", () => {
    fc.assert(
      fc.property(
        journalOf(fc.array(batch, { minLength: 2, maxLength: 5 })),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (batches, pickFrame, pickByte, mask) =>
          withFile((path) => {
            const frames = writeJournal(path, batches)
            const index = pickFrame % (frames.length - 1)
            const hit = frames[index]!
            const bytes = fs.readFileSync(path)
            const position = hit.start + (pickByte % (hit.end - hit.start))
            bytes[position]! ^= mask
            fs.writeFileSync(path, bytes)

            const scan = read(path)
            // CRC-32 catches every error confined to 32 bits, so the flipped frame never reads as whole.
            expect(scan.damage).toEqual([{ offset: hit.start, bytes: hit.end - hit.start, kind: "corrupt-frame", detail: expect.any(String) }])
            expectSameRecords(scan.records, recordsOf(frames.filter((_, i) => i !== index)))
            expect(scan.frames).toBe(frames.length - 1)
            expect(scan.end).toBe(frames.at(-1)!.end)
          })
      )
    )
  })
})

describe("the header", () => {
  it("a header cut short is a torn tail at offset 0, and reopen writes a fresh one", () =>
    withFile((path) => {
      fs.writeFileSync(path, Buffer.from("SLOG\x01\x00", "latin1"))
      expect(read(path)).toEqual({
        records: [],
        frames: 0,
        damage: [{ offset: 0, bytes: 6, kind: "torn-tail", detail: expect.any(String) }],
        end: 0
      })

      const { writer } = reopen(path)
      writer.append([{ kind: "exit", seq: 0, ts: 1, exitCode: 0, signal: null, durationMs: 5 }])
      writer.close()
      expect(read(path)).toMatchObject({ frames: 1, damage: [], records: [{ kind: "exit", seq: 0 }] })
    }))

  it("a file that does not start with SLOG is not a journal", () =>
    withFile((path) => {
      fs.writeFileSync(path, "loss,acc\n0.5,0.9\n")
      const result = readJournal(path)
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "JournalUnreadable", reason: "not-a-journal", path })
    }))

  it("a journal of another format version is refused, naming the version", () =>
    withFile((path) => {
      const header = Buffer.from("SLOG\0\0\0\0", "latin1")
      header.writeUInt32LE(2, 4)
      fs.writeFileSync(path, header)
      const result = readJournal(path)
      expect(Either.isLeft(result) && result.left).toMatchObject({ reason: "unsupported-version" })
      expect(Either.isLeft(result) && result.left.message).toContain("format version 2")
    }))

  it("a missing file is reported as missing, naming the path", () => {
    const path = temp.file("absent.slog")
    const result = readJournal(path)
    expect(Either.isLeft(result) && result.left).toMatchObject({ reason: "missing", path })
    expect(Either.isLeft(result) && result.left.message).toContain(path)
  })

  it("reports a record the schema rejects as an invalid record of its frame, and keeps the frame's other records", () =>
    withFile((path) => {
      const good = { kind: "history", seq: 0, ts: 1, step: 0, values: { loss: 1 } } as const
      const bad = { kind: "history", seq: -1, ts: 1, step: 0, values: {} } as unknown as Record
      const frames = writeJournal(path, [[good, bad]])
      const scan = read(path)
      expect(scan.records).toEqual([good])
      expect(scan.damage).toEqual([{ offset: frames[0]!.start, bytes: frames[0]!.end - frames[0]!.start, kind: "invalid-record", detail: expect.stringContaining("record 1") }])
    }))

  it("reports a record whose kind is an object that cannot be turned into text as an invalid record, instead of throwing", () =>
    withFile((path) => {
      const good = { kind: "history", seq: 0, ts: 1, step: 0, values: { loss: 1 } } as const
      const odd = { kind: { toString: 0 }, seq: 1, ts: 1 } as unknown as Record
      const frames = writeJournal(path, [[good, odd]])
      const scan = read(path)
      expect(scan.records).toEqual([good])
      expect(scan.damage).toEqual([{ offset: frames[0]!.start, bytes: frames[0]!.end - frames[0]!.start, kind: "invalid-record", detail: 'record 1 of the frame: cannot be read: "kind" holds an object that cannot be turned into text' }])
    }))

  // Rows of a block skip the per-record schema check (they are valid by construction) unless
  // something in the block would fail it: then every row goes through the schema as before.
  it("checks the rows of a column block against the schema when a seq or step would fail it", () =>
    withFile((path) => {
      const like = (seq: number, step: number) => ({ kind: "history", seq, ts: 1, step, values: { loss: seq, acc: 2 } }) as Record
      const frames = writeJournal(path, [
        [like(0, 0), like(1, 1.5), like(2, 2)],
        [like(-1, 3), like(0, 4), like(1, 5)]
      ])
      const scan = read(path)
      expect(scan.records).toEqual([like(0, 0), like(2, 2), like(0, 4), like(1, 5)])
      expect(scan.damage).toEqual([
        { offset: frames[0]!.start, bytes: frames[0]!.end - frames[0]!.start, kind: "invalid-record", detail: expect.stringContaining("1.5") },
        { offset: frames[1]!.start, bytes: frames[1]!.end - frames[1]!.start, kind: "invalid-record", detail: expect.stringContaining("-1") }
      ])
    }))
})

describe("reading a journal for upload", () => {
  const like = (seq: number): Record => ({ kind: "history", seq, ts: seq, step: seq, values: { loss: seq / 2, acc: 1 } })
  const likes = (from: number, count: number) => Array.from({ length: count }, (_, i) => like(from + i))

  it("keeps a frame's like rows as one HistoryBlock, the very rows readEntries gives", () =>
    withFile((path) => {
      writeJournal(path, [[...likes(0, 100), { kind: "summary", seq: 100, ts: 1, patch: { best: 1 } }]])
      const bytes = fs.readFileSync(path)
      const [frame] = [...readFrames(bytes)]
      const records = frame?._tag === "Frame" ? frame.records : []
      expect(records.map((record) => [record.kind, record.seq, rowCount(record)])).toEqual([["historyBlock", 0, 100], ["summary", 100, 1]])
      const [entry] = [...readEntries(bytes)]
      expect(entry?._tag === "Frame" && entry.records).toEqual([...historyRows(records[0] as HistoryBlock), records[1]])
    }))

  it("with `cut`, stops at a frame the range ends inside, without looking past it for whole frames", () =>
    withFile((path) => {
      const [, b, c] = writeJournal(path, [likes(0, 10), likes(10, 10), likes(20, 10)])
      const bytes = fs.readFileSync(path)
      // The second frame's length made larger: the range seems to end inside it.
      bytes.writeUInt32LE(bytes.readUInt32LE(b!.start) + 1_000, b!.start)
      const tags = (cut: boolean) => [...readFrames(bytes, undefined, cut)].map((entry) => (entry._tag === "Frame" ? entry.offset : entry.damage.kind))
      expect(tags(true)).toEqual([8, "torn-tail"])
      expect(tags(false)).toEqual([8, "corrupt-frame", c!.start])
    }))
})

// Keeps the arbitrary honest: were it to produce invalid records, the round trip above would
// report invalid-record damage rather than pass vacuously.
it("generates only records the schema accepts", () => {
  fc.assert(
    fc.property(record, (r) =>
      withFile((path) => {
        writeJournal(path, [[r]])
        expect(read(path).damage).toEqual([])
      })
    ),
    { numRuns: 300 }
  )
})
