/**
 * Buffer actor: holds the records `log()` hands it in a bounded queue (`capacity` records, see
 * Pipeline.ts) and passes them to the Writer as one batch every `flushInterval`, or as soon as
 * `batchSize` records wait. `offer` is synchronous and O(1); when the queue is full it takes
 * nothing and returns false, and the caller writes synchronously instead (Pipeline.write): a full
 * buffer never drops a record, never grows, never throws. When idle, the actor waits without a
 * timer, so a forgotten `finish()` does not keep the process alive.
 */
import type * as Duration from "effect/Duration"
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

/** Builds a Buffer that hands its batches to `handOff` (false: the Writer is full, try later). */
export const make = (options: {
  readonly capacity: number
  readonly batchSize: number
  readonly flushInterval: Duration.DurationInput
  readonly handOff: (batch: ReadonlyArray<Record>) => boolean
}): Effect.Effect<Buffer> =>
  Effect.gen(function* () {
    const { capacity, batchSize, handOff } = options
    // A plain array, swapped out whole at each flush: `push` and the swap are O(1). (Effect's
    // MutableQueue was tried first: its pollUpTo prepends to a Chunk, 4 µs a record at 16k.)
    let queue: Array<Record> = []
    // `arrived` opens on the first record after a flush; `full` when a batch's worth is waiting.
    const arrived = yield* Effect.makeLatch(false)
    const full = yield* Effect.makeLatch(false)

    const takeAll = (): ReadonlyArray<Record> => {
      const taken = queue
      queue = []
      return taken
    }

    const flush = Effect.gen(function* () {
      yield* arrived.close
      yield* full.close
      yield* Effect.sync(() => {
        const batch = takeAll()
        if (batch.length > 0 && !handOff(batch)) {
          // The Writer's inbox is full: put the batch back (the queue was emptied in this same
          // synchronous step, so order holds) and try again next interval.
          queue = batch as Array<Record>
          arrived.unsafeOpen()
        }
      })
    })

    const loop = Effect.gen(function* () {
      for (;;) {
        yield* arrived.await
        yield* Effect.raceFirst(Effect.sleep(options.flushInterval), full.await)
        yield* flush
      }
    }) as Effect.Effect<never>

    return {
      offer: (record) => {
        if (queue.length >= capacity) return false
        const size = queue.push(record)
        if (size === 1) arrived.unsafeOpen()
        if (size === batchSize) full.unsafeOpen()
        return true
      },
      takeAll,
      loop
    }
  })
