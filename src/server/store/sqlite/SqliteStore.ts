/**
 * The SQLite store (the server's embedded default): RecordStore, KeyStore and Sessions in one file,
 * through @effect/sql over better-sqlite3, WAL. Two connections: the writer (every write, one
 * transaction at a time) and a read-only reader, so that a read (a history page, /whoami's key)
 * reads the last commit while an ingest writes instead of queueing behind it (bench/read-wait.ts).
 * An in-memory database has one connection for both (a second would open another database).
 *
 * Durability: a write is answered once its commit is on disk, so an acknowledged batch survives an
 * OS crash or power cut. In a file the writer commits with synchronous=NORMAL and the WAL is synced
 * off the event loop before the answer (WalSync.ts: one sync for every commit before it); over a
 * client of the caller's (layerFromClient) SQLite syncs each commit itself (synchronous=FULL).
 * bench/store-ingest.ts measures what it costs.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { makeStores, type Stores } from "../internal/stores.js"
import { inTurn, type StoreSql, transactionOf } from "../internal/sql.js"
import { StoreFailed } from "../RecordStore.js"
import type { StoreLayoutUnsupported } from "../StoreLayout.js"
import * as Migrations from "./Migrations.js"
import * as WalSync from "./WalSync.js"

/** Where and how durably. */
export interface SqliteOptions {
  /** The database file (":memory:" for a database gone with the layer). */
  readonly filename: string
  /** True (the default): a write is answered once its commit is on disk. False only to measure what that costs (bench/store-ingest.ts). */
  readonly synced?: boolean
}

const statementsOf = (writer: SqlClient.SqlClient, reader: SqlClient.SqlClient, synced: WalSync.Synced): StoreSql => ({
  write: (text, params = []) => writer.unsafe(text, params),
  writeAll: inTurn((text, params = []) => writer.unsafe(text, params)),
  read: (text, params = []) => reader.unsafe(text, params),
  writeTransaction: transactionOf(writer),
  concurrentWrites: 1,
  synced,
  readTransaction: reader.withTransaction,
  lockRow: "",
  chunkStamp: "CAST(h.version AS TEXT)",
  blobsInProcess: true
})

/** Sets the writer's durability and checkpoints, and migrates its database. */
const prepare = (writer: SqlClient.SqlClient, synchronous: "FULL" | "NORMAL") =>
  Effect.gen(function* () {
    yield* writer.unsafe(`PRAGMA synchronous = ${synchronous}`)
    // Checkpoints every 10,000 WAL pages (~40 MiB), not SQLite's 1,000: a chunk rewritten by batch
    // after batch (the last one of each key) reaches the database file once per checkpoint, not ten
    // times. A million ten-double rows ingested as 10,000-row blocks into a file (as the second loop
    // of bench/history-read.ts does): ~1.8 → ~1.6 CPU-s (both measured).
    yield* writer.unsafe(`PRAGMA wal_autocheckpoint = 10000`)
  }).pipe(
    Effect.mapError((cause) => new StoreFailed({ operation: "set up the database", cause })),
    Effect.zipRight(Effect.provideService(Migrations.run, SqlClient.SqlClient, writer))
  )

/** The store over the SqlClient of the surrounding layer, as writer and reader alike (tests reach its tables through that client). */
export const layerFromClient: Layer.Layer<Stores, StoreFailed | StoreLayoutUnsupported, SqlClient.SqlClient> = Layer.effectContext(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* prepare(sql, "FULL")
    return yield* makeStores(statementsOf(sql, sql, Effect.void))
  })
)

/** The store in a SQLite file (WAL), created and migrated if need be; its directory must exist. */
export const layer = (options: SqliteOptions): Layer.Layer<Stores, StoreFailed | StoreLayoutUnsupported> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const open = (readonly: boolean) =>
        SqliteClient.make({ filename: options.filename, readonly }).pipe(
          Effect.catchAllDefect((cause) => Effect.fail(new StoreFailed({ operation: `open ${options.filename}`, cause })))
        )
      const writer = yield* open(false)
      yield* prepare(writer, "NORMAL")
      const inMemory = options.filename === ":memory:"
      // Opened once the writer has made the file and put it in WAL mode.
      const reader = inMemory ? writer : yield* open(true)
      const synced = inMemory || options.synced === false
        ? Effect.void
        : yield* WalSync.make(options.filename).pipe(Effect.mapError((cause) => new StoreFailed({ operation: `open ${options.filename}`, cause })))
      return yield* makeStores(statementsOf(writer, reader, synced))
    })
  ).pipe(Layer.provide(Reactivity.layer))

/** The store in an in-memory SQLite database, gone with the layer: for tests and `steplog/testing`. */
export const layerMemory: Layer.Layer<Stores, StoreFailed | StoreLayoutUnsupported> = layer({ filename: ":memory:" })
