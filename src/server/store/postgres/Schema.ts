/**
 * The PostgreSQL store's tables, as numbered migrations (Migrations.ts runs them under an advisory
 * lock): the tables of sqlite/Schema.ts, which the shared code (../internal/) reads alike.
 *
 * Types: every number column is DOUBLE PRECISION or INTEGER, which node-postgres reads back as a JS
 * number (a BIGINT would come back as a string). Seqs, steps and ms timestamps are integers below
 * 2^53 (JS numbers hold no more), exact in a double. History columns are bytea stored EXTERNAL:
 * out of line, not compressed, since packed float64s do not compress and pglz would only cost CPU.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

const layout = [
  `CREATE TABLE runs (
    run_pk INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project TEXT NOT NULL,
    run_id TEXT NOT NULL,
    name TEXT,
    tags BYTEA,
    notes TEXT,
    grp TEXT,
    job_type TEXT,
    host TEXT,
    started_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION,
    crashed INTEGER NOT NULL DEFAULT 0,
    run_seq DOUBLE PRECISION,
    exit_seq DOUBLE PRECISION,
    exit_code INTEGER,
    meta_config BYTEA,
    config BYTEA,
    summary BYTEA,
    last_values TEXT,
    ack_seq DOUBLE PRECISION NOT NULL DEFAULT 0,
    records DOUBLE PRECISION NOT NULL DEFAULT 0,
    history_rows DOUBLE PRECISION NOT NULL DEFAULT 0,
    version DOUBLE PRECISION NOT NULL DEFAULT 0,
    UNIQUE (project, run_id)
  )`,
  `CREATE TABLE records (
    run_pk INTEGER NOT NULL, seq DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, payload BYTEA NOT NULL,
    PRIMARY KEY (run_pk, seq)
  )`,
  `CREATE TABLE metric_keys (
    run_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (run_pk, key_id), UNIQUE (run_pk, name)
  )`,
  `CREATE TABLE held (
    run_pk INTEGER NOT NULL, lo DOUBLE PRECISION NOT NULL, hi DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_pk, lo)
  )`,
  `CREATE TABLE history_chunks (
    run_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, chunk DOUBLE PRECISION NOT NULL,
    n INTEGER NOT NULL, first_step DOUBLE PRECISION NOT NULL, last_step DOUBLE PRECISION NOT NULL,
    blocks BYTEA NOT NULL, block_texts TEXT,
    steps BYTEA, seqs BYTEA, ts BYTEA, vals BYTEA NOT NULL, texts TEXT,
    PRIMARY KEY (run_pk, key_id, chunk)
  )`,
  `CREATE TABLE history_frames (
    run_pk INTEGER NOT NULL, chunk DOUBLE PRECISION NOT NULL, n INTEGER NOT NULL,
    steps BYTEA NOT NULL, seqs BYTEA NOT NULL, ts BYTEA NOT NULL,
    PRIMARY KEY (run_pk, chunk)
  )`,
  ...["blocks", "steps", "seqs", "ts", "vals"].map((c) => `ALTER TABLE history_chunks ALTER COLUMN ${c} SET STORAGE EXTERNAL`),
  ...["steps", "seqs", "ts"].map((c) => `ALTER TABLE history_frames ALTER COLUMN ${c} SET STORAGE EXTERNAL`),
  `CREATE TABLE api_keys (
    key_pk INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    projects TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
  )`,
  `CREATE UNIQUE INDEX api_keys_unrevoked_name ON api_keys (name) WHERE revoked_at IS NULL`,
  `CREATE TABLE sessions (hash TEXT PRIMARY KEY, key_id TEXT, expires_at DOUBLE PRECISION NOT NULL)`,
  `CREATE TABLE sign_in_tokens (hash TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)`
]

/** A deleted run's (project, run id), kept so that an upload of it is refused (410), never stored anew. */
const deletedRuns = [
  `CREATE TABLE deleted_runs (project TEXT NOT NULL, run_id TEXT NOT NULL, deleted_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (project, run_id))`
]

/**
 * A key chunk's version, counted up by every write of its row (chunks.ts): what tells a read that a
 * chunk it kept is as it was (StoreSql.chunkStamp, historyCache.ts).
 */
const chunkVersions = [`ALTER TABLE history_chunks ADD COLUMN version BIGINT NOT NULL DEFAULT 0`]

const statements = (list: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(list, (statement) => sql.unsafe(statement), { discard: true }))

/** The migrations, by `<id>_<name>`; a later change of layout is a new entry, never an edit of one. */
export const migrations = {
  "0001_layout": statements(layout),
  "0002_deleted_runs": statements(deletedRuns),
  "0003_chunk_versions": statements(chunkVersions)
}
