/**
 * `steplog server backup`: a consistent copy of a SQLite store, taken while its server runs, by
 * SQLite's online backup: the copy is the database as of one moment, with every acknowledged batch
 * up to it (WAL included) and none half. The copy is then checked (`PRAGMA integrity_check`) and its
 * runs counted. Restoring is copying it back as `steplog.db` into a data directory whose server is
 * stopped (README, "Backups").
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { StoreFailed } from "../RecordStore.js"

/** The backup was not made: the file is there already, or the source is not a store. */
export class BackupRefused extends Data.TaggedError("BackupRefused")<{ readonly detail: string }> {
  override get message(): string {
    return `steplog server backup: ${this.detail}`
  }
}

/** What a backup holds. */
export interface BackupMade {
  readonly bytes: number
  readonly runs: number
}

/** Copies the SQLite store in `filename` to the new file `destination`. */
export const backup = (filename: string, destination: string) =>
  Effect.gen(function* () {
    if (!fs.existsSync(filename)) return yield* new BackupRefused({ detail: `there is no store at ${filename} (is --data the server's data directory?)` })
    if (fs.existsSync(destination)) return yield* new BackupRefused({ detail: `${destination} exists; name a new file` })
    const open = (file: string) =>
      SqliteClient.make({ filename: file, readonly: true }).pipe(Effect.catchAllDefect((cause) => Effect.fail(new StoreFailed({ operation: `open ${file}`, cause }))))
    const source = yield* open(filename)
    const made = Effect.gen(function* () {
      yield* source.backup(destination).pipe(Effect.mapError((cause) => new StoreFailed({ operation: `back up ${filename} to ${destination}`, cause })))
      const copy = yield* open(destination)
      const checked = (operation: string) => (cause: unknown) => new StoreFailed({ operation: `${operation} of ${destination}`, cause })
      const [integrity] = yield* copy.unsafe<{ integrity_check: string }>(`PRAGMA integrity_check`).pipe(Effect.mapError(checked("the integrity check")))
      if (integrity?.integrity_check !== "ok") return yield* new StoreFailed({ operation: `check ${destination}`, cause: integrity?.integrity_check })
      const [counted] = yield* copy.unsafe<{ n: number }>(`SELECT COUNT(*) AS n FROM runs`).pipe(Effect.mapError(checked("counting the runs")))
      return { bytes: fs.statSync(destination).size, runs: Number(counted?.n ?? 0) } satisfies BackupMade
    }).pipe(Effect.scoped)
    // A copy that failed is not left behind to be taken for a backup (or to block the next one).
    return yield* made.pipe(Effect.tapError(() => Effect.sync(() => fs.rmSync(destination, { force: true }))))
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
