/**
 * The SQLite store's tables, as numbered migrations (StoreLayout.ts runs them). What each table
 * holds is told where it is used: runs (internal/runRow.ts), held and records (internal/ingest.ts),
 * metric_keys, history_chunks and history_frames (internal/chunks.ts), api_keys (internal/keys.ts),
 * sessions and sign_in_tokens (internal/sessions.ts). postgres/Schema.ts defines the same tables
 * with PostgreSQL's types; the shared code reads both alike.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

const layout = [
  `CREATE TABLE runs (
    run_pk INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    run_id TEXT NOT NULL,
    name TEXT,
    tags BLOB,
    notes TEXT,
    grp TEXT,
    job_type TEXT,
    host TEXT,
    started_at ANY,
    created_at ANY NOT NULL,
    updated_at ANY,
    crashed INTEGER NOT NULL DEFAULT 0,
    run_seq INTEGER,
    exit_seq INTEGER,
    exit_code INTEGER,
    meta_config BLOB,
    config BLOB,
    summary BLOB,
    last_values TEXT,
    ack_seq INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    history_rows INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project, run_id)
  )`,
  `CREATE TABLE records (
    run_pk INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (run_pk, seq)
  ) WITHOUT ROWID`,
  `CREATE TABLE metric_keys (
    run_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (run_pk, key_id), UNIQUE (run_pk, name)
  ) WITHOUT ROWID`,
  `CREATE TABLE held (
    run_pk INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (run_pk, lo)
  ) WITHOUT ROWID`,
  // A rowid table: its rows are tens of KiB, which WITHOUT ROWID handles badly. The small columns
  // come first so that a read of the block summaries stays off the overflow pages of the columns.
  `CREATE TABLE history_chunks (
    run_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, chunk INTEGER NOT NULL,
    n INTEGER NOT NULL, first_step INTEGER NOT NULL, last_step INTEGER NOT NULL,
    blocks BLOB NOT NULL, block_texts TEXT,
    steps BLOB, seqs BLOB, ts BLOB, vals BLOB NOT NULL, texts TEXT,
    PRIMARY KEY (run_pk, key_id, chunk)
  )`,
  `CREATE TABLE history_frames (
    run_pk INTEGER NOT NULL, chunk INTEGER NOT NULL, n INTEGER NOT NULL,
    steps BLOB NOT NULL, seqs BLOB NOT NULL, ts BLOB NOT NULL,
    PRIMARY KEY (run_pk, chunk)
  )`,
  `CREATE TABLE api_keys (
    key_pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    projects TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  )`,
  `CREATE UNIQUE INDEX api_keys_unrevoked_name ON api_keys (name) WHERE revoked_at IS NULL`,
  `CREATE TABLE sessions (hash TEXT PRIMARY KEY, key_id TEXT, expires_at INTEGER NOT NULL)`,
  `CREATE TABLE sign_in_tokens (hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)`
]

/** A deleted run's (project, run id), kept so that an upload of it is refused (410), never stored anew. */
const deletedRuns = [
  `CREATE TABLE deleted_runs (project TEXT NOT NULL, run_id TEXT NOT NULL, deleted_at INTEGER NOT NULL, PRIMARY KEY (project, run_id))`
]

/**
 * A key chunk's version, counted up by every write of its row (chunks.ts): what tells a read that a
 * chunk it kept is as it was (StoreSql.chunkStamp, historyCache.ts).
 */
const chunkVersions = [`ALTER TABLE history_chunks ADD COLUMN version INTEGER NOT NULL DEFAULT 0`]

const statements = (list: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(list, (statement) => sql.unsafe(statement), { discard: true }))

/** The migrations, by `<id>_<name>`; a later change of layout is a new entry, never an edit of one. */
export const migrations = {
  "0001_layout": statements(layout),
  "0002_deleted_runs": statements(deletedRuns),
  "0003_chunk_versions": statements(chunkVersions)
}
