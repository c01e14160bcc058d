/**
 * steplog/api: read a tracking server from a script or a notebook.
 *
 *   const api = await connect()
 *   const { runs } = await api.runs("mnist", { filter: "config.lr < 0.01", sort: '-summary["val/acc"]', limit: 5 })
 *   const history = await api.history("mnist", runs[0]!.runId, { keys: ["loss"] })
 */
export { connect, SteplogApiError, type ConnectOptions, type HistoryOptions, type RunsOptions, type SteplogApi } from "./api/Client.js"
export type { DeletedRun, History, HistoryRow, OutputLines, ProjectList, RunDetail, RunList, RunState, WhoAmI } from "./schemas/Wire.js"
