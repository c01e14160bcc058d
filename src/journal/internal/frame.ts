/**
 * The journal's byte layout, shared by the writer and the reader and by nothing else.
 *
 *   header:  "SLOG" | u32 LE format version
 *   frame:   u32 LE payload length | u32 LE CRC-32 of payload | payload
 *   payload: msgpack array of the records of one flush, in seq order, runs of like history
 *            rows packed as column blocks (historyBlock.ts)
 *
 * A frame holds a batch rather than a single record because a native `zlib.crc32` call and a
 * msgpack `pack` call each cost more than encoding a whole 10-value row (bench/journal-encode.ts);
 * per batch, both are paid once per flush. msgpackr's record extension writes each key set once
 * per payload, so every frame still decodes on its own: no state carries from frame to frame.
 */
// msgpackr's entry without the native string extractor and the streams, which only reading
// needs: the writer is on init()'s path, and this entry loads ~10 ms faster (bench/first-init.ts).
// JournalReader.ts imports the full "msgpackr"; both entries share the one Packr implementation.
import { Packr } from "msgpackr/pack"
import * as zlib from "node:zlib"
import type { Record } from "../../schemas/Record.js"
import { toEntries } from "./historyBlock.js"

export const MAGIC = Buffer.from("SLOG", "latin1")
export const FORMAT_VERSION = 1
/** Bytes before the first frame. */
export const HEADER_SIZE = 8
/** Bytes before each payload: length and CRC. */
export const FRAME_HEADER_SIZE = 8
/** No payload is larger; a length past it can only be damage. */
export const MAX_PAYLOAD = 256 * 1024 * 1024

export const header = (): Buffer => {
  const bytes = Buffer.alloc(HEADER_SIZE)
  MAGIC.copy(bytes, 0)
  bytes.writeUInt32LE(FORMAT_VERSION, 4)
  return bytes
}

// One packer per process: with no shared structures, msgpackr defines each record shape inline in
// the payload that first uses it, so a payload needs nothing from earlier ones.
const packr = new Packr({ useRecords: true })

/**
 * Encodes one batch of records as a frame, in two parts: its 8-byte header and its payload. They
 * are written together with one writev, so the payload is never copied behind a header.
 */
export const encodeFrame = (records: ReadonlyArray<Record>): readonly [Buffer, Buffer] => {
  const payload = packr.pack(toEntries(records))
  const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE)
  head.writeUInt32LE(payload.length, 0)
  head.writeUInt32LE(zlib.crc32(payload), 4)
  return [head, payload]
}

/** What lies at an offset: a whole frame whose CRC matches, or why not. */
export type FrameAt =
  | { readonly _tag: "Frame"; readonly payload: Uint8Array; readonly end: number }
  | { readonly _tag: "Short"; readonly detail: string }
  | { readonly _tag: "BadCrc"; readonly detail: string }

export const frameAt = (bytes: Uint8Array, offset: number): FrameAt => {
  const remaining = bytes.length - offset
  if (remaining < FRAME_HEADER_SIZE) {
    return { _tag: "Short", detail: `${remaining} bytes, less than a frame header` }
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_SIZE)
  const length = view.readUInt32LE(0)
  const crc = view.readUInt32LE(4)
  if (length > MAX_PAYLOAD) return { _tag: "BadCrc", detail: `impossible payload length ${length}` }
  // The writer never writes an empty payload (an empty batch packs to one byte, and is not written
  // at all), while eight zero bytes have a matching CRC (crc32 of nothing is 0): without this, a
  // zero-filled tail left by a crash would read as a run of "whole" frames instead of a torn tail.
  if (length === 0) return { _tag: "BadCrc", detail: "payload length 0: no frame is empty" }
  if (length > remaining - FRAME_HEADER_SIZE) {
    return { _tag: "Short", detail: `payload of ${length} bytes, ${remaining - FRAME_HEADER_SIZE} present` }
  }
  const start = offset + FRAME_HEADER_SIZE
  const payload = bytes.subarray(start, start + length)
  if (zlib.crc32(payload) !== crc) return { _tag: "BadCrc", detail: "CRC-32 does not match the payload" }
  return { _tag: "Frame", payload, end: start + length }
}
