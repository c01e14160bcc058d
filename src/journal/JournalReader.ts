/**
 * Reads a journal: every whole frame, in order, and a report of any damage. A short or bad-CRC
 * frame with no whole frame after it is a torn tail (a write cut off by a crash); one with whole
 * frames after it is a corrupt frame, reported with its offset and skipped. Reading never throws
 * on damage: damage is data, so that `inspect`, resume and upload each decide what it means.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Unpackr } from "msgpackr"
import * as fs from "node:fs"
import { decodeUnknownEither } from "../schemas/Decode.js"
import { HistoryBlock, Record, type UploadRecord } from "../schemas/Record.js"
import { historyRows } from "../schemas/UploadRecords.js"
import { JournalUnreadable } from "./JournalError.js"
import type { Block } from "./internal/historyBlock.js"
import { FORMAT_VERSION, FRAME_HEADER_SIZE, HEADER_SIZE, MAGIC, frameAt } from "./internal/frame.js"

/** Something wrong found in a journal: where, how many bytes, and what. */
export interface Damage {
  readonly offset: number
  readonly bytes: number
  readonly kind: "torn-tail" | "corrupt-frame" | "invalid-record"
  readonly detail: string
}

/** One step of a read: a whole frame's records, or damage. */
export type JournalEntry =
  | { readonly _tag: "Frame"; readonly offset: number; readonly end: number; readonly records: ReadonlyArray<Record> }
  | { readonly _tag: "Damage"; readonly damage: Damage }

/** The same, with the frame's blocks of history rows kept as blocks: what the upload reads. */
export type FrameEntry =
  | { readonly _tag: "Frame"; readonly offset: number; readonly end: number; readonly records: ReadonlyArray<UploadRecord> }
  | { readonly _tag: "Damage"; readonly damage: Damage }

/** All of a journal, read at once. */
export interface JournalScan {
  readonly records: ReadonlyArray<Record>
  readonly frames: number
  readonly damage: ReadonlyArray<Damage>
  /** Offset just past the last whole frame: where an append continues (a torn tail is cut off). */
  readonly end: number
}

const decodeRecord = decodeUnknownEither(Record)

// Every payload decodes on its own (frame.ts): one unpacker serves every journal of the process.
const unpackr = new Unpackr({ useRecords: true })
/** Decodes a payload into the raw (not yet schema-checked) records it holds. */
const decodePayload = (payload: Uint8Array): unknown => unpackr.unpack(payload)
const decodeBlock = Schema.decodeUnknownEither(HistoryBlock)

/**
 * What a payload entry holds: a block as the HistoryBlock record the upload sends (checked once,
 * against its schema, not row by row), or records still to be checked against the Record schema
 * (anything that is not a block, and the rows of a block the schema refuses, so that the check of
 * each row names what is wrong and keeps the rest). A block whose fields are malformed gives an
 * error text.
 */
const fromEntry = (entry: unknown): HistoryBlock | ReadonlyArray<unknown> | string => {
  if (typeof entry !== "object" || entry === null || !("rows" in entry)) return [entry]
  const { rows, seq0, keys, steps, ts, columns } = entry as Partial<Block>
  if (!Number.isSafeInteger(rows) || rows! < 1 || !Number.isSafeInteger(seq0)) return "a history block with a bad row count or first seq"
  if (!Array.isArray(keys) || !Array.isArray(columns) || keys.length !== columns.length || !keys.every((k) => typeof k === "string")) {
    return "a history block whose keys and columns do not match"
  }
  const bytes = rows! * 8
  if (![steps, ts, ...columns].every((column) => column instanceof Uint8Array && column.byteLength === bytes)) {
    return "a history block with a column of the wrong length"
  }
  const block = { kind: "historyBlock", seq: seq0, rows, keys, steps, ts, columns }
  const decoded = decodeBlock(block)
  return Either.isRight(decoded) ? decoded.right : historyRows({ ...block, seq: seq0! } as HistoryBlock)
}

/** Walks the frames of a journal's bytes from `from` (a frame boundary, default the first frame). */
export function* readEntries(bytes: Uint8Array, from: number = HEADER_SIZE): Generator<JournalEntry> {
  for (const entry of readFrames(bytes, from)) {
    if (entry._tag === "Damage") yield entry
    else yield { ...entry, records: entry.records.flatMap((record) => (record.kind === "historyBlock" ? historyRows(record) : [record])) }
  }
}

