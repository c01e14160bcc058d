/** The run of `mode: "disabled"`: every call is accepted and does nothing, so code need not branch on the mode. */
import type { Json, RunId } from "../schemas/Record.js"
import type { Run, RunConfig, RunSummary } from "./Run.js"

const emptyRecord = (): RunConfig & RunSummary => {
  const values: { [key: string]: Json } = {}
  return { update: () => {}, set: () => {}, get: (key) => values[key], toJSON: () => ({}) }
}

/** A run that records nothing. */
export const disabledRun = (id: RunId, name: string, project: string): Run => ({
  id,
  name,
  project,
  mode: "disabled",
  dir: "",
  config: emptyRecord(),
  summary: emptyRecord(),
  log: () => {},
  finish: () => Promise.resolve({ uploaded: false, records: 0, written: 0, dropped: 0, pending: 0, hint: "steplog was disabled for this run" })
})
