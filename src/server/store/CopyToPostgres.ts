/**
 * `steplog server migrate`: a SQLite server's store (runs with all their data, API keys, dashboard
 * sessions and sign-in tokens, deleted run ids) copied into a PostgreSQL database, which the
 * PostgreSQL store then serves as it is: the same rows, so the same answers, byte for byte.
 *
 * Run by run, each in one PostgreSQL transaction that ends with a count of the run's rows in every
 * table against the source's (a mismatch rolls the run back and fails the copy). So the copy can be
 * stopped at any point and run again: a run already copied whole is left alone (its row's
 * `version`, which counts its writes, matches), one the source has written to since is copied
 * again, one never copied is copied, and one deleted at the source since is removed. A run the source server writes to while it is read (its
 * version moves) is rolled back and copied again, so a live server may go on ingesting meanwhile;
 * run the copy again once it is stopped, to take the last batches. Run ids are kept; the numeric keys that tie a run's rows together are the
 * target's own.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { connect } from "./postgres/PostgresStore.js"
import { StoreFailed } from "./RecordStore.js"
import { RUN_TABLES } from "./internal/runs.js"
import { migrations } from "./sqlite/Schema.js"
import { MIGRATIONS_TABLE } from "./StoreLayout.js"

/** The copy cannot go on: the source is not a steplog SQLite store this version reads, or the target disagrees with it. */
export class CopyRefused extends Data.TaggedError("CopyRefused")<{ readonly detail: string }> {
  override get message(): string {
    return `steplog server migrate: ${this.detail}`
  }
}

/** How each run table's rows are read in order, a page at a time. */
const ORDER: { readonly [table in (typeof RUN_TABLES)[number]]: string } = {
  records: "seq",
  held: "lo",
  metric_keys: "key_id",
  history_chunks: "key_id, chunk",
  history_frames: "chunk"
}

/** Times a run the source server writes to meanwhile is copied again before the copy gives up. */
const MOVING_RUN_TRIES = 5

/**
 * `effect` run outside any transaction of the context: @effect/sql keeps the connection of a
 * transaction under one tag for every client, so a read of the source inside the target's
 * transaction would otherwise go to the target's connection.
 */
const outside = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.mapInputContext(effect, (context: Context.Context<R>) => Context.omit(SqlClient.TransactionConnection)(context) as Context.Context<R>)

/** Rows read from the source and inserted into the target at once. */
const PAGE_ROWS = 64

/** A run's copy saw the source run change while it read it, so it rolled back and is tried again. */
export class SourceMoved extends Data.TaggedError("SourceMoved")<{}> {}

/** What a copy did. */
export interface CopyReport {
  readonly runsCopied: number
  readonly runsAlreadyThere: number
  readonly runsCopiedAgain: number
  /** Runs of the target deleted at the source since they were copied, removed. */
  readonly runsRemoved: number
  /** Rows of every run table, summed over the source's runs: in the source, and in the target for those runs. */
  readonly rows: { readonly [table: string]: readonly [source: number, target: number] }
  readonly keysCopied: number
  /** Source keys not copied, and why (the target has an unrevoked key of that name). */
  readonly keysSkipped: ReadonlyArray<string>
  readonly sessions: number
  readonly deletedRuns: number
}

type Row = { readonly [column: string]: unknown }

/** `INSERT INTO table (columns) VALUES ($1, …), …` for `rows` (objects with those columns), on PostgreSQL. */
const insert = (target: PgClient.PgClient, table: string, rows: ReadonlyArray<Row>, suffix = "") => {
  if (rows.length === 0) return Effect.succeed([] as ReadonlyArray<Row>)
  const columns = Object.keys(rows[0]!)
  const params: Array<unknown> = []
  const tuples = rows.map((row) => `(${columns.map((column) => (params.push(row[column]), `$${params.length}`)).join(",")})`)
  return target.unsafe<Row>(`INSERT INTO ${table} (${columns.join(",")}) VALUES ${tuples.join(",")} ${suffix}`, params)
}

/** A run's rows in `table` (its run_pk, a whole number read from the store, written into the text). */
const count = (client: SqlClient.SqlClient, table: string, runPk: unknown) =>
  Effect.map(client.unsafe<{ n: number }>(`SELECT CAST(COUNT(*) AS INTEGER) AS n FROM ${table} WHERE run_pk = ${Math.trunc(Number(runPk))}`), ([row]) => Number(row!.n))