/**
 * Walks the frames as `readEntries` does, a block of history rows kept as one HistoryBlock record
 * (checked against its schema once, never unpacked into rows): what the Tailer and the upload's
 * scan read, a million rows in a few hundred blocks.
 *
 * `cut`: the bytes are a range of the journal that stops before the data does (a reader going a
 * chunk at a time), so a frame running past their end is not damage but not read yet: reading
 * stops there, reported as a torn tail, instead of searching the rest of the range for a whole
 * frame, a CRC-32 at every offset that cost an upload of a million rows ~0.6 s (bench/sync.ts).
 */
export function* readFrames(bytes: Uint8Array, from: number = HEADER_SIZE, cut = false): Generator<FrameEntry> {
  let offset = from
  while (offset < bytes.length) {
    const at = frameAt(bytes, offset)
    if (at._tag === "Frame") {
      const decoded = decodeFrame(at.payload, offset)
      yield { _tag: "Frame", offset, end: at.end, records: decoded.records }
      for (const damage of decoded.damage) yield { _tag: "Damage", damage }
      offset = at.end
      continue
    }
    if (cut && at._tag === "Short") {
      yield { _tag: "Damage", damage: { offset, bytes: bytes.length - offset, kind: "torn-tail", detail: at.detail } }
      return
    }
    const next = nextFrame(bytes, offset + 1)
    if (next === -1) {
      yield { _tag: "Damage", damage: { offset, bytes: bytes.length - offset, kind: "torn-tail", detail: at.detail } }
      return
    }
    yield { _tag: "Damage", damage: { offset, bytes: next - offset, kind: "corrupt-frame", detail: at.detail } }
    offset = next
  }
}

/** Bytes read from a journal at a time by a walk, grown while one frame is larger. */
const READ_CHUNK = 8 * 1024 * 1024

/** An incremental read of one journal file, which may still be being written: each frame once. */
export interface JournalWalk {
  /** Where the next frame starts (bytes). */
  readonly position: () => number
  /**
   * The whole frames from `position` up to `limit` (bytes), and the damage among them, each once
   * and with offsets in the file; a frame counts as read when it is yielded. A frame that `limit`
   * (or the file's end) cuts is not written yet: the walk stops before it, to read it on a later
   * call; unless `final` says the journal ends at `limit`, when it is reported once as a torn tail.
   * Throws on I/O errors.
   */
  readonly to: (limit: number, final: boolean) => Generator<FrameEntry>
}

/**
 * The one walk over a journal's frames that its readers share (the upload's Tailer, `steplog
 * inspect`): a chunk of READ_CHUNK at a time, so memory stays bounded whatever the journal's size,
 * and `readFrames` on each chunk. Each chunk is a buffer of its own: a block's columns are views
 * of it, and a Tailer holds blocks until they are sent.
 */
export const walk = (path: string, from: number = HEADER_SIZE): JournalWalk => {
  let position = from
  let chunk = READ_CHUNK
  function* to(limit: number, final: boolean): Generator<FrameEntry> {
    while (position < limit) {
      const end = Math.min(limit, position + chunk)
      const read = readRange(path, position, end)
      const base = position
      const cut = read.end < limit
      let progressed = false
      for (const entry of readFrames(read.bytes, 0, cut)) {
        if (entry._tag === "Frame") {
          position = base + entry.end
          progressed = true
          yield { ...entry, offset: base + entry.offset, end: base + entry.end }
          continue
        }
        const damage = { ...entry.damage, offset: base + entry.damage.offset }
        if (damage.kind === "torn-tail") {
          if (!final || cut) break
          position = limit
          yield { _tag: "Damage", damage }
          return
        }
        yield { _tag: "Damage", damage }
        if (damage.kind === "corrupt-frame") {
          position = damage.offset + damage.bytes
          progressed = true
        }
      }
      if (progressed) chunk = READ_CHUNK
      // One frame (or a damaged stretch) larger than the chunk: a larger one.
      else if (cut && read.end === end) chunk *= 2
      else return
    }
  }
  return { position: () => position, to }
}

/** Reads the header of the journal at `path`: whether it is one this steplog reads, and a header a crash cut short. */
export const checkFile = (path: string): Either.Either<Damage | null, JournalUnreadable> => {
  try {
    return checkHeader(path, readRange(path, 0, HEADER_SIZE).bytes)
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === "ENOENT"
    return Either.left(new JournalUnreadable({ path, reason: missing ? "missing" : "io", detail: missing ? "no such file" : String(cause) }))
  }
}

