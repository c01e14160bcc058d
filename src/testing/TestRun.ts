/**
 * Runs for users' tests: a `Steplog` layer aimed at a test server, and the run's journal read back.
 *
 * Under @effect/vitest's `it.effect` the run's timers (the flush interval, actor restarts) follow
 * the `TestClock`, because `Steplog.layer` opens the run on the test's fiber: rows reach the journal
 * when the test adjusts the clock past `flushIntervalMs`, never by waiting. The upload itself (online
 * runs) happens in the service process on real time; `Steplog.finish()` waits for it.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as path from "node:path"
import { Steplog } from "../effect.js"
import { readJournal } from "../journal/JournalReader.js"
import type { InitError } from "../runtime/OpenRun.js"
import type { HistoryRecord, Record } from "../schemas/Record.js"
import type { InitOptions } from "../schemas/Settings.js"
import { SteplogTestServer, type TestServer } from "./TestServer.js"

/**
 * A `Steplog` layer whose run logs to `server` (`options` win: `mode: "offline"` keeps the run on
 * disk in the server's temp dir, for tests that look only at the journal).
 */
export const testRunLayer = (server: TestServer, options: InitOptions = {}): Layer.Layer<Steplog, InitError> =>
  Steplog.layer({ ...server.initOptions, ...options })

/** `testRunLayer` over the `SteplogTestServer` in context. */
export const testRunLayerFromContext = (options: InitOptions = {}): Layer.Layer<Steplog, InitError, SteplogTestServer> =>
  Layer.unwrapEffect(Effect.map(SteplogTestServer, (server) => testRunLayer(server, options)))

/**
 * Every record in a run directory's journal so far, in seq order (what the Writer has flushed).
 * Throws when the journal cannot be read or has a damaged frame: a test should not pass over one.
 * A torn tail is not damage here: it is a frame being appended while the test reads.
 */
export const journalRecords = (runDir: string): ReadonlyArray<Record> => {
  const scan = readJournal(path.join(runDir, "journal.slog"))
  if (Either.isLeft(scan)) throw scan.left
  const damage = scan.right.damage.find((d) => d.kind !== "torn-tail")
  if (damage !== undefined) throw new Error(`steplog/testing: the journal in ${runDir} is damaged at byte ${damage.offset} (${damage.kind}: ${damage.detail})`)
  return scan.right.records
}

/** The history rows of a run directory's journal so far, in seq order. */
export const journalHistory = (runDir: string): ReadonlyArray<HistoryRecord> =>
  journalRecords(runDir).filter((record): record is HistoryRecord => record.kind === "history")
