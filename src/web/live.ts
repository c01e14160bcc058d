/**
 * A running run's page kept current. Every second: the run's detail (state, summary, new history
 * keys), the history rows after the last step read (no samples: only rows not read before), and the
 * console output after its cursor. The whole history is never read again. A key can gain a value
 * below the last step read (a validation row logged at a step already written): the detail's
 * `lastSteps` tells which, and those keys alone are read again from where each was last seen.
 * Following stops once the run is no longer running, after that last read, which holds
 * everything: the exit record is a run's last, and the server stores a run's records in order.
 */
import * as api from "./api.js"
import { poll, type Poll } from "./poll.js"
import type { HistoryRow, RunDetail } from "./wire.js"

/** What a live run page updates. */
export interface LiveRunView {
  readonly showRun: (run: RunDetail) => void
  readonly appendHistory: (rows: ReadonlyArray<HistoryRow>) => void
  readonly pullOutput: (signal: AbortSignal) => Promise<void>
}

/**
 * The step after the run's newest history row (0 with none): where following starts. Read it before
 * the charts' first reads, so that every row is in one or the other (a chart skips rows it holds).
 */
export const nextStep = async (project: string, runId: string, signal: AbortSignal): Promise<number> => {
  const { rows } = await api.history(project, runId, { samples: 1 }, signal)
  const last = rows.at(-1)
  return last === undefined ? 0 : last.step + 1
}

/** The keys whose highest step on the server is past where this page last saw them, but below `cursor`. */
const lagging = (lastSteps: RunDetail["lastSteps"], seen: Map<string, number>, cursor: number) =>
  Object.keys(lastSteps).filter((key) => lastSteps[key]! < cursor && lastSteps[key]! > (seen.get(key) ?? -1))

/** Notes the highest step at which `rows` hold each key. */
const see = (seen: Map<string, number>, rows: ReadonlyArray<HistoryRow>): void => {
  for (const row of rows) for (const key in row.values) if (row.step > (seen.get(key) ?? -1)) seen.set(key, row.step)
}

/**
 * Follows the run from step `from` until it ends or the poll is stopped. `shown`: the run's detail
 * as read before the charts' first reads, which hold at least its `lastSteps`.
 */
export const followRun = (project: string, runId: string, from: number, shown: RunDetail, view: LiveRunView, onError: (error: unknown) => void): Poll => {
  let cursor = from
  const seen = new Map(Object.entries(shown.lastSteps))
  return poll(
    1000,
    async (signal) => {
      const run = await api.run(project, runId, signal)
      const behind = lagging(run.lastSteps, seen, cursor)
      const minStep = Math.min(...behind.map((key) => (seen.get(key) ?? -1) + 1))
      const [late, history] = await Promise.all([
        behind.length === 0 ? undefined : api.history(project, runId, { keys: behind, minStep, maxStep: cursor - 1 }, signal),
        api.history(project, runId, { minStep: cursor }, signal),
        view.pullOutput(signal)
      ])
      // The rows below the cursor first: a chart skips rows at or before the last step it holds.
      for (const read of [late, history]) {
        if (read === undefined) continue
        see(seen, read.rows)
        view.appendHistory(read.rows)
      }
      const last = history.rows.at(-1)
      if (last !== undefined) cursor = last.step + 1
      view.showRun(run)
      return run.state === "running" ? "continue" : "done"
    },
    onError
  )
}