/** Copies the SQLite store in `from` (a steplog.db file) into the PostgreSQL database of `to`; `say` hears a line per run copied. */
export const copyToPostgres = (options: { readonly from: string; readonly to: string; readonly say: (line: string) => Effect.Effect<void> }) =>
  Effect.gen(function* () {
    const failed = (operation: string) => (cause: unknown) => new StoreFailed({ operation, cause })
    const source = yield* SqliteClient.make({ filename: options.from, readonly: true }).pipe(
      Effect.catchAllDefect((cause) => Effect.fail(failed(`open ${options.from}`)(cause)))
    )
    const tables = new Set((yield* source.unsafe<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'`).pipe(Effect.mapError(failed(`read ${options.from}`)))).map((t) => t.name))
    if (!tables.has(MIGRATIONS_TABLE) || !tables.has("runs")) {
      return yield* new CopyRefused({ detail: `${options.from} is not a steplog server's SQLite store (no runs and no ${MIGRATIONS_TABLE} table)` })
    }
    // Its tables' columns are copied as they are: a layout this steplog does not know is refused first.
    const known = Math.max(...Object.keys(migrations).map((name) => Number(name.slice(0, name.indexOf("_")))))
    const [latest] = yield* source.unsafe<{ id: number }>(`SELECT MAX(migration_id) AS id FROM ${MIGRATIONS_TABLE}`).pipe(Effect.mapError(failed(`read ${options.from}`)))
    if (Number(latest?.id ?? 0) > known) {
      return yield* new CopyRefused({ detail: `${options.from} was migrated by a newer steplog (migration ${latest?.id}; this one knows up to ${known}): copy it with that steplog` })
    }
    const target = yield* connect(options.to)
    const read = <A extends Row = Row>(text: string, params: ReadonlyArray<unknown> = []) => source.unsafe<A>(text, params).pipe(Effect.mapError(failed(`read ${options.from}`)))
    const write = <A, R>(effect: Effect.Effect<A, unknown, R>) =>
      effect.pipe(Effect.mapError((cause) => (cause instanceof CopyRefused || cause instanceof StoreFailed || cause instanceof SourceMoved ? cause : failed("write to PostgreSQL")(cause))))

    /** Removes a run of the target, its rows first (inside the caller's transaction). */
    const removeRun = (runPk: unknown) =>
      Effect.gen(function* () {
        for (const table of RUN_TABLES) yield* target.unsafe(`DELETE FROM ${table} WHERE run_pk = $1`, [runPk])
        yield* target.unsafe(`DELETE FROM runs WHERE run_pk = $1`, [runPk])
      })

    // Keys by their id; one whose name an unrevoked target key has already is left out, and said.
    let keysCopied = 0
    const keysSkipped: Array<string> = []
    for (const key of yield* read(`SELECT id, name, hash, projects, created_at, revoked_at FROM api_keys ORDER BY key_pk`)) {
      const there = yield* write(target.unsafe(`SELECT 1 FROM api_keys WHERE id = $1`, [key["id"]]))
      if (there.length > 0) continue
      const made = yield* write(insert(target, "api_keys", [key], "ON CONFLICT DO NOTHING RETURNING id"))
      if (made.length > 0) keysCopied++
      else keysSkipped.push(`"${String(key["name"])}" (${String(key["id"])}): the target has an unrevoked key of that name`)
    }
    let sessions = 0
    for (const table of ["sessions", "sign_in_tokens"]) {
      const rows = yield* read(`SELECT * FROM ${table}`)
      for (let at = 0; at < rows.length; at += PAGE_ROWS) sessions += (yield* write(insert(target, table, rows.slice(at, at + PAGE_ROWS), "ON CONFLICT DO NOTHING RETURNING hash"))).length
    }
    // Deleted run ids; a run copied before and deleted at the source since goes from the target too.
    let deletedRuns = 0
    let runsRemoved = 0
    if (tables.has("deleted_runs")) {
      const rows = yield* read(`SELECT * FROM deleted_runs`)
      for (let at = 0; at < rows.length; at += PAGE_ROWS) deletedRuns += (yield* write(insert(target, "deleted_runs", rows.slice(at, at + PAGE_ROWS), "ON CONFLICT DO NOTHING RETURNING run_id"))).length
      for (const deleted of rows) {
        const removed = yield* write(target.withTransaction(Effect.gen(function* () {
          const [there] = yield* target.unsafe<{ run_pk: number }>(`SELECT run_pk FROM runs WHERE project = $1 AND run_id = $2 FOR UPDATE`, [deleted["project"], deleted["run_id"]])
          if (there === undefined) return false
          yield* removeRun(there.run_pk)
          return true
        })))
        if (removed) {
          runsRemoved++
          yield* options.say(`removed run ${String(deleted["project"])}/${String(deleted["run_id"])}: deleted at the source since it was copied`)
        }
      }
    }

    const totals: { [table: string]: [number, number] } = Object.fromEntries(["runs", ...RUN_TABLES].map((table) => [table, [0, 0]]))
    let runsCopied = 0
    let runsAlreadyThere = 0
    let runsCopiedAgain = 0
    const copyRun = (sourcePk: number) =>
      Effect.gen(function* () {
        const [run] = yield* read(`SELECT * FROM runs WHERE run_pk = ?`, [sourcePk])
        if (run === undefined) return null // deleted meanwhile
        const { run_pk: _, ...columns } = run
        const name = `${String(run["project"])}/${String(run["run_id"])}`
        const records = Number(run["records"])
        const sourceCounts = yield* Effect.forEach(RUN_TABLES, (table) => count(source, table, sourcePk))
        return yield* write(target.withTransaction(Effect.gen(function* () {
          const [existing] = yield* target.unsafe<{ run_pk: number; version: number }>(
            `SELECT run_pk, version FROM runs WHERE project = $1 AND run_id = $2 FOR UPDATE`,
            [run["project"], run["run_id"]]
          )
          const verified = (targetPk: unknown) =>
            Effect.gen(function* () {
              const targetCounts = yield* Effect.forEach(RUN_TABLES, (table) => count(target, table, targetPk))
              const wrong = RUN_TABLES.filter((_, i) => targetCounts[i] !== sourceCounts[i])
              if (wrong.length > 0) {
                return yield* new CopyRefused({ detail: `the copy of run ${name} holds other row counts than its source in ${wrong.join(", ")}; it was rolled back` })
              }
              return targetCounts
            })
          if (existing !== undefined && Number(existing.version) === Number(run["version"])) {
            return { name, records, outcome: "there" as const, sourceCounts, targetCounts: yield* verified(existing.run_pk) }
          }
          if (existing !== undefined) yield* removeRun(existing.run_pk)
          const [made] = yield* insert(target, "runs", [columns], "RETURNING run_pk")
          const targetPk = made!["run_pk"]
          for (const table of RUN_TABLES) {
            for (let offset = 0; ; offset += PAGE_ROWS) {
              const rows = yield* outside(read(`SELECT * FROM ${table} WHERE run_pk = ? ORDER BY ${ORDER[table]} LIMIT ${PAGE_ROWS} OFFSET ${offset}`, [sourcePk]))
              yield* insert(target, table, rows.map((row: Row) => ({ ...row, run_pk: targetPk })))
              if (rows.length < PAGE_ROWS) break
            }
          }
          // Every write of a run moves its version: unmoved, the pages read were one state of it.
          const [now] = yield* outside(read(`SELECT version FROM runs WHERE run_pk = ?`, [sourcePk]))
          if (Number(now?.["version"]) !== Number(run["version"])) return yield* new SourceMoved()
          const targetCounts = yield* verified(targetPk)
          return { name, records, outcome: existing === undefined ? ("copied" as const) : ("again" as const), sourceCounts, targetCounts }
        })))
      })
    for (const { run_pk: sourcePk } of yield* read<{ run_pk: number }>(`SELECT run_pk FROM runs ORDER BY run_pk`)) {
      const copied = yield* copyRun(sourcePk).pipe(
        Effect.retry({ times: MOVING_RUN_TRIES, while: (error) => error._tag === "SourceMoved" }),
        Effect.catchTag("SourceMoved", () =>
          Effect.fail(new CopyRefused({ detail: `the source server kept writing to run ${sourcePk} while it was copied; stop that server and run the copy again` })))
      )
      if (copied === null) continue
      totals["runs"]![0]++
      totals["runs"]![1]++
      RUN_TABLES.forEach((table, i) => {
        totals[table]![0] += copied.sourceCounts[i]!
        totals[table]![1] += copied.targetCounts[i]!
      })
      if (copied.outcome === "there") runsAlreadyThere++
      else {
        if (copied.outcome === "copied") runsCopied++
        else runsCopiedAgain++
        yield* options.say(`copied run ${copied.name}${copied.outcome === "again" ? " again (written to since the last copy)" : ""}: ${copied.records} records`)
      }
    }
    return { runsCopied, runsAlreadyThere, runsCopiedAgain, runsRemoved, rows: totals, keysCopied, keysSkipped, sessions, deletedRuns } satisfies CopyReport
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
