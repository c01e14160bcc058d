/**
 * A RecordStore in memory, for HTTP tests that need a store but are not about storage: simple, and
 * faithful to RecordStore.ts's guarantees (a batch all or nothing, each (run, seq) once, ackSeq the
 * contiguous prefix, config / summary / state following the records).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { HistoryRecord, OutputRecord, Record, RunId, Value } from "../../src/schemas/Record.js"
import type { HistoryRow, ProjectName, RunDetail, RunMetadata } from "../../src/schemas/Wire.js"
import { historyRows } from "../../src/schemas/UploadRecords.js"
import { type HistoryQuery, RecordStore } from "../../src/server/RecordStore.js"

interface StoredRun {
  readonly project: ProjectName
  readonly runId: RunId
  metadata: RunMetadata | null
  readonly records: Map<number, Record>
}

/** The store plus a peek at what it holds, for assertions. */
export const makeMemoryRecordStore = () => {
  const runs = new Map<string, StoredRun>()
  const keyOf = (project: string, runId: string) => `${project}\u0000${runId}`
  const runOf = (project: ProjectName, runId: RunId): StoredRun => {
    const key = keyOf(project, runId)
    let run = runs.get(key)
    if (run === undefined) runs.set(key, (run = { project, runId, metadata: null, records: new Map() }))
    return run
  }

  const ackSeq = (run: StoredRun) => {
    let n = 0
    while (run.records.has(n)) n++
    return n
  }

  const detail = (run: StoredRun): RunDetail => {
    const ordered = [...run.records.values()].sort((a, b) => a.seq - b.seq)
    const opening = ordered.find((r) => r.kind === "run")
    const exit = ordered.find((r) => r.kind === "exit")
    let config: { [key: string]: unknown } = { ...(run.metadata?.config ?? {}), ...(opening?.kind === "run" ? opening.config : {}) }
    let summary: { [key: string]: unknown } = {}
    for (const r of ordered) {
      if (r.kind === "config") config = { ...config, ...r.patch }
      if (r.kind === "summary") summary = { ...summary, ...r.patch }
    }
    const m = run.metadata
    return {
      runId: run.runId,
      project: run.project,
      name: m?.name ?? (opening?.kind === "run" ? opening.name : run.runId),
      state: exit !== undefined ? "finished" : m?.crashed === true ? "crashed" : "running",
      exitCode: exit?.kind === "exit" ? exit.exitCode : null,
      config: config as RunDetail["config"],
      summary: summary as RunDetail["summary"],
      tags: m?.tags ?? (opening?.kind === "run" ? opening.tags : []),
      notes: m?.notes ?? null,
      group: m?.group ?? null,
      jobType: m?.jobType ?? null,
      host: m?.host ?? (opening?.kind === "run" ? opening.host : null),
      startedAt: m?.startedAt ?? opening?.ts ?? null,
      updatedAt: ordered.length > 0 ? Math.max(...ordered.map((r) => r.ts)) : null,
      records: run.records.size,
      historyRows: ordered.filter((r) => r.kind === "history").length,
      historyKeys: [...new Set(ordered.flatMap((r) => (r.kind === "history" ? Object.keys(r.values) : [])))].sort(),
      lastSteps: Object.fromEntries(ordered.flatMap((r) => (r.kind === "history" ? Object.keys(r.values).map((key) => [key, r.step]) : [])))
    }
  }

  const history = (run: StoredRun, { keys, samples, minStep = 0, maxStep = Infinity }: HistoryQuery): Array<HistoryRow> => {
    const pick = (values: HistoryRecord["values"]) =>
      keys === undefined ? { ...values } : Object.fromEntries(Object.entries(values).filter(([k]) => keys.includes(k)))
    // A step's partial rows read as one, its ts that of the first.
    const byStep = new Map<number, HistoryRow & { values: { [key: string]: Value } }>()
    for (const r of [...run.records.values()].sort((a, b) => a.seq - b.seq)) {
      if (r.kind !== "history" || r.step < minStep || r.step > maxStep) continue
      const row = byStep.get(r.step)
      if (row === undefined) byStep.set(r.step, { step: r.step, ts: r.ts, values: pick(r.values) })
      else Object.assign(row.values, pick(r.values))
    }
    const rows = [...byStep.values()]
      .sort((a, b) => a.step - b.step)
      .filter((r) => keys === undefined || Object.keys(r.values).length > 0)
    if (samples === undefined) return rows
    const size = Math.max(1, Math.ceil(rows.length / samples))
    const buckets: Array<HistoryRow> = []
    for (let i = 0; i < rows.length; i += size) {
      const bucket = rows.slice(i, i + size)
      const last = bucket[bucket.length - 1]!
      const min: { [key: string]: number } = {}
      const max: { [key: string]: number } = {}
      for (const row of bucket) {
        for (const [k, v] of Object.entries(row.values)) {
          if (typeof v !== "number") continue
          min[k] = Math.min(min[k] ?? v, v)
          max[k] = Math.max(max[k] ?? v, v)
        }
      }
      buckets.push({ ...last, min, max })
    }
    return buckets
  }

  const store = RecordStore.of({
    ingest: (project, runId, records) =>
      Effect.sync(() => {
        const run = runOf(project, runId)
        for (const record of records.flatMap((r) => (r.kind === "historyBlock" ? historyRows(r) : [r]))) {
          if (!run.records.has(record.seq)) run.records.set(record.seq, record)
        }
        return { ackSeq: ackSeq(run) }
      }),
    putRun: (project, runId, metadata) =>
      Effect.sync(() => {
        const run = runOf(project, runId)
        run.metadata = metadata
        return detail(run)
      }),
    getRun: (project, runId) => Effect.sync(() => Option.map(Option.fromNullable(runs.get(keyOf(project, runId))), detail)),
    listRuns: (project) => Effect.sync(() => ({ runs: [...runs.values()].filter((r) => r.project === project).map(detail) })),
    listProjects: Effect.sync(() => {
      const byName = new Map<ProjectName, { name: ProjectName; runs: number; updatedAt: number | null }>()
      for (const run of runs.values()) {
        const entry = byName.get(run.project) ?? { name: run.project, runs: 0, updatedAt: null }
        const updated = detail(run).updatedAt
        byName.set(run.project, {
          ...entry,
          runs: entry.runs + 1,
          updatedAt: updated === null ? entry.updatedAt : Math.max(entry.updatedAt ?? updated, updated)
        })
      }
      return { projects: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)) }
    }),
    history: (project, runId, query) =>
      Effect.sync(() =>
        Option.map(Option.fromNullable(runs.get(keyOf(project, runId))), (run) => ({ rows: history(run, query) }))
      ),
    output: (project, runId, { after, limit }) =>
      Effect.sync(() =>
        Option.map(Option.fromNullable(runs.get(keyOf(project, runId))), (run) => {
          const lines = [...run.records.values()]
            .filter((r): r is OutputRecord => r.kind === "output" && r.seq > after)
            .sort((a, b) => a.seq - b.seq)
            .slice(0, limit)
            .map(({ seq, ts, stream, text }) => ({ seq, ts, stream, text }))
          return { lines, next: lines.at(-1)?.seq ?? after }
        })
      )
  })

  return {
    store,
    layer: Layer.succeed(RecordStore, store),
    /** Every record held for a run, in seq order (empty for an unknown run). */
    recordsOf: (project: string, runId: string): Array<Record> =>
      [...(runs.get(keyOf(project, runId))?.records.values() ?? [])].sort((a, b) => a.seq - b.seq),
    /** How many runs exist. */
    runCount: () => runs.size
  }
}
