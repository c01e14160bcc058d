/**
 * Appends frames to a journal. Only the Writer actor (and, when the buffer is full, `log()` on the
 * Writer's behalf) holds one. Writes are positioned at `offset`, the end of the last whole frame:
 * a write that failed half-way is simply written again over the same bytes, so a retried batch
 * lands once. Writes are synchronous: a flush is a page-cache copy of one interval's records, and
 * a synchronous write leaves no batch "in flight" that a later write could overtake.
 */
import * as Either from "effect/Either"
import * as fs from "node:fs"
import type { Record } from "../schemas/Record.js"
import { JournalUnreadable, JournalWriteFailed } from "./JournalError.js"
import type { JournalScan } from "./JournalReader.js"
import { HEADER_SIZE, encodeFrame, header } from "./internal/frame.js"

/** One frame, encoded: its header and payload, and their length in bytes. */
export interface Frame {
  readonly parts: readonly [Buffer, Buffer]
  readonly bytes: number
}

export class JournalWriter {
  private constructor(
    /** The journal file. */
    readonly path: string,
    private descriptor: number,
    /** Bytes of whole frames on disk: where the next frame goes. */
    public offset: number
  ) {}

  /** Creates a new, empty journal; fails if the file exists. */
  static create(path: string): Either.Either<JournalWriter, JournalUnreadable> {
    return JournalWriter.open(path, "wx", HEADER_SIZE, 0)
  }

  /**
   * Opens an existing journal, as `readJournal` found it (`scan`), to append after its last whole
   * frame. A torn tail is cut off (its records were never whole); damage in the middle stays as it
   * is, to be reported by readers. The scan is the caller's to make: a new run never loads the reader.
   */
  static reopen(path: string, scan: JournalScan): Either.Either<JournalWriter, JournalUnreadable> {
    return JournalWriter.open(path, "r+", Math.max(scan.end, HEADER_SIZE), scan.end)
  }

  /** Opens `path`, writes the header unless `kept` bytes already hold one, and cuts the file at `end`. */
  private static open(path: string, flags: "wx" | "r+", end: number, kept: number): Either.Either<JournalWriter, JournalUnreadable> {
    let fd = -1
    try {
      fd = fs.openSync(path, flags)
      const writer = new JournalWriter(path, fd, end)
      if (kept < HEADER_SIZE) writer.writeAt([header()], 0)
      fs.ftruncateSync(fd, end)
      return Either.right(writer)
    } catch (cause) {
      if (fd >= 0) fs.closeSync(fd)
      return Either.left(new JournalUnreadable({ path, reason: "io", detail: String(cause) }))
    }
  }

  /** The open file descriptor (-1 once closed), for an fdatasync off the main thread. */
  get fd(): number {
    return this.descriptor
  }

  /** Appends one frame holding `records`; throws `JournalWriteFailed`, after which nothing past `offset` counts. */
  append(records: ReadonlyArray<Record>): void {
    if (records.length > 0) this.appendFrame(JournalWriter.frame(records))
  }

  /** `records` as the frame `appendFrame` writes: what a writer holds while the disk refuses it. */
  static frame(records: ReadonlyArray<Record>): Frame {
    const [head, payload] = encodeFrame(records)
    return { parts: [head, payload], bytes: head.length + payload.length }
  }

  /**
   * Appends an encoded frame; throws `JournalWriteFailed`, after which nothing past `offset` counts.
   * What a failed write left past `offset` is cut off, so that a full disk gets its space back and
   * the file ends at a whole frame again.
   */
  appendFrame(frame: Frame): void {
    try {
      this.writeAt(frame.parts, this.offset)
    } catch (cause) {
      try {
        fs.ftruncateSync(this.descriptor, this.offset)
      } catch {
        // The next successful write lands at `offset` all the same; readers stop at a torn tail.
      }
      throw new JournalWriteFailed({ path: this.path, offset: this.offset, cause })
    }
    this.offset += frame.bytes
  }

  /** Forces written frames to the disk (fdatasync). */
  sync(): void {
    try {
      fs.fdatasyncSync(this.descriptor)
    } catch (cause) {
      throw new JournalWriteFailed({ path: this.path, offset: this.offset, cause })
    }
  }

  /** Syncs and closes; later appends throw. */
  close(): void {
    if (this.descriptor < 0) return
    const fd = this.descriptor
    this.descriptor = -1
    try {
      fs.fdatasyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
  }

  private writeAt(parts: ReadonlyArray<Buffer>, position: number): void {
    const total = parts.reduce((sum, part) => sum + part.length, 0)
    let written = fs.writevSync(this.descriptor, parts as Array<Buffer>, position)
    if (written === total) return
    // A short write (rare: a signal, a nearly full disk): finish it from a single buffer.
    const bytes = Buffer.concat(parts as Array<Buffer>)
    while (written < total) {
      written += fs.writeSync(this.descriptor, bytes, written, total - written, position + written)
    }
  }
}
