/**
 * The upload cursor, `upload.cursor` in the run directory: where uploading a run resumes, for one
 * server. `ackSeq` is that server's word (it holds every record with seq < ackSeq, or the journal
 * lost it to damage), so the cursor is never ahead of what the server holds: an upload resumed from
 * it sends the records from `ackSeq` on. `server` is the base URL it counts for: for any other
 * server (`steplog sync` to a second one) the cursor reads as the start.
 *
 * Written atomically (temporary file, fsync, rename, fsync of the directory), so a crash leaves
 * the old cursor or the new one, never a mix. A missing, corrupt or older-format cursor reads as
 * the start of the journal: that only resends records, and the server stores each (run, seq) once.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import { syncDirectory } from "./SyncDirectory.js"

/** Where uploading a run to `server` resumes: the seq that server acknowledged. */
export const UploadCursor = Schema.Struct({ server: Schema.String, ackSeq: Schema.NonNegativeInt })
export type UploadCursor = typeof UploadCursor.Type

/** The cursor of a run nothing of which `server` has acknowledged: the start of the journal. */
export const start = (server: string): UploadCursor => ({ server, ackSeq: 0 })

/** The cursor file of the run directory `runDir`. */
export const cursorPath = (runDir: string): string => path.join(runDir, "upload.cursor")

/** Persisting the cursor failed (disk full, directory gone); the previous cursor stays in place. */
export class CursorWriteFailed extends Data.TaggedError("CursorWriteFailed")<{
  readonly path: string
  readonly cause: unknown
}> {
  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `steplog: writing the upload cursor ${this.path} failed: ${reason}`
  }
}

const decode = Schema.decodeUnknownEither(Schema.parseJson(UploadCursor))

/** Reads the cursor at `file` for `server`; a missing, unreadable or corrupt file, or one for another server, is `start`. */
export const read = (file: string, server: string): Effect.Effect<UploadCursor> =>
  Effect.sync(() => {
    let text: string
    try {
      text = fs.readFileSync(file, "utf8")
    } catch {
      return start(server)
    }
    const cursor = Either.getOrUndefined(decode(text))
    return cursor !== undefined && cursor.server === server ? cursor : start(server)
  })

/**
 * Replaces the cursor at `file` atomically and durably. The file system calls run on libuv's
 * thread pool, not the caller's thread: the Uploader sends its next batch while a cursor is
 * written, and two fsyncs a batch on the main thread held every upload up (bench/sync.ts).
 */
export const write = (file: string, cursor: UploadCursor): Effect.Effect<void, CursorWriteFailed> =>
  Effect.tryPromise({
    try: async () => {
      // One temporary name per process: two services never upload one run at once (the run lock
      // belongs to its training process, which talks to one service).
      const temp = `${file}.tmp-${process.pid}`
      try {
        const handle = await fs.promises.open(temp, "w", 0o644)
        try {
          await handle.writeFile(JSON.stringify({ server: cursor.server, ackSeq: cursor.ackSeq }))
          await handle.sync()
        } finally {
          await handle.close()
        }
        await fs.promises.rename(temp, file)
      } catch (cause) {
        // A full disk keeps no half-written temporary file: its space is what the next write needs.
        await fs.promises.rm(temp, { force: true }).catch(() => {})
        throw cause
      }
      // Makes the rename durable; best effort (some platforms cannot open a directory): the cursor
      // only ever saves work, never data.
      await syncDirectory(path.dirname(file)).catch(() => {})
    },
    catch: (cause) => new CursorWriteFailed({ path: file, cause })
  })

