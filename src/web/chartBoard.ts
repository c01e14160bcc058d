/**
 * The charts of a page, one per history key, in sections named by the key's prefix before its first
 * `/` (`train/loss` under "train"; keys without a prefix first, under "Charts"; the board itself is "Metrics"), with a filter on
 * the key names. A chart the filter hides reads nothing until it is shown.
 */
import { type ChartLine, type MetricChart, metricChart } from "./chart.js"
import { el } from "./dom.js"

export interface ChartBoard {
  readonly element: HTMLElement
  /** Adds a chart for every key not shown yet (a live run may start logging new ones). */
  readonly showKeys: (keys: ReadonlyArray<string>) => void
  readonly charts: () => Iterable<MetricChart>
  readonly destroy: () => void
}

interface Section {
  readonly element: HTMLDetailsElement
  readonly grid: HTMLElement
  readonly count: HTMLElement
  /** The section's charts in key order. */
  readonly charts: Array<MetricChart>
}

const sectionOf = (key: string): string => {
  const slash = key.indexOf("/")
  return slash > 0 ? key.slice(0, slash) : ""
}

/** Where `name` goes in `sorted` to keep it sorted. */
const insertionIndex = (sorted: ReadonlyArray<string>, name: string): number => {
  const at = sorted.findIndex((other) => other.localeCompare(name) > 0)
  return at < 0 ? sorted.length : at
}

/** A board drawing `lines` (one run, or several to compare); its charts share the hover cursor. */
export const chartBoard = (lines: ReadonlyArray<ChartLine>, emptyText: string): ChartBoard => {
  const syncKey = `board-${Math.random().toString(36).slice(2)}`
  const sections = new Map<string, Section>()
  const charts = new Map<string, MetricChart>()
  const total = el("span", "count")
  const filter = el("input", "board-filter", { attrs: { type: "search", placeholder: "Filter charts", "aria-label": "Filter charts by name" } })
  const body = el("div", "board-sections")
  const empty = el("p", "empty", null, emptyText)
  const element = el(
    "section",
    "board",
    null,
    el("div", "board-toolbar", null, el("h2", null, null, "Metrics ", total), filter),
    body,
    empty
  )

  const applyFilter = () => {
    const words = filter.value.trim().toLowerCase()
    for (const section of sections.values()) {
      let shown = 0
      for (const chart of section.charts) {
        chart.element.hidden = words !== "" && !chart.metric.toLowerCase().includes(words)
        if (!chart.element.hidden) shown++
      }
      section.element.hidden = shown === 0
      section.count.textContent = String(shown)
    }
  }
  filter.addEventListener("input", applyFilter)

  const sectionFor = (name: string): Section => {
    const found = sections.get(name)
    if (found !== undefined) return found
    const grid = el("div", "chart-grid")
    const count = el("span", "count")
    const details = el("details", "board-section", { attrs: { open: true, "data-section": name } }, el("summary", null, null, name === "" ? "Charts" : name, " ", count), grid)
    // The ungrouped section first, then the others by name.
    const names = [...sections.keys()].filter((n) => n !== "").sort((a, b) => a.localeCompare(b))
    const next = names[insertionIndex(names, name)]
    body.insertBefore(details, name === "" ? body.firstElementChild : next === undefined ? null : sections.get(next)!.element)
    const section = { element: details, grid, count, charts: [] }
    sections.set(name, section)
    return section
  }

  const showKeys = (keys: ReadonlyArray<string>) => {
    for (const key of keys) {
      if (charts.has(key)) continue
      const section = sectionFor(sectionOf(key))
      const chart = metricChart(key, lines, syncKey)
      const at = insertionIndex(section.charts.map((c) => c.metric), key)
      section.grid.insertBefore(chart.element, section.charts[at]?.element ?? null)
      section.charts.splice(at, 0, chart)
      charts.set(key, chart)
    }
    total.textContent = String(charts.size)
    empty.hidden = charts.size > 0
    applyFilter()
  }

  return {
    element,
    showKeys,
    charts: () => charts.values(),
    destroy: () => {
      for (const chart of charts.values()) chart.destroy()
    }
  }
}
