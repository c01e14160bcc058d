/**
 * How an acknowledged SQLite commit is on disk without the event loop waiting for the disk. The
 * writer commits with synchronous=NORMAL: the WAL is written, not synced (the database stays
 * consistent whatever happens, but a power cut may drop the last commits). Before a write is
 * answered, `synced` waits for an fdatasync of the WAL that began after that write committed; it
 * runs on libuv's thread pool, so other requests are served meanwhile, and one sync serves every
 * commit made before it began (group commit). With SQLite syncing each commit itself
 * (synchronous=FULL), the server's one thread stood still 2–7 ms an ingest while the disk synced,
 * and every read and upload queued behind it (bench/concurrent.ts, paced).
 *
 * SQLite syncs the WAL before a checkpoint copies it into the database, and the database after, so
 * a commit synced here stays on disk when its WAL frames are checkpointed and overwritten. The WAL's
 * directory entry is synced once, when the store opens (SQLite makes the file anew each start).
 * A failed sync fails every later write too: Linux may have dropped the pages it could not write,
 * so a retry could find a batch held that is not on disk; the server must be restarted.
 */
import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { syncDirectory } from "../../../journal/SyncDirectory.js"

/** Waits until every commit made before it was called is on disk. */
export type Synced = Effect.Effect<void, SqlError>

/** Group commit over `sync`: each caller waits for a run of `sync` that began after it called. */
export const groupSync = (sync: () => Promise<void>): Synced => {
  /** The sync running now, and the one that follows it, for every caller since it began. */
  let running: Promise<void> | null = null
  let following: Promise<void> | null = null
  /** Why a sync failed, once one has: every later one fails with it. */
  let broken: unknown = null
  const start = (): Promise<void> => {
    if (broken !== null) return Promise.reject(broken)
    const run: Promise<void> = sync().catch((error: unknown) => {
      broken = error
      throw error
    }).finally(() => {
      if (running === run) running = null
    })
    running = run
    return run
  }
  const request = (): Promise<void> => {
    if (running === null) return start()
    following ??= running.then(
      () => undefined,
      () => undefined
    ).then(() => {
      following = null
      return start()
    })
    return following
  }
  return Effect.tryPromise({ try: request, catch: (cause) => new SqlError({ cause, message: "syncing the write-ahead log to disk failed" }) })
}

/**
 * `synced` for the database file `filename`: fdatasync of its WAL (`<filename>-wal`, which the
 * writer's connection keeps while it is open) through one file handle, closed with the scope.
 */
export const make = (filename: string) =>
  Effect.gen(function* () {
    const wal = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => fs.promises.open(`${filename}-wal`, "r"), catch: (cause) => new SqlError({ cause, message: `opening ${filename}-wal failed` }) }),
      (handle) => Effect.promise(() => handle.close())
    )
    yield* Effect.tryPromise({ try: () => syncDirectory(path.dirname(filename)), catch: (cause) => new SqlError({ cause, message: `syncing the folder of ${filename} failed` }) })
    return groupSync(() => wal.datasync())
  })
