/**
 * `RecordStore.ingest`, shared by both backends: a batch in one write transaction, each (run, seq)
 * once, ackSeq from the held seq ranges, the run's row updated in the same transaction.
 *
 *   held     (run_pk, lo) → hi: the seqs a run holds, as disjoint, non-adjacent ranges (one row for
 *            a run uploaded in order): what makes a re-sent record a no-op, and where ackSeq comes from
 *   records  (run_pk, seq) → kind, msgpack payload of every record but history rows (run, config,
 *            summary, output, stats, exit): config and summary are folded from them, and console
 *            output is read from them
 *
 * Why chunks and not a row per (run, key, step): a 1,000-row batch of ten doubles cost ~35 ms as
 * 10,000 metric rows plus block upserts plus 1,000 msgpack record rows (45 ms median, 18,500
 * rows/s); as ~20 chunk rows it costs 6.9 ms median, 112,000 rows/s (bench/history-read.ts).
 *
 * A huge batch is cut into slices of about SLICE_COST (slices.ts), each stored in turn in the one
 * transaction, with a turn of the event loop between them: a 550,000-row batch no longer holds
 * every other request for its whole ingest (bench/read-wait.ts), and is still all or nothing.
 *
 * Between batches this process keeps each run's row and history state in memory (`Cached`), so an
 * in-order batch of history is two statements: the run row read (locked on PostgreSQL), then its
 * writes (held range, records, keys, frames, chunks) with the run row's update (StoreSql.writeAll:
 * on PostgreSQL one round trip, where a batch of the paced bench took five, and BEGIN and COMMIT
 * two more). The run row's `version` counts its writes: a cached entry is used only when the row
 * still has the version it left, so a batch another server process stored in between
 * (PostgreSQL replicas) or a putRun makes this one read the state afresh. An ingest that does not
 * commit drops its run's entry. Ingests of one run take turns in a process (`lockOf`), and those
 * of different runs as the database allows (`StoreSql.concurrentWrites`: one at a time on SQLite,
 * side by side on PostgreSQL, where each waited on the last one's round trips and commit before);
 * each is answered once its commit is on disk (`synced`).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { HistoryBlock, HistoryRecord, Record, RunId, RunRecord, UploadRecord } from "../../../schemas/Record.js"
import { floats, joinBlocks, lastSeq, sliceBlock } from "../../../schemas/UploadRecords.js"
import type { Ack, ProjectName } from "../../../schemas/Wire.js"
import { type BatchOverLimit, type RunGone, StoreFailed } from "../RecordStore.js"
import { type HistoryState, ingestHistory, loadHistoryState } from "./chunks.js"
import { ensureRun, findRun, recomputeConfig, recomputeSummary } from "./runs.js"
import { pack, packLast, type RunRow, unpackLast } from "./runRow.js"
import { type SeqRange, SeqRanges } from "./seqRanges.js"
import { slices } from "./slices.js"
import { failed, inserts, type Statement, type StoreSql } from "./sql.js"

/** What ingest keeps of a run between batches: its row as the last ingest left it, its history state, and the seqs it holds. */
interface Cached {
  row: RunRow
  readonly history: HistoryState
  /**
   * Every range the run holds: a run uploaded in order holds one, which each batch extends with
   * one UPDATE (on PostgreSQL a round trip each: read, delete and insert were three).
   */
  readonly held: SeqRanges
}

/** Locks the runs' writes are spread over: two runs share one (and take turns) with odds 1 in LOCK_STRIPES. */
const LOCK_STRIPES = 64

/** Runs whose ingest state is kept; the least recently ingested is dropped beyond it. */
const CACHED_RUNS = 64

