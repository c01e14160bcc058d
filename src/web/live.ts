/**
 * A running run's page kept current. Every second: the run's detail (state, summary, new history
 * keys), the history rows after the last step read (no samples: only rows not read before), and the
 * console output after its cursor. The whole history is never read again. Following stops once the
 * run is no longer running, after that last read, which holds everything: the exit record is a
 * run's last, and the server stores a run's records in order.
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

/** Follows the run from step `from` until it ends or the poll is stopped. */
export const followRun = (project: string, runId: string, from: number, view: LiveRunView, onError: (error: unknown) => void): Poll => {
  let cursor = from
  return poll(
    1000,
    async (signal) => {
      const run = await api.run(project, runId, signal)
      const [history] = await Promise.all([api.history(project, runId, { minStep: cursor }, signal), view.pullOutput(signal)])
      const last = history.rows.at(-1)
      if (last !== undefined) cursor = last.step + 1
      view.appendHistory(history.rows)
      view.showRun(run)
      return run.state === "running" ? "continue" : "done"
    },
    onError
  )
}
