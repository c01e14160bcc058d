/**
 * Typed reads of the server's JSON API (and a run's deletion), authenticated by the session cookie the page was served
 * with. A 401 means the session is gone (the server restarted, or the user signed out elsewhere):
 * the page reloads, and the server answers it with the sign-in page.
 */
import type { ApiError, DeletedRun, History, OutputLines, ProjectList, RunDetail, RunList } from "./wire.js"

/** The server turned a request down (or failed); `detail` says what exactly was wrong. */
class ApiFailure extends Error {
  constructor(readonly status: number, readonly error: string, readonly detail: string) {
    super(`${detail} (HTTP ${status}, ${error})`)
  }
}

const base = "/api/v1/projects"
const seg = encodeURIComponent

const readError = async (response: Response): Promise<ApiFailure> => {
  try {
    const body = (await response.json()) as ApiError
    return new ApiFailure(response.status, body.error, typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail))
  } catch {
    return new ApiFailure(response.status, "http_error", response.statusText || "the server gave no reason")
  }
}

const requestJson = async <A>(method: "GET" | "DELETE", path: string, signal?: AbortSignal): Promise<A> => {
  const response = await fetch(path, { method, headers: { accept: "application/json" }, credentials: "same-origin", ...(signal ? { signal } : {}) })
  if (response.status === 401) {
    window.location.reload()
    // The reload replaces the page; nothing after this point should run meanwhile.
    return new Promise<never>(() => {})
  }
  if (!response.ok) throw await readError(response)
  return (await response.json()) as A
}

const getJson = <A>(path: string, signal?: AbortSignal): Promise<A> => requestJson("GET", path, signal)

/** What a history read asks for: the keys, a step range (inclusive) and at most `samples` buckets. */
export interface HistoryQuery {
  readonly keys?: ReadonlyArray<string>
  readonly minStep?: number
  readonly maxStep?: number
  readonly samples?: number
}

const historyParams = (query: HistoryQuery): string => {
  const params = new URLSearchParams()
  if (query.keys !== undefined) params.set("keys", query.keys.join(","))
  if (query.minStep !== undefined) params.set("minStep", String(query.minStep))
  if (query.maxStep !== undefined) params.set("maxStep", String(query.maxStep))
  if (query.samples !== undefined) params.set("samples", String(query.samples))
  const text = params.toString()
  return text === "" ? "" : `?${text}`
}

export const projects = (signal?: AbortSignal): Promise<ProjectList> => getJson(base, signal)

/** What a runs listing asks the server for (src/schemas/RunQuery.ts): a filter and a sort text, at most `limit` runs. */
export interface RunsQuery {
  readonly filter?: string
  readonly sort?: string
  readonly limit?: number
}

const runsParams = (query: RunsQuery): string => {
  const params = new URLSearchParams()
  if (query.filter !== undefined && query.filter !== "") params.set("filter", query.filter)
  if (query.sort !== undefined) params.set("sort", query.sort)
  if (query.limit !== undefined) params.set("limit", String(query.limit))
  const text = params.toString()
  return text === "" ? "" : `?${text}`
}

export const runs = (project: string, query: RunsQuery = {}, signal?: AbortSignal): Promise<RunList> =>
  getJson(`${base}/${seg(project)}/runs${runsParams(query)}`, signal)

export const run = (project: string, runId: string, signal?: AbortSignal): Promise<RunDetail> =>
  getJson(`${base}/${seg(project)}/runs/${seg(runId)}`, signal)

export const history = (project: string, runId: string, query: HistoryQuery, signal?: AbortSignal): Promise<History> =>
  getJson(`${base}/${seg(project)}/runs/${seg(runId)}/history${historyParams(query)}`, signal)

/** Deletes a run for good (the server refuses its uploads from then on). */
export const deleteRun = (project: string, runId: string): Promise<DeletedRun> => requestJson("DELETE", `${base}/${seg(project)}/runs/${seg(runId)}`)

/** Console lines after seq `after` (from the start when left out), at most `limit`. */
export const output = (project: string, runId: string, after: number | undefined, limit: number, signal?: AbortSignal): Promise<OutputLines> =>
  getJson(`${base}/${seg(project)}/runs/${seg(runId)}/output?${after === undefined ? "" : `after=${after}&`}limit=${limit}`, signal)

/** Ends the session; the next page load shows the sign-in page. */
export const signOut = async (): Promise<void> => {
  await fetch("/auth/signout", { method: "POST", credentials: "same-origin" })
}
