/**
 * The three services of a store (RecordStore, KeyStore, Sessions) over one StoreSql: what each
 * backend's layer ends with, once its database is open and migrated.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { KeyStore } from "../KeyStore.js"
import { RecordStore } from "../RecordStore.js"
import { Sessions } from "../SessionStore.js"
import * as HistoryCache from "./historyCache.js"
import { makeIngest } from "./ingest.js"
import { makeKeys } from "./keys.js"
import * as Reads from "./reads.js"
import * as Runs from "./runs.js"
import { makeSessions } from "./sessions.js"
import { failed, type StoreSql } from "./sql.js"

/** Every service a server needs of its store. */
export type Stores = RecordStore | KeyStore | Sessions

/** The services over `sql`. */
export const makeStores = (sql: StoreSql): Effect.Effect<Context.Context<Stores>> =>
  Effect.gen(function* () {
    const { ingest, rewritingRun } = yield* makeIngest(sql)
    const cache = HistoryCache.make(sql.chunkStamp, sql.blobsInProcess)
    const records = RecordStore.of({
      ingest,
      putRun: (project, runId, metadata) =>
        rewritingRun(project, runId, sql.writeTransaction(Runs.putRun(sql, project, runId, metadata))).pipe(
          Effect.zipLeft(sql.synced),
          Effect.mapError(failed("putRun"))
        ),
      deleteRun: (project, runId) =>
        rewritingRun(project, runId, sql.writeTransaction(Runs.deleteRun(sql, project, runId))).pipe(
          Effect.zipLeft(sql.synced),
          Effect.mapError(failed("deleteRun"))
        ),
      getRun: (project, runId) => Runs.getDetail(sql.read, project, runId).pipe(sql.readTransaction, Effect.mapError(failed("getRun"))),
      listRuns: (project, query) => Runs.listRuns(sql.read, project, query).pipe(sql.readTransaction, Effect.mapError(failed("listRuns"))),
      listProjects: Runs.listProjects(sql.read).pipe(Effect.mapError(failed("listProjects"))),
      history: (project, runId, query) => Reads.history(sql, cache, project, runId, query).pipe(Effect.mapError(failed("history"))),
      output: (project, runId, query) => Reads.output(sql, project, runId, query).pipe(Effect.mapError(failed("output"))),
      reachable: sql.read("SELECT 1").pipe(Effect.asVoid, Effect.mapError(failed("a readiness check")))
    })
    return Context.make(RecordStore, records).pipe(Context.add(KeyStore, makeKeys(sql)), Context.add(Sessions, makeSessions(sql)))
  })
