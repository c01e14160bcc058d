/**
 * `history` (a page of every row, or buckets: sampling.ts) and `output`, shared by both backends.
 * Reads go to the reader (StoreSql.read), as one read (StoreSql.readTransaction), so they never
 * queue behind an ingest, and every answer is bounded (src/schemas/Limits.ts): a page of history
 * is at most HISTORY_PAGE_ROWS rows, an answer of output at most OUTPUT_PAGE_BYTES of text.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { HISTORY_PAGE_ROWS, OUTPUT_PAGE_BYTES } from "../../../schemas/Limits.js"
import type { OutputRecord, RunId, Value } from "../../../schemas/Record.js"
import type { History, HistoryRow, OutputLines, ProjectName } from "../../../schemas/Wire.js"
import type { HistoryQuery, OutputQuery } from "../RecordStore.js"
import type { HistoryCache } from "./historyCache.js"
import { entryColumns, withFrames } from "./chunks.js"
import * as Chunk from "./historyChunk.js"
import { findRun } from "./runs.js"
import { unpack } from "./runRow.js"
import { inRange, pickedKeys, sampled, type StepRange } from "./sampling.js"
import type { Run, StoreSql } from "./sql.js"

/** Chunks a page reads at most: each holds at most CHUNK_STEPS steps, so a page stays within HISTORY_PAGE_ROWS rows. */
const PAGE_CHUNKS = Math.floor(HISTORY_PAGE_ROWS / Chunk.CHUNK_STEPS)

/** Output records read at a time while an answer fills up to its line and byte caps. */
const OUTPUT_READ = 64

/** A run's history as RecordStore.history answers it. */
export const history = (sql: StoreSql, cache: HistoryCache, project: ProjectName, runId: RunId, query: HistoryQuery) =>
  sql.readTransaction(
    Effect.gen(function* () {
      const steps: StepRange = { from: query.minStep ?? 0, to: query.maxStep ?? Number.MAX_SAFE_INTEGER }
      if (query.samples !== undefined) {
        const rows = yield* sampled(sql.read, cache, project, runId, query.keys, steps, Math.max(1, Math.floor(query.samples)))
        return Option.map(rows, (rows): History => ({ rows, next: null }))
      }
      // The run and its keys in one statement: a row a key, or one without a key.
      const picked = pickedKeys(query.keys)
      const keys = yield* sql.read(
        `SELECT r.run_pk, k.key_id, k.name FROM runs r LEFT JOIN metric_keys k ON k.run_pk = r.run_pk ${picked.on}
           WHERE r.project = ? AND r.run_id = ? ORDER BY k.key_id`,
        [...picked.params, project, runId]
      )
      if (keys.length === 0) return Option.none<History>()
      const runPk = keys[0].run_pk as number
      const names = new Map<number, string>()
      for (const row of keys) if (row.name !== null) names.set(row.key_id, row.name)
      if (names.size === 0) return Option.some<History>({ rows: [], next: null })
      return Option.some(yield* page(sql.read, runPk, [...names.keys()].join(","), names, steps))
    })
  )

/**
 * The rows of the first PAGE_CHUNKS chunks (of the keys read) that hold steps of the range, and
 * the first step of the chunk after them as `next`: a client that asks again from `next` reads on
 * without a gap or a repeat, however sparse the steps.
 */
const page = (run: Run, runPk: number, ids: string, names: ReadonlyMap<number, string>, steps: StepRange) =>
  Effect.gen(function* () {
    const range = inRange(steps)
    const chunks = yield* run(
      `SELECT h.chunk, MIN(h.first_step) AS first FROM history_chunks h WHERE h.run_pk = ? AND h.key_id IN (${ids}) ${range.where}
         GROUP BY h.chunk ORDER BY h.chunk LIMIT ${PAGE_CHUNKS + 1}`,
      [runPk, ...range.params]
    )
    if (chunks.length === 0) return { rows: [], next: null } satisfies History
    const last = chunks[Math.min(chunks.length, PAGE_CHUNKS) - 1].chunk as number
    const within = { from: steps.from, to: Math.min(steps.to, (last + 1) * Chunk.CHUNK_STEPS - 1) }
    const next = chunks.length > PAGE_CHUNKS ? Math.max(steps.from, chunks[PAGE_CHUNKS].first as number) : null
    return { rows: yield* everyRow(run, runPk, ids, names, within), next } satisfies History
  })

