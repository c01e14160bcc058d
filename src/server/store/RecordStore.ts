/**
 * Where the server keeps runs: the storage interface the HTTP layer talks to, whatever the
 * backend (SQLite by default, sqlite/; PostgreSQL for many replicas, postgres/). Every backend
 * passes the same contract suite (test/server/RecordStore.contract.ts).
 *
 * Guarantees every backend gives:
 * - `ingest` stores a batch in one transaction: all of it or none of it.
 * - an acknowledged batch is durable: committed and synced (SQLite: its WAL synced after the
 *   commit, sqlite/WalSync.ts; PostgreSQL: synchronous_commit=on) before `ingest` answers, so it
 *   survives a power cut.
 * - a huge batch does not hold other requests: it is stored in slices that yield to the event
 *   loop (still one transaction), and reads do not wait for it.
 * - each (run, seq) is stored once: a re-sent record changes nothing.
 * - a deleted run stays deleted: a write of it (a stale uploader's) is refused with RunGone.
 * - `ackSeq` is the length of the contiguous prefix held: every record with seq < ackSeq is stored.
 * - a run's config, summary, state and exit code follow its records (`config`, `summary`, `exit`).
 * - one metric of a run can be read in step order without reading the others.
 * - an answer is bounded whatever the run holds: `history` without `samples` answers at most
 *   HISTORY_PAGE_ROWS rows and where the next page starts, `output` at most `limit` lines and
 *   OUTPUT_PAGE_BYTES of text (src/schemas/Limits.ts).
 * - several server processes may share one store (PostgreSQL): ingests of one run are serialised
 *   by the store, whichever process takes them.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { RunId, UploadRecord } from "../../schemas/Record.js"
import type { RunQuery } from "../../schemas/RunQuery.js"
import type { Ack, DeletedRun, History, OutputLines, ProjectList, ProjectName, RunDetail, RunList, RunMetadata } from "../../schemas/Wire.js"

/** A cause and the causes it wraps (an SqlError wraps the driver's error), outermost first. */
const causeChain = (cause: unknown): Array<unknown> => {
  const chain: Array<unknown> = []
  for (let at = cause; at !== undefined && at !== null && chain.length < 8; at = (at as { readonly cause?: unknown }).cause) chain.push(at)
  return chain
}

/** How a full disk reads in each backend's errors: SQLite's code, PostgreSQL's SQLSTATE disk_full, Node's. */
const FULL_CODES: ReadonlySet<unknown> = new Set(["SQLITE_FULL", "53100", "ENOSPC"])

/** The backend failed (I/O, a full disk, a constraint it should not have met); the request changed nothing. */
export class StoreFailed extends Data.TaggedError("StoreFailed")<{ readonly operation: string; readonly cause: unknown }> {
  /** The store's disk is full: a write may succeed once space is freed, so the client should retry. */
  get full(): boolean {
    return causeChain(this.cause).some((cause) => FULL_CODES.has((cause as { readonly code?: unknown }).code))
  }

  /** One line: each cause's message, outermost first (no stack), and the innermost's code. */
  override get message(): string {
    const chain = causeChain(this.cause)
    const said = chain.map((cause) => (cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)))
    const code = (chain.at(-1) as { readonly code?: unknown } | undefined)?.code
    return `steplog server: storage failed during ${this.operation}: ${said.join(": ")}${typeof code === "string" ? ` (${code})` : ""}`
  }
}

/**
 * A batch would take its run past a limit of src/schemas/Limits.ts (the keys a run may have): it
 * is refused whole, and the store changed nothing.
 */
export class BatchOverLimit extends Data.TaggedError("BatchOverLimit")<{ readonly detail: string }> {
  override get message(): string {
    return `steplog server: the batch was refused: ${this.detail}`
  }
}

/** The run was deleted: nothing more of it is stored, and its id is not given out again. */
export class RunGone extends Data.TaggedError("RunGone")<{ readonly project: string; readonly runId: string }> {
  override get message(): string {
    return `the run "${this.runId}" of project "${this.project}" was deleted`
  }
}

/**
 * What `history` reads: some keys (default all), the steps from `minStep` to `maxStep` (inclusive;
 * default all) and, optionally, at most `samples` buckets of the steps in that range.
 */
export interface HistoryQuery {
  readonly keys?: ReadonlyArray<string>
  readonly samples?: number
  readonly minStep?: number
  readonly maxStep?: number
}

/**
 * What `output` reads: the console lines with seq > `after` (-1: from the start), at most `limit`
 * and at most OUTPUT_PAGE_BYTES of text (but always one line, when there is one).
 */
export interface OutputQuery {
  readonly after: number
  readonly limit: number
}

/** The server's storage. */
export class RecordStore extends Context.Tag("steplog/server/RecordStore")<
  RecordStore,
  {
    /**
     * Stores a batch of one run's records (creating the run if new); answers how far the run is
     * held. A history block stands for its rows: of a block partly held already, the rest is stored.
     */
    readonly ingest: (project: ProjectName, runId: RunId, records: ReadonlyArray<UploadRecord>) => Effect.Effect<Ack, StoreFailed | BatchOverLimit | RunGone>
    /** Creates or updates a run's metadata; `crashed: true` marks a run that ended without an exit record. */
    readonly putRun: (project: ProjectName, runId: RunId, metadata: RunMetadata) => Effect.Effect<RunDetail, StoreFailed | RunGone>
    /**
     * Deletes a run and everything of it, in one transaction; its id stays refused (RunGone) to any
     * later write. None when no such run was ever stored; RunGone when it was deleted already.
     */
    readonly deleteRun: (project: ProjectName, runId: RunId) => Effect.Effect<Option.Option<DeletedRun>, StoreFailed | RunGone>
    readonly getRun: (project: ProjectName, runId: RunId) => Effect.Effect<Option.Option<RunDetail>, StoreFailed>
    /** A page of a project's runs, as `query` asks; `next` is the cursor of the page after it, when there is one. */
    readonly listRuns: (project: ProjectName, query: RunQuery) => Effect.Effect<RunList, StoreFailed>
    readonly listProjects: Effect.Effect<ProjectList, StoreFailed>
    /**
     * A run's history in step order; none when the run does not exist. Without `samples`, one page
     * of at most HISTORY_PAGE_ROWS rows; `next` is the `minStep` of the next page (null: no more).
     */
    readonly history: (
      project: ProjectName,
      runId: RunId,
      query: HistoryQuery
    ) => Effect.Effect<Option.Option<History>, StoreFailed>
    /** A run's console output in seq order; none when the run does not exist. */
    readonly output: (project: ProjectName, runId: RunId, query: OutputQuery) => Effect.Effect<Option.Option<OutputLines>, StoreFailed>
    /** Succeeds when the store answers a read now (what `/readyz` asks; migrations ran when the store opened). */
    readonly reachable: Effect.Effect<void, StoreFailed>
  }
>() {}
