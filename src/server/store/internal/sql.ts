/**
 * What the shared store code (this folder) needs of a database, and what each backend gives:
 * statements as text with `?` placeholders (PostgreSQL's backend numbers them), on a writer and
 * on a reader, and the one clause that differs. The SQL of this folder is the subset both SQLite
 * and PostgreSQL read alike (ON CONFLICT upserts, RETURNING, substr on blobs), so it is written once.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { StoreFailed } from "../RecordStore.js"

/** Runs one statement; answers its rows (none for a write without RETURNING). */
export type Run = (text: string, params?: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<any>, SqlError>

/** A statement to run later: its text, with `?` placeholders, and its parameters. */
export interface Statement {
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

/** A database as the store code uses it. */
export interface StoreSql {
  /** Statements that change the store, and the reads of a write transaction. */
  readonly write: Run
  /**
   * Reads that change nothing. SQLite: a connection of its own (WAL lets it read the last commit
   * while an ingest writes), so a read never queues behind an ingest. PostgreSQL: the pool.
   */
  readonly read: Run
  /**
   * Runs `statements` in order on the writer and answers the last one's rows. PostgreSQL gets them
   * as one statement (the others as data-modifying WITH clauses before the last): one round trip
   * instead of one each, on a database whose processes share the server's cores. They then share
   * one snapshot, so none of them may read or change a row another of them writes.
   */
  readonly writeAll: (statements: ReadonlyArray<Statement>) => Effect.Effect<ReadonlyArray<any>, SqlError>
  /** `effect` in one transaction of the writer: all of its writes or none. */
  readonly writeTransaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
  /**
   * Write transactions of different runs that may run at once: 1 on SQLite (one writer
   * connection); on PostgreSQL some of the pool's connections, the rest left to reads.
   */
  readonly concurrentWrites: number
  /**
   * Waits until every commit made so far is on disk: what a write does before it is answered.
   * SQLite in a file: a sync of its WAL off the event loop, shared by the commits before it
   * (sqlite/WalSync.ts). PostgreSQL (synchronous_commit=on) and SQLite in memory: nothing to wait for.
   */
  readonly synced: Effect.Effect<void, SqlError>
  /**
   * `effect`'s reads as one: on SQLite one transaction of the reader (one snapshot); on PostgreSQL
   * as they are, each statement reading the last commit (READ COMMITTED), so a read of several
   * statements may see a batch stored between them.
   */
  readonly readTransaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
  /**
   * Ends the SELECT of a run's row that begins an ingest or putRun: ` FOR UPDATE` on PostgreSQL,
   * where server processes write one run at once (the row lock makes them take turns); empty on
   * SQLite, whose write transactions already take turns.
   */
  readonly lockRow: string
  /**
   * The SQL of a key chunk row's stamp (over `history_chunks h`): text that differs between any two
   * committed versions of the row, so that a read may keep what it unpacked of them and the
   * answers it made of them (historyCache.ts). Its `version`, which every write counts up; on
   * PostgreSQL also its xmin, the transaction that wrote it, which changes too when a server of
   * an older steplog (one that counts no versions, during an upgrade) rewrites the row, or when
   * `steplog server migrate` copies a run again under its id (its versions as they were). A frame
   * needs no stamp: it only ever grows at its end (historyFrame.ts), so a key chunk's entries
   * change only with its row.
   */
  readonly chunkStamp: string
  /**
   * Whether reads take blobs in-process (SQLite): a sampled read's first statement then takes
   * the block summaries too, views of the blobs, none of them kept, rather than reading them
   * apart; over a wire (PostgreSQL, where a blob crosses as hex) only those not kept are read.
   */
  readonly blobsInProcess: boolean
}

/**
 * `effect` as a write transaction of `client`. @effect/sql turns a failed COMMIT into a defect; here
 * it is the failure it is (SQLite's SQLITE_FULL on a full disk: SQLite has rolled the transaction
 * back, and the next one starts clean), so the request is refused, not crashed.
 */
export const transactionOf = (client: SqlClient.SqlClient) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
    client.withTransaction(effect).pipe(
      Effect.catchSomeDefect((defect) => (isSqlError(defect) ? Option.some(Effect.fail(defect)) : Option.none()))
    )

const isSqlError = (defect: unknown): defect is SqlError => (defect as { readonly _tag?: unknown } | null)?._tag === "SqlError"

/** Maps a database failure to the store's StoreFailed for `operation`; the store's own errors (StoreFailed, RunGone, …) pass as they are. */
export const failed = (operation: string) => <E extends { readonly _tag: string }>(cause: E): Exclude<E, SqlError> | StoreFailed =>
  cause._tag === "SqlError" ? new StoreFailed({ operation, cause }) : (cause as Exclude<E, SqlError>)

/**
 * Multi-row statements: one prepared statement inserts up to CHUNK rows, and a remainder goes in
 * power-of-two chunks, so at most eight distinct statement texts per table reach the prepare cache.
 */
const CHUNK = 128
const chunkSizes = (n: number): Array<number> => {
  const sizes: Array<number> = []
  let left = n
  while (left >= CHUNK) (sizes.push(CHUNK), (left -= CHUNK))
  for (let size = CHUNK / 2; size >= 1; size /= 2) if (left >= size) (sizes.push(size), (left -= size))
  return sizes
}

/** The statements that insert `rows` (each `columns.length` values) into `table`; `suffix` follows the VALUES (an ON CONFLICT clause). */
export const inserts = (
  table: string,
  columns: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<unknown>>,
  suffix = ""
): Array<Statement> => {
  const statements: Array<Statement> = []
  let at = 0
  const one = `(${columns.map(() => "?").join(",")})`
  for (const size of chunkSizes(rows.length)) {
    const params: Array<unknown> = []
    for (let i = at; i < at + size; i++) params.push(...rows[i]!)
    at += size
    statements.push({ text: `INSERT INTO ${table} (${columns.join(",")}) VALUES ${Array(size).fill(one).join(",")} ${suffix}`, params })
  }
  return statements
}

/** Runs `statements` one after another with `run`, answering the last one's rows: StoreSql.writeAll where a statement costs no round trip. */
export const inTurn = (run: Run) => (statements: ReadonlyArray<Statement>): Effect.Effect<ReadonlyArray<any>, SqlError> =>
  Effect.reduce(statements, [] as ReadonlyArray<any>, (_, statement) => run(statement.text, statement.params))

/** The ON CONFLICT clause that makes an insert into `table` replace the row with the same `key`. */
export const replacing = (key: ReadonlyArray<string>, columns: ReadonlyArray<string>): string =>
  `ON CONFLICT (${key.join(",")}) DO UPDATE SET ${columns.filter((c) => !key.includes(c)).map((c) => `${c} = excluded.${c}`).join(", ")}`
