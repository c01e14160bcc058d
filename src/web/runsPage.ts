/**
 * `/projects/:project`: the project's runs as a table, read again every 2 s. Rows can be filtered
 * (text, tag, state), sorted by any column (click its header), and picked for comparison; the
 * metric columns show the last value of the summary keys picked (the first few numeric ones until
 * the user picks, remembered per project in localStorage).
 *
 * A project of up to WHOLE_PROJECT_RUNS runs is read whole and filtered and sorted here. A larger
 * one is filtered and sorted by the server (src/schemas/RunQuery.ts): the filters become a filter
 * text (the search its `text ~`, which looks where this page's own search does), the sort column a sort text, and the table shows the first
 * runs of that order, PAGE_RUNS more at a time on request.
 */
import * as api from "./api.js"
import { el, replaceChildren } from "./dom.js"
import { formatAgo, formatCount, formatDuration, formatFullTime, formatJson, runDuration } from "./format.js"
import { breadcrumbs, loadingNotice, type Page, showFailure, stateBadge, tagList } from "./pageParts.js"
import { poll } from "./poll.js"
import { go, href } from "./router.js"
import type { RunDetail, RunState } from "./wire.js"

const DEFAULT_METRICS = 4

/** Runs a project may have for the table to read it whole; past it, the server filters and sorts. */
const WHOLE_PROJECT_RUNS = 500
/** Runs the table adds each time more are asked for, and the most it reads (the server's cap). */
const PAGE_RUNS = 500
const MAX_RUNS = 10_000
/** How long typing in the search waits before the server is asked again. */
const SEARCH_PAUSE_MS = 250

/** A column: its header, how rows sort by it (null last), and its cell. */
interface Column {
  readonly id: string
  readonly label: string
  readonly numeric: boolean
  /** The field the server sorts by for this column (RunQuery.ts); none: the server cannot (duration, tags). */
  readonly field?: string
  readonly sortValue: (run: RunDetail, now: number) => number | string | null
  readonly cell: (run: RunDetail, now: number) => HTMLElement
}

const td = (className: string | null, ...children: Array<Node | string>) => el("td", className, null, ...children)

const fixedColumns = (project: string): ReadonlyArray<Column> => [
  {
    id: "name",
    label: "Name",
    numeric: false,
    field: "name",
    sortValue: (run) => run.name.toLowerCase(),
    cell: (run) =>
      td("name-cell", el("a", "strong-link", { attrs: { href: href({ page: "run", project, runId: run.runId }), title: run.runId } }, run.name))
  },
  { id: "state", label: "State", numeric: false, field: "state", sortValue: (run) => run.state, cell: (run) => td(null, stateBadge(run.state)) },
  {
    id: "started",
    label: "Started",
    numeric: false,
    field: "startedAt",
    sortValue: (run) => run.startedAt,
    cell: (run, now) =>
      run.startedAt === null ? td("muted", "—") : el("td", "muted nowrap", { attrs: { title: formatFullTime(run.startedAt) } }, formatAgo(run.startedAt, now))
  },
  {
    id: "duration",
    label: "Duration",
    numeric: true,
    sortValue: (run, now) => runDuration(run, now),
    cell: (run, now) => {
      const ms = runDuration(run, now)
      return td("num nowrap", ms === null ? "—" : formatDuration(ms))
    }
  },
  { id: "tags", label: "Tags", numeric: false, sortValue: (run) => run.tags.join(" ") || null, cell: (run) => td(null, tagList(run.tags)) }
]

const metricColumn = (key: string): Column => ({
  id: `summary:${key}`,
  label: key,
  numeric: true,
  field: `summary[${JSON.stringify(key)}]`,
  sortValue: (run) => {
    const value = run.summary[key]
    return typeof value === "number" ? value : typeof value === "string" ? value : null
  },
  cell: (run) => td("num", formatJson(run.summary[key]))
})

/** Summary keys with a number in some run, in the order they first appear (newest run first). */
const numericSummaryKeys = (runs: ReadonlyArray<RunDetail>): Array<string> => {
  const keys = new Set<string>()
  for (const run of runs) for (const [key, value] of Object.entries(run.summary)) if (typeof value === "number") keys.add(key)
  return [...keys]
}