/** A turn of the event loop (setImmediate: after pending I/O), so that other requests are served. */
const yieldToEventLoop = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** The ingest of one store: `(project, runId, records) → Ack`, as RecordStore.ingest. */
export const makeIngest = (sql: StoreSql) =>
  Effect.gen(function* () {
    const cache = new Map<string, Cached>()
    const cacheKey = (project: string, runId: string) => `${project}\u0000${runId}`
    // A run's writes take turns on its lock (striped: the same one for a run always, with none to
    // make or drop per run), then on one of the database's write slots.
    const locks = yield* Effect.forEach(Array.from({ length: LOCK_STRIPES }), () => Effect.makeSemaphore(1))
    const slots = yield* Effect.makeSemaphore(sql.concurrentWrites)
    const lockOf = (project: string, runId: string) => {
      const key = cacheKey(project, runId)
      let hash = 0
      for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0
      const lock = locks[Math.abs(hash) % LOCK_STRIPES]!
      return <A, E, R>(effect: Effect.Effect<A, E, R>) => lock.withPermits(1)(slots.withPermits(1)(effect))
    }

    /** The run's row, locked, and its cached state when that is still what the store holds. */
    const load = (project: string, runId: string) =>
      Effect.gen(function* () {
        const found = yield* findRun(sql.write, project, runId, sql.lockRow)
        const row = Option.isSome(found) ? found.value : yield* ensureRun(sql, project, runId)
        const key = cacheKey(project, runId)
        const hit = cache.get(key)
        cache.delete(key) // re-inserted after the ingest commits: most recently used last
        if (hit !== undefined && hit.row.run_pk === row.run_pk && hit.row.version === row.version) return hit
        const held = (yield* sql.write(`SELECT lo, hi FROM held WHERE run_pk = ? ORDER BY lo`, [row.run_pk])).map(
          (range): SeqRange => [range.lo as number, range.hi as number]
        )
        return { row, history: yield* loadHistoryState(sql.write, row.run_pk), held: new SeqRanges(held) } satisfies Cached
      })

    /** Stores one slice of a batch; `entry.row` becomes the run's row after it. */
    const ingestSlice = (project: ProjectName, runId: RunId, batch: ReadonlyArray<UploadRecord>, entry: Cached) =>
      Effect.gen(function* () {
        const runRow = entry.row
        const runPk = runRow.run_pk
        // Exactly once: drop what is held already and repeats within the batch (first one wins); of
        // a block, only the rows not held are kept, as row ranges of it.
        let lo = Infinity
        let hi = -Infinity
        for (const record of batch) (lo = Math.min(lo, record.seq), (hi = Math.max(hi, lastSeq(record))))
        const held = entry.held
        // The held ranges that overlap or touch the batch's span, before and after it is taken.
        const touching = () => held.ranges.filter(([l, h]) => l <= hi + 1 && h >= lo - 1)
        const read = touching()
        const fresh: Array<Record> = []
        const fromBlocks: Array<HistoryBlock> = []
        let freshCount = 0
        for (const record of batch) {
          if (record.kind !== "historyBlock") {
            if (held.take(record.seq, record.seq).length > 0) (fresh.push(record), freshCount++)
            continue
          }
          for (const [l, h] of held.take(record.seq, lastSeq(record))) {
            fromBlocks.push(sliceBlock(record, l - record.seq, h - record.seq + 1))
            freshCount += h - l + 1
          }
        }
        if (freshCount === 0) return
        // The fresh rows of blocks, as few blocks as they make in a row: one piece a key a chunk.
        const blocks = joinBlocks(fromBlocks)

        // The slice's writes, sent together with the run row's update at its end (StoreSql.writeAll).
        const writes: Array<Statement> = []
        const merged = touching()
        if (read.length === 1 && merged.length === 1 && read[0]![0] === merged[0]![0]) {
          writes.push({ text: `UPDATE held SET hi = ? WHERE run_pk = ? AND lo = ?`, params: [merged[0]![1], runPk, merged[0]![0]] })
        } else {
          // At once: the inserted ranges may start where the deleted ones did, which one statement could not do.
          if (read.length > 0) {
            yield* sql.write(`DELETE FROM held WHERE run_pk = ? AND lo IN (${read.map(() => "?").join(",")})`, [runPk, ...read.map(([l]) => l)])
          }
          writes.push(...inserts("held", ["run_pk", "lo", "hi"], merged.map(([l, h]) => [runPk, l, h])))
        }
        // ackSeq: the end of the held range holding the current ack (which, not held before, is
        // held now only if this batch brought it, so its range is among the merged ones).
        const acked = merged.find(([l, h]) => l <= runRow.ack_seq && runRow.ack_seq <= h)
        const ackSeq = acked === undefined ? runRow.ack_seq : acked[1] + 1

        const kept = fresh.filter((record) => record.kind !== "history")
        writes.push(...inserts("records", ["run_pk", "seq", "kind", "payload"], kept.map((record) => [runPk, record.seq, record.kind, pack(record)])))

        let updatedAt = runRow.updated_at ?? -Infinity
        let blockRows = 0
        for (const block of blocks) {
          const ts = floats(block.ts)
          for (let i = 0; i < block.rows; i++) updatedAt = Math.max(updatedAt, ts[i]!)
          blockRows += block.rows
        }
        let runRecord: RunRecord | undefined
        let exitSeq = runRow.exit_seq
        let exitCode = runRow.exit_code
        let configChanged = false
        let summaryChanged = false
        const history: Array<HistoryRecord> = []
        for (const record of fresh) {
          updatedAt = Math.max(updatedAt, record.ts)
          switch (record.kind) {
            case "history":
              history.push(record)
              break
            case "run":
              if (record.runId !== runId || record.project !== project) {
                return yield* new StoreFailed({
                  operation: "ingest",
                  cause: `run record ${record.seq} names ${record.project}/${record.runId}, not ${project}/${runId}`
                })
              }
              configChanged = true
              if ((runRow.run_seq ?? -1) < record.seq && (runRecord === undefined || runRecord.seq < record.seq)) runRecord = record
              break
            case "config":
              configChanged = true
              break
            case "summary":
              summaryChanged = true
              break
            case "exit":
              if (exitSeq === null || exitSeq < record.seq) (exitSeq = record.seq, (exitCode = record.exitCode))
              break
          }
        }

        const historyRows = history.length + blockRows
        const lastValues = unpackLast(runRow.last_values)
        if (historyRows > 0) writes.push(...yield* ingestHistory(sql.write, runPk, history, blocks, lastValues, entry.history))
        // Config and summary are folded from the records, this slice's included: those are written first.
        if (configChanged || summaryChanged) yield* sql.writeAll(writes.splice(0))
        const config = configChanged ? yield* recomputeConfig(sql.write, runPk, runRow.meta_config) : runRow.config
        const summary = summaryChanged ? yield* recomputeSummary(sql.write, runPk) : runRow.summary

        const r = runRecord
        writes.push({
          text: `UPDATE runs SET ack_seq = ?, records = records + ?, history_rows = history_rows + ?, updated_at = ?,
             exit_seq = ?, exit_code = ?, config = ?, summary = ?, last_values = ?,
             run_seq = COALESCE(?, run_seq), name = COALESCE(?, name), tags = COALESCE(?, tags),
             notes = CASE WHEN ? = 1 THEN ? ELSE notes END, grp = CASE WHEN ? = 1 THEN ? ELSE grp END,
             job_type = CASE WHEN ? = 1 THEN ? ELSE job_type END, host = COALESCE(?, host),
             started_at = CASE WHEN ? = 1 AND (started_at IS NULL OR ? = 0) THEN ? ELSE started_at END,
             version = version + 1
           WHERE run_pk = ? RETURNING *`,
          params: [
            ackSeq, freshCount, historyRows, updatedAt, exitSeq, exitCode, config, summary,
            historyRows > 0 ? packLast(lastValues) : runRow.last_values,
            r?.seq ?? null, r?.name ?? null, r === undefined ? null : pack(r.tags),
            r !== undefined ? 1 : 0, r?.notes ?? null,
            r !== undefined ? 1 : 0, r?.group ?? null,
            r !== undefined ? 1 : 0, r?.jobType ?? null,
            r?.host ?? null,
            r !== undefined ? 1 : 0, r?.resumed === true ? 1 : 0, r?.ts ?? null,
            runPk
          ]
        })
        const [updated] = yield* sql.writeAll(writes)
        entry.row = updated as RunRow
      })

    const ingest = (project: ProjectName, runId: RunId, records: ReadonlyArray<UploadRecord>): Effect.Effect<Ack, StoreFailed | BatchOverLimit | RunGone> =>
      Effect.suspend(() => {
        let entry: Cached | undefined
        const parts = slices(records)
        return sql.writeTransaction(
          Effect.gen(function* () {
            entry = yield* load(project, runId)
            for (let i = 0; i < parts.length; i++) {
              if (i > 0) yield* yieldToEventLoop
              yield* ingestSlice(project, runId, parts[i]!, entry)
            }
            return { ackSeq: entry.row.ack_seq }
          })
        ).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (exit._tag !== "Success" || entry === undefined) return
              cache.set(cacheKey(project, runId), entry)
              if (cache.size > CACHED_RUNS) cache.delete(cache.keys().next().value!)
            })
          ),
          lockOf(project, runId),
          // Outside the lock: the next batch commits while this one's commit is synced.
          Effect.zipLeft(sql.synced),
          Effect.mapError(failed("ingest"))
        )
      })

    /** Runs a write of a run's row (putRun) under the ingest lock; the run's cached state is dropped. */
    const rewritingRun = <A, E, R>(project: string, runId: string, effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Effect.ensuring(Effect.sync(() => cache.delete(cacheKey(project, runId)))), lockOf(project, runId))

    return { ingest, rewritingRun }
  })
