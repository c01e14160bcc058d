/**
 * Buffer actor: holds the records `log()` hands it in a bounded queue (`capacity` records, see
 * Pipeline.ts) and passes them to the Writer as one batch at each multiple of `flushInterval` on
 * the clock at which records wait, or as soon as `batchSize` records wait. `offer` is synchronous and O(1); when the queue is full it takes
 * nothing and returns false, and the caller writes synchronously instead (Pipeline.write): a full
 * buffer never drops a record, never grows, never throws. When idle, the actor waits without a
 * timer, so a forgotten `finish()` does not keep the process alive.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Record } from "../schemas/Record.js"

/** The Buffer's face to the rest of the pipeline. */
export interface Buffer {
  /** Queues a record; false (and nothing taken) when the queue is full. */
  readonly offer: (record: Record) => boolean
  /** Removes and returns every queued record, oldest first. */
  readonly takeAll: () => ReadonlyArray<Record>
  /** The actor's loop, to be run under a supervisor: one fiber only. */
  readonly loop: Effect.Effect<never>
}

/**
 * An empty queue already of the kind of array that holds objects. A `[]` starts as an array of
 * small integers, and each one swapped in at a flush gave `log()`'s optimised code an array of
 * another kind, which threw it back to the interpreter (V8's --trace-deopt: "wrong map"). A new
 * training process's first 125,000 rows cost ~115 ms of CPU, ~103 ms this way (offline, 10 runs
 * each); eight trainers of bench/concurrent.ts at once, 1.25 → 1.19 CPU-s per million rows.
 */
const emptyQueue = (): Array<Record> => {
  const queue: Array<Record | null> = [null]
  queue.pop()
  return queue as Array<Record>
}

/** Builds a Buffer that hands its batches to `handOff` (false: the Writer is full, try later). */
export const make = (options: {
  readonly capacity: number
  readonly batchSize: number
  readonly flushInterval: Duration.DurationInput
  readonly handOff: (batch: ReadonlyArray<Record>) => boolean
}): Effect.Effect<Buffer> =>
  Effect.gen(function* () {
    const { capacity, batchSize, handOff } = options
    const interval = Math.max(1, Duration.toMillis(options.flushInterval))
    // A plain array, swapped out whole at each flush: `push` and the swap are O(1). (Effect's
    // MutableQueue was tried first: its pollUpTo prepends to a Chunk, 4 µs a record at 16k.)
    let queue = emptyQueue()
    // `arrived` opens on the first record after a flush and starts the ticker's interval; `due`
    // opens when the interval is up or a batch's worth is waiting, and wakes the flusher.
    const arrived = yield* Effect.makeLatch(false)
    const due = yield* Effect.makeLatch(false)

    const takeAll = (): ReadonlyArray<Record> => {
      const taken = queue
      queue = emptyQueue()
      return taken
    }

    // Two fibers that only ever wait on latches, rather than a race of a sleep and a latch per
    // flush: forking the race's fibers cost ~100-370 µs a flush (bench/paced.ts), this ~30 µs.
    const ticker = Effect.gen(function* () {
      for (;;) {
        yield* arrived.await
        // Until the next multiple of the interval on the clock, not a whole interval from this
        // record: a record still waits at most one interval, but a row logged now and then waits
        // half of one on average, not all of it (bench/latency.ts: p50 101 → ~50 ms at 100 ms).
        const now = yield* Clock.currentTimeMillis
        yield* Effect.sleep(interval - (now % interval))
        // Closed before the flush, so that a record offered after it (size 1 again) reopens it.
        yield* arrived.close
        yield* due.open
      }
    })
    const flusher = Effect.gen(function* () {
      for (;;) {
        yield* due.await
        yield* due.close
        yield* Effect.sync(() => {
          const batch = takeAll()
          if (batch.length > 0 && !handOff(batch)) {
            // The Writer's inbox is full: put the batch back (the queue was emptied in this same
            // synchronous step, so order holds) and try again next interval.
            queue = batch as Array<Record>
            arrived.unsafeOpen()
          }
        })
      }
    })
    const loop = Effect.zip(ticker, flusher, { concurrent: true }) as Effect.Effect<never>

    return {
      offer: (record) => {
        if (queue.length >= capacity) return false
        const size = queue.push(record)
        if (size === 1) arrived.unsafeOpen()
        if (size === batchSize) due.unsafeOpen()
        return true
      },
      takeAll,
      loop
    }
  })