const compareValues = (a: number | string | null, b: number | string | null): number => {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1
  if (typeof a === "number" && typeof b === "number") return a - b
  return String(a).localeCompare(String(b))
}

const matchesText = (run: RunDetail, words: string): boolean =>
  [run.name, run.runId, run.notes, run.group, run.jobType, run.host, ...run.tags].some((field) => field?.toLowerCase().includes(words))

/** The sort field of a column id (`field` of its column), for the server. */
const sortFieldOf = (columnId: string, project: string): string | undefined =>
  columnId.startsWith("summary:") ? metricColumn(columnId.slice("summary:".length)).field : fixedColumns(project).find((c) => c.id === columnId)?.field

export const runsPage = (root: HTMLElement, project: string): Page => {
  const storageKey = `steplog:metrics:${project}`
  let runs: ReadonlyArray<RunDetail> | undefined
  /** Whether the project is too large to read whole, so the server filters and sorts. */
  let serverSide = false
  /** Server-side: how many runs the table reads, and whether more match. */
  let wanted = PAGE_RUNS
  let more = false
  /** Counts the reads started: an answer to an older read than the last is dropped. */
  let reads = 0
  const selected = new Set<string>()
  let sort = { column: "started", direction: -1 }
  let picked: Array<string> | undefined = (() => {
    const stored = window.localStorage.getItem(storageKey)
    try {
      return stored === null ? undefined : (JSON.parse(stored) as Array<string>)
    } catch {
      return undefined
    }
  })()

  // Toolbar
  const search = el("input", "search", { attrs: { type: "search", placeholder: "Search runs", "aria-label": "Search runs by name, id, tag or notes" } })
  const tagFilter = el("select", null, { attrs: { "aria-label": "Filter by tag" } })
  const stateFilter = el(
    "select",
    null,
    { attrs: { "aria-label": "Filter by state" } },
    ...[["", "Any state"], ["running", "Running"], ["finished", "Finished"], ["crashed", "Crashed"]].map(([value, label]) =>
      el("option", null, { attrs: { value } }, label ?? "")
    )
  )
  const metricList = el("div", "picker-list")
  const metricPicker = el("details", "picker", null, el("summary", "button", null, "Columns", el("span", "caret", { attrs: { "aria-hidden": "true" } }, "▾")), el("div", "picker-panel", null, el("p", "picker-title", null, "Summary metrics"), metricList))
  const compare = el("button", "button primary", { attrs: { type: "button", "data-testid": "compare", disabled: true } }, "Compare")
  const count = el("span", "muted count-label")
  const status = el("div", "status-line")
  const tableHolder = el("div", "table-scroll", null, loadingNotice())
  const showMore = el("button", "button", { attrs: { type: "button", "data-testid": "more-runs", hidden: true } }, `Show ${formatCount(PAGE_RUNS)} more runs`)

  replaceChildren(
    root,
    breadcrumbs([{ label: "Projects", route: { page: "projects" } }, { label: project }]),
    el("div", "page-head", null, el("h1", "page-title", null, project), count),
    el("div", "toolbar", null, search, tagFilter, stateFilter, metricPicker, el("span", "spacer"), compare),
    status,
    tableHolder,
    el("div", "table-foot", null, showMore)
  )

  const choose = (runId: string, on: boolean) => {
    if (on) selected.add(runId)
    else selected.delete(runId)
  }

  const chosenMetrics = (all: ReadonlyArray<string>): ReadonlyArray<string> => picked ?? all.slice(0, DEFAULT_METRICS)

  const renderPicker = (all: ReadonlyArray<string>) => {
    const chosen = new Set(chosenMetrics(all))
    const keys = [...new Set([...all, ...chosen])].sort((a, b) => a.localeCompare(b))
    replaceChildren(
      metricList,
      ...(keys.length === 0
        ? [el("p", "muted", null, "No numeric summary values yet.")]
        : keys.map((key) => {
            const box = el("input", null, { attrs: { type: "checkbox", checked: chosen.has(key) } })
            box.addEventListener("change", () => {
              const next = new Set(chosenMetrics(all))
              if (box.checked) next.add(key)
              else next.delete(key)
              picked = [...next]
              window.localStorage.setItem(storageKey, JSON.stringify(picked))
              render()
            })
            return el("label", "picker-item", null, box, el("span", null, null, key))
          }))
    )
  }

  const renderTagFilter = (all: ReadonlyArray<RunDetail>) => {
    const tags = [...new Set(all.flatMap((run) => run.tags))].sort((a, b) => a.localeCompare(b))
    const current = tagFilter.value
    replaceChildren(tagFilter, el("option", null, { attrs: { value: "" } }, "Any tag"), ...tags.map((tag) => el("option", null, { attrs: { value: tag } }, tag)))
    tagFilter.value = tags.includes(current) ? current : ""
  }

  /** The filters and the sort as the server takes them (RunQuery.ts); a column it cannot sort by is sorted here. */
  const serverQuery = (): api.RunsQuery => {
    const words = search.value.trim()
    const clauses = [
      words === "" ? null : `text ~ ${JSON.stringify(words)}`,
      tagFilter.value === "" ? null : `tags has ${JSON.stringify(tagFilter.value)}`,
      stateFilter.value === "" ? null : `state = ${stateFilter.value}`
    ].filter((clause) => clause !== null)
    const field = sortFieldOf(sort.column, project)
    return { filter: clauses.join(" and "), ...(field === undefined ? {} : { sort: `${sort.direction < 0 ? "-" : ""}${field}` }), limit: wanted }
  }

  const visibleRuns = (all: ReadonlyArray<RunDetail>, columns: ReadonlyArray<Column>, now: number): Array<RunDetail> => {
    const words = search.value.trim().toLowerCase()
    const tag = tagFilter.value
    const state = stateFilter.value as RunState | ""
    const column = columns.find((c) => c.id === sort.column) ?? columns[0]!
    // The server has filtered, and sorted by any column it can.
    if (serverSide && column.field !== undefined) return [...all]
    const shown = serverSide ? [...all] : all.filter((run) => (words === "" || matchesText(run, words)) && (tag === "" || run.tags.includes(tag)) && (state === "" || run.state === state))
    return shown.sort((a, b) => {
      const av = column.sortValue(a, now)
      const bv = column.sortValue(b, now)
      // Missing values last, whichever the direction.
      if (av === null || bv === null) return compareValues(av, bv)
      return sort.direction * compareValues(av, bv)
    })
  }

  const header = (columns: ReadonlyArray<Column>, shown: ReadonlyArray<RunDetail>) => {
    const allPicked = shown.length > 0 && shown.every((run) => selected.has(run.runId))
    const selectAll = el("input", null, { attrs: { type: "checkbox", "aria-label": "Select all shown runs", checked: allPicked } })
    selectAll.addEventListener("change", () => {
      for (const run of shown) choose(run.runId, selectAll.checked)
      render()
    })
    return el(
      "thead",
      null,
      null,
      el(
        "tr",
        null,
        null,
        el("th", "select-cell", null, selectAll),
        ...columns.map((column) => {
          const active = sort.column === column.id
          const button = el("button", "sort", { attrs: { type: "button", title: `Sort by ${column.label}` } }, column.label, el("span", "sort-mark", { attrs: { "aria-hidden": "true" } }, active ? (sort.direction > 0 ? "▲" : "▼") : ""))
          button.addEventListener("click", () => {
            sort = active ? { column: column.id, direction: -sort.direction } : { column: column.id, direction: column.numeric || column.id === "started" ? -1 : 1 }
            if (serverSide && column.field !== undefined) reread()
            else render()
          })
          return el("th", column.numeric ? "num" : null, { attrs: { "aria-sort": active ? (sort.direction > 0 ? "ascending" : "descending") : "none" } }, button)
        })
      )
    )
  }

  const row = (run: RunDetail, columns: ReadonlyArray<Column>, now: number) => {
    const box = el("input", null, { attrs: { type: "checkbox", "data-testid": "select-run", "aria-label": `Select ${run.name}`, checked: selected.has(run.runId) } })
    box.addEventListener("change", () => {
      choose(run.runId, box.checked)
      render()
    })
    return el(
      "tr",
      selected.has(run.runId) ? "selected" : null,
      { attrs: { "data-run-id": run.runId } },
      el("td", "select-cell", null, box),
      ...columns.map((column) => column.cell(run, now))
    )
  }

  function render(): void {
    if (runs === undefined) return
    const now = Date.now()
    const allMetrics = numericSummaryKeys(runs)
    const columns = [...fixedColumns(project), ...chosenMetrics(allMetrics).map(metricColumn)]
    const shown = visibleRuns(runs, columns, now)
    for (const id of selected) if (!runs.some((run) => run.runId === id)) selected.delete(id)

    // A re-render replaces the rows: keep keyboard focus on the checkbox the user was on.
    const focused = document.activeElement?.closest("tr")?.getAttribute("data-run-id")
    const table = el(
      "table",
      "data-table runs-table",
      { attrs: { "data-testid": "runs-table" } },
      header(columns, shown),
      el("tbody", null, null, ...shown.map((run) => row(run, columns, now)))
    )
    replaceChildren(
      tableHolder,
      runs.length === 0 && !serverSide
        ? el("div", "empty-state", null, el("p", null, null, "No runs in this project yet."))
        : shown.length === 0
          ? el("div", "empty-state", null, el("p", null, null, "No runs match the filters."))
          : table
    )
    if (focused) table.querySelector<HTMLInputElement>(`tr[data-run-id="${CSS.escape(focused)}"] input`)?.focus()

    count.textContent = serverSide
      ? `first ${formatCount(shown.length)} matching runs${more ? " (more on the server)" : ""}`
      : shown.length === runs.length ? `${formatCount(runs.length)} runs` : `${formatCount(shown.length)} of ${formatCount(runs.length)} runs`
    showMore.hidden = !more
    compare.disabled = selected.size < 2
    compare.textContent = selected.size < 2 ? "Compare" : `Compare ${formatCount(selected.size)} runs`
    renderPicker(allMetrics)
  }

  compare.addEventListener("click", () => {
    const ids = (runs ?? []).filter((run) => selected.has(run.runId)).map((run) => run.runId)
    if (ids.length >= 2) go(href({ page: "compare", project, runIds: ids }))
  })

  const refresh = async (signal: AbortSignal): Promise<"continue"> => {
    const read = ++reads
    const page = await api.runs(project, serverSide ? serverQuery() : { limit: WHOLE_PROJECT_RUNS }, signal)
    if (read !== reads) return "continue"
    if (!serverSide && page.next !== undefined) {
      serverSide = true
      return refresh(signal)
    }
    runs = page.runs
    more = serverSide && page.next !== undefined
    status.replaceChildren()
    // Server-side, the tags offered are those of the runs read, plus the one chosen.
    if (!serverSide || tagFilter.value === "") renderTagFilter(runs)
    render()
    return "continue"
  }

  const reads$ = new AbortController()
  /** Reads the runs again now (the filters or the sort changed, or more were asked for). */
  const reread = () => void refresh(reads$.signal).catch(showFailure(status, "Could not read the runs."))
  let pause: number | undefined
  for (const input of [search, tagFilter, stateFilter]) {
    input.addEventListener("input", () => {
      if (!serverSide) return render()
      window.clearTimeout(pause)
      pause = window.setTimeout(reread, input === search ? SEARCH_PAUSE_MS : 0)
    })
  }
  showMore.addEventListener("click", () => {
    wanted = Math.min(wanted + PAGE_RUNS, MAX_RUNS)
    reread()
  })

  refresh(reads$.signal).catch(showFailure(tableHolder, "Could not load the runs."))
  const polling = poll(2000, refresh, showFailure(status, "Could not refresh the runs."))
  return {
    dispose: () => {
      reads$.abort()
      window.clearTimeout(pause)
      polling.stop()
    }
  }
}
