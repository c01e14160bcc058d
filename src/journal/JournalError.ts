/** Failures of the journal itself (not damage found inside one: that is reported, not raised). */
import * as Data from "effect/Data"

/** The file is not a steplog journal this version can read, or cannot be opened. */
export class JournalUnreadable extends Data.TaggedError("JournalUnreadable")<{
  readonly path: string
  readonly reason: "missing" | "not-a-journal" | "unsupported-version" | "io"
  readonly detail: string
}> {
  override get message(): string {
    return `steplog: cannot read journal ${this.path}: ${this.detail}`
  }
}

/** Appending to the journal failed (disk full, I/O error); nothing after `offset` counts as written. */
export class JournalWriteFailed extends Data.TaggedError("JournalWriteFailed")<{
  readonly path: string
  readonly offset: number
  readonly cause: unknown
}> {
  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `steplog: writing the journal ${this.path} at byte ${this.offset} failed: ${reason}`
  }
}
