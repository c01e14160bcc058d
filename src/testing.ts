/**
 * steplog/testing: what a user needs to test their own training code's logging.
 *
 *   const server = await startTestServer()          // 127.0.0.1, a free port, in memory, a fresh key
 *   const run = await init({ ...server.initOptions, project: "p" })
 *   run.log({ loss: 0.5 })
 *   await run.finish()                               // { uploaded: true, records: … }
 *   (await server.history("p", run.id)).rows         // what the server holds, row for row
 *   await server.close()                             // stops it, removes its temp dirs
 *
 * For Effect programs under @effect/vitest: `SteplogTestServer.layer`, and `testRunLayer(server)`
 * (a `Steplog.layer` aimed at it) whose timers follow the `TestClock` inside `it.effect`.
 */
export { startTestServer, SteplogTestServer, type TestServer } from "./testing/TestServer.js"
export { testRunLayer, testRunLayerFromContext, journalRecords, journalHistory } from "./testing/TestRun.js"
export type { HistoryQuery } from "./server/store/RecordStore.js"
export type { History, HistoryRow, RunDetail, RunList, RunState } from "./schemas/Wire.js"
export type { Record as JournalRecord, HistoryRecord } from "./schemas/Record.js"
