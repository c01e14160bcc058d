/**
 * The console capture of a run (setting `console: "capture"`): while it lasts, every write to
 * `process.stdout` and `process.stderr` (console.log, console.error, direct writes) still goes to
 * the terminal unchanged, and its text is handed to the run, which records it as `output` records
 * in its own seq order. Writes that bypass those two streams (`fs.writeSync(1, …)`, a child
 * process's inherited output) are not seen.
 *
 * One capture a process: the first run that asks owns it until it ends; a run opened meanwhile
 * captures nothing. Ending restores each stream's own `write` (the property as it was found), so
 * nothing stays wrapped. When someone wrapped a stream on top of ours meanwhile, theirs stays in
 * place and ours, beneath it, only passes writes on.
 *
 * Records hold whole lines where they can: a write's complete lines are recorded at once, so they
 * take their seq before any row logged after the write; a line still open (no newline yet) waits
 * for the rest of it, for a write to the other stream, or `holdMs`, whichever comes first, so that
 * `write(".")` progress output makes one record, not one a dot. A record holds at most
 * MAX_RECORD_CHARS; longer text is split, at a newline when one is near.
 *
 * `run.log()` is untouched by all this: the capture costs a captured write a few µs (it decodes,
 * then hands a record to the Pipeline as log() does), and never throws into the caller's write.
 */
import { StringDecoder } from "node:string_decoder"
import { MAX_VALUE_BYTES } from "../schemas/Limits.js"

/** Which of the process's streams a text was written to. */
export type Stream = "stdout" | "stderr"

/** Takes captured text, in the order it was written; the run records it. */
export type OutputSink = (stream: Stream, text: string) => void

/**
 * The longest text one output record holds, in UTF-16 code units: at most MAX_VALUE_BYTES of UTF-8
 * (a unit is at most 3 bytes; a surrogate pair, two units, 4), the most the server takes.
 */
export const MAX_RECORD_CHARS = Math.floor(MAX_VALUE_BYTES / 3)

/** Set while some capture owns the process's streams. */
let owner: object | null = null

type Write = NodeJS.WriteStream["write"]

/** One captured stream: its original write, the bytes of a character cut across chunks, the open line. */
interface Captured {
  readonly name: Stream
  readonly stream: NodeJS.WriteStream
  readonly original: Write
  /** Whether `write` was the stream's own property (else it came from the prototype). */
  readonly ownWrite: boolean
  readonly wrapper: Write
  readonly decoder: StringDecoder
  /** True when the last chunk was bytes, which may have ended inside a character. */
  bytesLast: boolean
  /** Text after the last newline, not recorded yet. */
  open: string
}

/**
 * Starts capturing the process's stdout and stderr into `sink`; returns the function that ends
 * the capture (recording the open lines first), or null when another capture already owns them.
 */
export const capture = (sink: OutputSink, holdMs: number): (() => void) | null => {
  if (owner !== null) return null
  const token = {}
  owner = token
  let active = true
  let timer: NodeJS.Timeout | undefined
  // A write made while the sink runs (a warning printed from inside the Pipeline) is recorded
  // once the sink returns, never by re-entering it.
  let recording = false
  const later: Array<readonly [Captured, unknown, unknown]> = []

  const emit = (target: Captured, text: string): void => {
    for (const piece of pieces(text)) sink(target.name, piece)
  }

  const closeOpen = (target: Captured): void => {
    if (target.open === "") return
    const text = target.open
    target.open = ""
    emit(target, text)
  }

  const closeAllOpen = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    for (const target of streams) closeOpen(target)
  }

  const take = (target: Captured, chunk: unknown, encoding: unknown): void => {
    const text = decode(target, chunk, encoding)
    if (text === "") return
    // The other stream's open line was written first: recorded first.
    for (const other of streams) if (other !== target) closeOpen(other)
    const all = target.open === "" ? text : target.open + text
    const end = all.lastIndexOf("\n") + 1
    let rest = all.slice(end)
    if (end > 0) emit(target, end === all.length ? all : all.slice(0, end))
    if (rest.length >= MAX_RECORD_CHARS) {
      emit(target, rest)
      rest = ""
    }
    target.open = rest
    // The other stream's open line was closed above, so no text waits when `rest` is empty.
    if (rest === "") {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
    } else if (timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined
        guarded(closeAllOpen)
      }, holdMs)
      timer.unref()
    }
  }

  /** Runs `f` unless a sink call is already under way; never lets an error out. */
  const guarded = (f: () => void): void => {
    if (recording) return
    recording = true
    try {
      f()
      for (let next = later.shift(); next !== undefined; next = later.shift()) take(...next)
    } catch {
      // Capture is best effort: the user's write has gone to the terminal whatever happens here.
    } finally {
      later.length = 0
      recording = false
    }
  }

  const wrap = (name: Stream, stream: NodeJS.WriteStream): Captured => {
    const original = stream.write
    const target: Captured = {
      name,
      stream,
      original,
      ownWrite: Object.prototype.hasOwnProperty.call(stream, "write"),
      wrapper: function(this: unknown, ...args: Array<unknown>) {
        if (active) {
          if (recording) later.push([target, args[0], args[1]])
          else guarded(() => take(target, args[0], args[1]))
        }
        return Reflect.apply(original, this, args) as boolean
      } as Write,
      decoder: new StringDecoder("utf8"),
      bytesLast: false,
      open: ""
    }
    stream.write = target.wrapper
    return target
  }
  const streams: ReadonlyArray<Captured> = [wrap("stdout", process.stdout), wrap("stderr", process.stderr)]

  return () => {
    if (!active) return
    guarded(() => {
      for (const target of streams) {
        if (target.bytesLast) target.open += target.decoder.end()
      }
      closeAllOpen()
    })
    active = false
    for (const target of streams) {
      if (target.stream.write !== target.wrapper) continue
      if (target.ownWrite) target.stream.write = target.original
      else delete (target.stream as { write?: Write }).write
    }
    if (owner === token) owner = null
  }
}

/** The text of one write's chunk: strings as given (or as their encoding's bytes read as UTF-8), bytes decoded across chunks. */
const decode = (target: Captured, chunk: unknown, encoding: unknown): string => {
  if (typeof chunk === "string") {
    const pending = target.bytesLast ? target.decoder.end() : ""
    target.bytesLast = false
    if (typeof encoding !== "string" || /^utf-?8$/i.test(encoding) || !Buffer.isEncoding(encoding)) return pending + chunk
    return pending + target.decoder.write(Buffer.from(chunk, encoding)) + target.decoder.end()
  }
  if (chunk instanceof Uint8Array) {
    target.bytesLast = true
    return target.decoder.write(chunk)
  }
  return ""
}

/** `text` cut into pieces of at most MAX_RECORD_CHARS: after a newline in a piece's second half, else never inside a surrogate pair. */
const pieces = (text: string): ReadonlyArray<string> => {
  if (text.length <= MAX_RECORD_CHARS) return [text]
  const out: Array<string> = []
  let from = 0
  while (text.length - from > MAX_RECORD_CHARS) {
    let cut = from + MAX_RECORD_CHARS
    const newline = text.lastIndexOf("\n", cut - 1)
    if (newline >= from + MAX_RECORD_CHARS / 2) cut = newline + 1
    else if (isHighSurrogate(text.charCodeAt(cut - 1))) cut--
    out.push(text.slice(from, cut))
    from = cut
  }
  out.push(text.slice(from))
  return out
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff
