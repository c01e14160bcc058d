/**
 * The in-process data path of one run, wired in one place:
 *
 *   Run.log ──offer──▶ Buffer (≤ bufferSize records) ──batch──▶ Writer (≤ 4 batches) ──▶ journal.slog
 *
 * `write` is the only entrance. It never blocks or throws: when the Buffer is full it writes the
 * pending records synchronously itself, oldest first; with durability "sync" every record is
 * written before `write` returns. A disk that refuses writes costs memory up to `maxUnwrittenMb`,
 * then the newest records (Writer.ts); `status` says how many. Both actors are supervised and
 * restart on a defect.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Buffer from "../actors/Buffer.js"
import { supervise } from "../actors/Supervisor.js"
import * as Writer from "../actors/Writer.js"
import type { JournalWriter } from "../journal/JournalWriter.js"
import type { Record } from "../schemas/Record.js"
import type { Settings } from "../schemas/Settings.js"

/** Batches the Writer's inbox holds; with the Buffer's capacity, this bounds a run's memory. */
const WRITER_INBOX_BATCHES = 4

/** The data path's face to the run. */
export interface Pipeline {
  /** Hands on one record; synchronous and O(1) unless the Buffer is full. */
  readonly write: (record: Record) => void
  /** Writes every queued record now, synchronously, and closes the journal; idempotent. */
  readonly close: () => void
  /** Bytes of whole frames in the journal. */
  readonly flushedOffset: () => number
  /** Records handed on that will never reach the journal, and why. */
  readonly status: () => Writer.WriteStatus
}

/**
 * Starts the Buffer and Writer actors in the current scope. Closing the scope stops them and
 * then drains: every record handed to `write` is in the journal when the scope has closed.
 */
export const make = (options: {
  readonly journal: JournalWriter
  readonly settings: Pick<Settings, "bufferSize" | "batchSize" | "flushIntervalMs" | "durability" | "maxUnwrittenMb">
  readonly report: (message: string) => void
  /** Hears the journal offset after each flush that moved it (online runs tell their service). */
  readonly onFlushed?: (offset: number) => void
  /** Restart delays for the actors; the default is `restartSchedule`. */
  readonly restartSchedule?: Schedule.Schedule<unknown, unknown>
}): Effect.Effect<Pipeline, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { journal, settings, report } = options
    const writer = yield* Writer.make({
      journal,
      inboxCapacity: WRITER_INBOX_BATCHES,
      durability: settings.durability,
      maxHeldBytes: settings.maxUnwrittenMb * 2 ** 20,
      report,
      ...(options.onFlushed === undefined ? {} : { onFlushed: options.onFlushed })
    })
    const buffer = yield* Buffer.make({
      capacity: settings.bufferSize,
      batchSize: Math.min(settings.batchSize, settings.bufferSize),
      flushInterval: Duration.millis(settings.flushIntervalMs),
      handOff: writer.submit
    })

    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      writer.close(buffer.takeAll())
    }

    // Added before the actors are forked, so it runs after they have been interrupted.
    yield* Effect.addFinalizer(() => Effect.sync(close))
    const restart = options.restartSchedule === undefined ? { report } : { report, schedule: options.restartSchedule }
    yield* supervise("the journal Writer", writer.loop, restart)
    yield* supervise("the Buffer", buffer.loop, restart)

    const write: (record: Record) => void =
      settings.durability === "sync"
        ? (record) => writer.writeNow([record])
        : (record) => {
          if (!buffer.offer(record)) writer.writeNow([...buffer.takeAll(), record])
        }

    return { write, close, flushedOffset: writer.flushedOffset, status: writer.status }
  })
