/**
 * Request bodies read under a cap. The body is counted as it streams in and reading stops at the
 * first byte past the cap; a gzip body is inflated as it arrives, with a running count of the
 * inflated bytes, and inflation is aborted at the first byte past its cap, so neither a large body
 * nor a gzip bomb is ever held whole in memory.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as zlib from "node:zlib"

/** Why a body was not read: too large (sent or inflated), or not valid gzip. */
export class BodyRefused extends Data.TaggedError("BodyRefused")<{
  readonly reason: "too-large" | "inflates-too-large" | "bad-gzip"
  readonly detail: string
}> {}

const mib = (bytes: number) => `${bytes / (1024 * 1024)} MiB`

/**
 * The body of `chunks`, inflated when `gzip`; fails when more than `maxBytes` arrive or, inflated,
 * the body passes `maxInflated`. Memory stays within the caps plus one chunk.
 */
export const readBody = <E>(
  chunks: Stream.Stream<Uint8Array, E>,
  options: { readonly gzip: boolean; readonly maxBytes: number; readonly maxInflated: number }
): Effect.Effect<Uint8Array, BodyRefused | E> =>
  Effect.suspend(() => {
    const tooLarge = () => new BodyRefused({ reason: "too-large", detail: `the request body is over ${mib(options.maxBytes)}` })
    let received = 0
    const counted = Stream.mapEffect(chunks, (chunk) => {
      received += chunk.length
      return received > options.maxBytes ? Effect.fail(tooLarge()) : Effect.succeed(chunk)
    })
    if (!options.gzip) {
      return Stream.runFold(counted, [] as Array<Uint8Array>, (parts, chunk) => (parts.push(chunk), parts)).pipe(
        Effect.map((parts) => Buffer.concat(parts))
      )
    }
    return Effect.acquireUseRelease(
      Effect.sync(() => inflater(options.maxInflated)),
      (inflate) => Effect.zipRight(Stream.runForEach(counted, inflate.write), inflate.end),
      (inflate) => Effect.sync(inflate.destroy)
    )
  })

/** A gunzip stream fed chunk by chunk, counting what it puts out and stopping past `max`. */
const inflater = (max: number) => {
  // Output in 256 KiB pieces, not zlib's 16 KiB: each piece is a round trip between the thread
  // pool and the event loop, sixty-odd of them for a 1 MiB batch at the default.
  const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 })
  const parts: Array<Buffer> = []
  let inflated = 0
  let ended = false
  let failure: BodyRefused | null = null
  // The one write or end waiting on zlib (one fiber feeds it). Woken by zlib's callback, or by an
  // error or close, since zlib does not call back a write it failed on.
  let waiting: (() => void) | null = null
  const wake = () => {
    const resume = waiting
    waiting = null
    resume?.()
  }
  const badGzip = (error: Error) => {
    failure ??= new BodyRefused({ reason: "bad-gzip", detail: `the body is not valid gzip: ${error.message}` })
  }
  gunzip.on("data", (part: Buffer) => {
    inflated += part.length
    if (inflated > max) {
      failure ??= new BodyRefused({ reason: "inflates-too-large", detail: `the request body inflates to over ${mib(max)}` })
      parts.length = 0
      gunzip.destroy()
    } else {
      parts.push(part)
    }
  })
  gunzip.on("error", (error) => {
    badGzip(error)
    wake()
  })
  gunzip.on("end", () => {
    ended = true
    wake()
  })
  gunzip.on("close", () => {
    if (!ended) failure ??= new BodyRefused({ reason: "bad-gzip", detail: "the gzip stream ended early" })
    wake()
  })
  const settled = (): Effect.Effect<void, BodyRefused> => (failure === null ? Effect.void : Effect.fail(failure))
  const wait = (start: () => void) =>
    Effect.async<void, BodyRefused>((resume) => {
      if (failure !== null) return resume(Effect.fail(failure))
      waiting = () => resume(Effect.suspend(settled))
      start()
    })

  return {
    /** Resumes once zlib has taken the chunk (its output counted), so input is never queued up. */
    write: (chunk: Uint8Array): Effect.Effect<void, BodyRefused> =>
      wait(() =>
        gunzip.write(chunk, (error) => {
          if (error) badGzip(error)
          wake()
        })
      ),
    end: Effect.suspend(() => (ended ? settled() : wait(() => gunzip.end()))).pipe(
      Effect.flatMap(() => (ended ? Effect.succeed(Buffer.concat(parts)) : Effect.fail(new BodyRefused({ reason: "bad-gzip", detail: "the gzip stream ended early" }))))
    ),
    destroy: () => {
      gunzip.destroy()
    }
  }
}