/** Checks the header; returns the damage of a header cut short by a crash, if that is all there is. */
export const checkHeader = (path: string, bytes: Uint8Array): Either.Either<Damage | null, JournalUnreadable> => {
  const present = bytes.subarray(0, HEADER_SIZE)
  const expected = Buffer.concat([MAGIC, Buffer.alloc(4)]).subarray(0, Math.min(present.length, 4))
  if (!Buffer.from(present.subarray(0, expected.length)).equals(expected)) {
    return Either.left(new JournalUnreadable({ path, reason: "not-a-journal", detail: "the file does not start with the steplog journal magic \"SLOG\"" }))
  }
  if (bytes.length < HEADER_SIZE) {
    return Either.right({ offset: 0, bytes: bytes.length, kind: "torn-tail", detail: "the header itself was cut short" })
  }
  const version = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER_SIZE).readUInt32LE(4)
  if (version !== FORMAT_VERSION) {
    return Either.left(new JournalUnreadable({ path, reason: "unsupported-version", detail: `format version ${version}; this steplog reads version ${FORMAT_VERSION}` }))
  }
  return Either.right(null)
}

/**
 * Reads the bytes [from, to) of a journal file as they are now; fewer when the file ends first.
 * Readers that follow a journal being written (the Tailer, the upload's scan) read it a range at a
 * time, never past the offset the writer has reported as flushed. A reader that keeps nothing of
 * what it read passes `into`, a buffer of its own to read into when it is large enough.
 */
export const readRange = (path: string, from: number, to: number, into?: Buffer): { readonly bytes: Buffer; readonly end: number } => {
  const fd = fs.openSync(path, "r")
  try {
    const size = Math.max(0, to - from)
    const buffer = into !== undefined && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size)
    let got = 0
    while (got < buffer.length) {
      const n = fs.readSync(fd, buffer, got, buffer.length - got, from + got)
      if (n === 0) break
      got += n
    }
    return { bytes: buffer.subarray(0, got), end: from + got }
  } finally {
    fs.closeSync(fd)
  }
}

/** Reads a whole journal file. */
export const readJournal = (path: string): Either.Either<JournalScan, JournalUnreadable> => {
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(path)
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === "ENOENT"
    return Either.left(new JournalUnreadable({ path, reason: missing ? "missing" : "io", detail: missing ? "no such file" : String(cause) }))
  }
  return Either.map(checkHeader(path, bytes), (torn) => {
    if (torn !== null) return { records: [], frames: 0, damage: [torn], end: 0 }
    const records: Array<Record> = []
    const damage: Array<Damage> = []
    let frames = 0
    let end = HEADER_SIZE
    for (const entry of readEntries(bytes)) {
      if (entry._tag === "Frame") {
        frames++
        end = entry.end
        for (const record of entry.records) records.push(record)
      } else {
        damage.push(entry.damage)
      }
    }
    return { records, frames, damage, end }
  })
}

const decodeFrame = (payload: Uint8Array, offset: number): { records: Array<UploadRecord>; damage: Array<Damage> } => {
  const records: Array<UploadRecord> = []
  const damage: Array<Damage> = []
  // The frame is the smallest span a damage names: [offset, offset + bytes) covers it, header too.
  const invalid = (detail: string) =>
    damage.push({ offset, bytes: FRAME_HEADER_SIZE + payload.length, kind: "invalid-record", detail })
  let raw: unknown
  try {
    raw = decodePayload(payload)
  } catch (cause) {
    invalid(`payload is not msgpack: ${String(cause)}`)
    return { records, damage }
  }
  if (!Array.isArray(raw)) {
    invalid("payload is not an array of records")
    return { records, damage }
  }
  raw.forEach((entry, index) => {
    const candidates = fromEntry(entry)
    if (typeof candidates === "string") return invalid(`entry ${index} of the frame is ${candidates}`)
    if (!Array.isArray(candidates)) return void records.push(candidates as UploadRecord)
    for (const candidate of candidates) {
      const decoded = decodeRecord(candidate)
      if (Either.isRight(decoded)) records.push(decoded.right)
      else invalid(`record ${index} of the frame: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
    }
  })
  return { records, damage }
}

/** The offset of the next whole frame holding a msgpack array at or after `from`, or -1. */
const nextFrame = (bytes: Uint8Array, from: number): number => {
  for (let offset = from; offset + 8 < bytes.length; offset++) {
    const at = frameAt(bytes, offset)
    if (at._tag !== "Frame" || at.payload.length === 0) continue
    try {
      if (Array.isArray(decodePayload(at.payload))) return offset
    } catch {
      // not a frame after all: keep scanning
    }
  }
  return -1
}