/**
 * Every row of the range with any of the keys, in step order: a step's values, each key's latest
 * (the chunks keep one entry a key a step), and as its ts the earliest of theirs.
 */
const everyRow = (run: Run, runPk: number, ids: string, names: ReadonlyMap<number, string>, steps: StepRange) =>
  Effect.gen(function* () {
    // In index order (a sort by chunk in SQL would copy every blob): grouped by chunk here.
    const byChunk = new Map<number, Array<{ name: string; chunk: Chunk.Chunk }>>()
    const range = inRange(steps)
    const stored = yield* run(
      `SELECT h.key_id, h.chunk, ${entryColumns} FROM ${withFrames}
         WHERE h.run_pk = ? AND h.key_id IN (${ids}) ${range.where} ORDER BY h.key_id, h.chunk`,
      [runPk, ...range.params]
    )
    for (const row of stored) {
      let group = byChunk.get(row.chunk)
      if (group === undefined) byChunk.set(row.chunk, (group = []))
      group.push({ name: names.get(row.key_id)!, chunk: Chunk.decode(row) })
    }
    const rows: Array<HistoryRow> = []
    for (const c of [...byChunk.keys()].sort((a, b) => a - b)) {
      const at = new Map<number, { step: number; ts: number; values: { [key: string]: Value } }>()
      for (const { chunk, name } of byChunk.get(c)!) {
        for (let i = 0; i < chunk.steps.length; i++) {
          if (chunk.steps[i]! < steps.from || chunk.steps[i]! > steps.to) continue
          let row = at.get(chunk.steps[i]!)
          if (row === undefined) at.set(chunk.steps[i]!, (row = { step: chunk.steps[i]!, ts: chunk.ts[i]!, values: {} }))
          else row.ts = Math.min(row.ts, chunk.ts[i]!)
          row.values[name] = Chunk.fromPair(chunk.vals[i]!, chunk.texts[i]!)
        }
      }
      const group = [...at.values()]
      if (byChunk.get(c)!.length > 1) group.sort((a, b) => a.step - b.step)
      for (const row of group) rows.push(row)
    }
    return rows
  })

/** Output records are kept whole in `records`: read in seq order from just after `after`, a few at a time, up to the caps. */
export const output = (sql: StoreSql, project: ProjectName, runId: RunId, query: OutputQuery) =>
  sql.readTransaction(
    Effect.gen(function* () {
      const found = yield* findRun(sql.read, project, runId)
      if (Option.isNone(found)) return Option.none<OutputLines>()
      const lines: Array<OutputLines["lines"][number]> = []
      let bytes = 0
      let after = query.after
      while (lines.length < query.limit) {
        const want = Math.min(OUTPUT_READ, query.limit - lines.length)
        const rows = yield* sql.read(
          `SELECT payload FROM records WHERE run_pk = ? AND seq > ? AND kind = 'output' ORDER BY seq LIMIT ?`,
          [found.value.run_pk, after, want]
        )
        for (const row of rows) {
          const { seq, ts, stream, text } = unpack<OutputRecord>(row.payload, null as never)
          if (lines.length > 0 && bytes + text.length > OUTPUT_PAGE_BYTES) return Option.some({ lines, next: after })
          lines.push({ seq, ts, stream, text })
          bytes += text.length
          after = seq
        }
        if (rows.length < want) break
      }
      return Option.some({ lines, next: after })
    })
  )
