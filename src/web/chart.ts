/**
 * One metric drawn with uPlot, for one run (a line of the last value per bucket, in a band from its
 * min to its max) or for several (a line per run, in the run's colour).
 *
 * A chart reads only what it draws: its first read asks for as many buckets as the plot is wide in
 * pixels (at most 1000), whatever the run's length; a drag-zoom asks again for that many buckets over
 * the chosen steps; a double-click goes back. Live rows are appended to the unzoomed view, and
 * neighbouring points are merged once there are twice as many as pixels, so a long live run never
 * grows the chart past that.
 *
 * NaN and ±Infinity are gaps with a marker (nonFinite.ts).
 *
 * Test hooks: `data-testid="chart"`, `data-metric`, `data-series` (runs drawn), `data-points` (x
 * values drawn, set on every redraw, absent until the first one) and `data-nonfinite` (markers
 * drawn); `aria-busy` while reading.
 */
import uPlot from "uplot"
import * as api from "./api.js"
import { el } from "./dom.js"
import { formatCompact, formatCount, formatNumber, formatTicks } from "./format.js"
import { bound, drawMarkers, markedOf, markedWord, plotted, type Marked } from "./nonFinite.js"
import { withAlpha } from "./palette.js"
import { isAbort } from "./poll.js"
import type { HistoryRow } from "./wire.js"

/** A run drawn on a chart. */
export interface ChartLine {
  readonly project: string
  readonly runId: string
  readonly label: string
  readonly color: string
}

/** A chart on a page. */
export interface MetricChart {
  readonly metric: string
  readonly element: HTMLElement
  /** Rows read after the chart's first read (live, unsampled); rows at or before a step it holds are skipped. */
  readonly append: (runId: string, rows: ReadonlyArray<HistoryRow>) => void
  readonly destroy: () => void
}

const HEIGHT = 220
const MAX_SAMPLES = 1000
const AXIS_FONT = "11px system-ui, -apple-system, 'Segoe UI', sans-serif"

/**
 * A line's points: ascending steps; per step the last value, and min / max over its bucket (null:
 * a gap), and which last value was NaN or ±Infinity (drawn as a marker).
 */
interface Points {
  readonly steps: Array<number>
  readonly last: Array<number | null>
  readonly min: Array<number | null>
  readonly max: Array<number | null>
  readonly marked: Array<Marked | null>
}

const noPoints = (): Points => ({ steps: [], last: [], min: [], max: [], marked: [] })

/** Appends the rows that carry `metric`, after the last step `points` holds. */
const addRows = (points: Points, metric: string, rows: ReadonlyArray<HistoryRow>): void => {
  let lastStep = points.steps.at(-1) ?? -1
  for (const row of rows) {
    if (row.step <= lastStep || !Object.hasOwn(row.values, metric)) continue
    const value = plotted(row.values[metric])
    points.steps.push(row.step)
    points.last.push(value)
    points.min.push(row.min?.[metric] === undefined ? value : bound(row.min[metric]))
    points.max.push(row.max?.[metric] === undefined ? value : bound(row.max[metric]))
    points.marked.push(markedOf(row.values[metric]))
    lastStep = row.step
  }
}

const pointsOf = (metric: string, rows: ReadonlyArray<HistoryRow>): Points => {
  const points = noPoints()
  addRows(points, metric, rows)
  return points
}

const extreme = (pick: (a: number, b: number) => number, a: number | null, b: number | null): number | null =>
  a === null ? b : b === null ? a : pick(a, b)

/** Half as many points: each pair merged into the later one's step and value, and both's min and max. */
const halve = (points: Points): Points => {
  const merged = noPoints()
  for (let i = 0; i < points.steps.length; i += 2) {
    const j = Math.min(i + 1, points.steps.length - 1)
    merged.steps.push(points.steps[j]!)
    merged.last.push(points.last[j]!)
    merged.min.push(extreme(Math.min, points.min[i]!, points.min[j]!))
    merged.max.push(extreme(Math.max, points.max[i]!, points.max[j]!))
    merged.marked.push(points.marked[j]!)
  }
  return merged
}

/** uPlot's columns: one run as step, value, min, max (the band); several joined on their steps. */
const columns = (lines: ReadonlyArray<Points>): uPlot.AlignedData => {
  const [only] = lines
  if (lines.length === 1 && only !== undefined) return [only.steps, only.last, only.min, only.max]
  return uPlot.join(lines.map((p): uPlot.AlignedData => [p.steps, p.last]))
}

const hasNumbers = (lines: ReadonlyArray<Points>): boolean => lines.some((p) => p.last.some((v) => v !== null))

/** Whole steps only: 1, 2, 5, 10, 20, 50, … */
const stepIncrements = Array.from({ length: 15 }, (_, k) => [1, 2, 5].map((m) => m * 10 ** k)).flat()

/** The hover readout of a value; a gap says which of NaN and ±Infinity it is, if `marked` knows. */
const readout = (marked: (series: number, index: number) => Marked | null) => (_: uPlot, value: number | null, series: number, index: number | null): string => {
  if (value !== null && value !== undefined) return formatNumber(value)
  const which = index === null ? null : marked(series, index)
  return which === null ? "—" : markedWord(which)
}

/** The index of `step` in ascending `steps`, or -1. */
const indexOf = (steps: ReadonlyArray<number>, step: number): number => {
  let lo = 0
  let hi = steps.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (steps[mid] === step) return mid
    if (steps[mid]! < step) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

const axisStyle = {
  font: AXIS_FONT,
  stroke: "#6b7280",
  grid: { stroke: "#edf0f3", width: 1 },
  ticks: { show: false }
} satisfies uPlot.Axis

const seriesOf = (lines: ReadonlyArray<ChartLine>, marked: (series: number, index: number) => Marked | null): Array<uPlot.Series> => {
  const [only] = lines
  const value = readout(marked)
  const step: uPlot.Series = { label: "step", value: (_, v) => (v === null ? "—" : formatCount(v)) }
  if (lines.length === 1 && only !== undefined) {
    const band = { stroke: "transparent", width: 0, points: { show: false }, value: readout(() => null), class: "chart-bound" }
    return [step, { label: "value", stroke: only.color, width: 1.5, value }, { ...band, label: "min" }, { ...band, label: "max" }]
  }
  return [step, ...lines.map((line): uPlot.Series => ({ label: line.label, stroke: line.color, width: 1.5, value }))]
}

/**
 * A chart of `metric` for `lines`; it starts reading once it is laid out with a width. Charts
 * given the same `syncKey` share the hover cursor (the same step on every chart).
 */
export const metricChart = (metric: string, lines: ReadonlyArray<ChartLine>, syncKey: string): MetricChart => {
  const plot = el("div", "chart-plot")
  const note = el("span", "chart-note")
  const message = el("p", "chart-message", { attrs: { hidden: true } })
  const element = el(
    "figure",
    "chart",
    { attrs: { "data-testid": "chart", "data-metric": metric, "data-series": lines.length, "aria-busy": "true" } },
    el("figcaption", "chart-title", null, el("span", "chart-key", { attrs: { title: metric } }, metric), note),
    plot,
    message
  )

  const controller = new AbortController()
  // The unzoomed view: the first read, then live rows; `pending` holds live rows that come before it.
  let full: Array<Points> = lines.map(noPoints)
  let pending: Array<Array<ReadonlyArray<HistoryRow>>> | undefined = lines.map(() => [])
  let samples = MAX_SAMPLES
  let zoomed = false
  // Every read or reset takes a number; an answer that is no longer the newest one is dropped.
  let generation = 0
  let chart: uPlot | undefined
  /** The points drawn now (the unzoomed view or a zoom), for the markers and the readout. */
  let shown: ReadonlyArray<Points> = full
  const markedAt = (series: number, index: number): Marked | null => {
    if (chart === undefined) return null
    const line = shown[lines.length === 1 ? 0 : series - 1]
    const at = line === undefined ? -1 : lines.length === 1 ? index : indexOf(line.steps, chart.data[0][index]!)
    return at < 0 ? null : line!.marked[at] ?? null
  }

  const showMessage = (text: string | null) => {
    message.hidden = text === null
    message.textContent = text ?? ""
  }

  const draw = (lineData: ReadonlyArray<Points>, range?: { readonly min: number; readonly max: number }) => {
    shown = lineData
    const data = columns(lineData)
    if (chart === undefined) chart = new uPlot(options(), data, plot)
    else chart.setData(data)
    if (range !== undefined) chart.setScale("x", range)
    element.dataset["points"] = String(data[0].length)
    element.removeAttribute("aria-busy")
    showMessage(hasNumbers(lineData) ? null : "no numeric values to draw")
  }

  const failed = (error: unknown) => {
    if (isAbort(error)) return
    element.removeAttribute("aria-busy")
    showMessage(`could not read ${metric}: ${error instanceof Error ? error.message : String(error)}`)
  }

  const read = (query: api.HistoryQuery) =>
    Promise.all(lines.map((line) => api.history(line.project, line.runId, { keys: [metric], samples, ...query }, controller.signal)))

  const load = async (plotWidth: number) => {
    samples = Math.max(16, Math.min(MAX_SAMPLES, plotWidth))
    const mine = ++generation
    try {
      const histories = await read({})
      full = histories.map((history) => pointsOf(metric, history.rows))
      pending?.forEach((chunks, i) => chunks.forEach((rows) => addRows(full[i]!, metric, rows)))
      pending = undefined
      if (mine === generation) draw(full)
    } catch (error) {
      failed(error)
    }
  }

  const zoomTo = async (min: number, max: number) => {
    const mine = ++generation
    zoomed = true
    note.textContent = `steps ${formatCount(min)}–${formatCount(max)} · double-click to reset`
    element.setAttribute("aria-busy", "true")
    try {
      const histories = await read({ minStep: min, maxStep: max })
      if (mine === generation) draw(histories.map((history) => pointsOf(metric, history.rows)), { min, max })
    } catch (error) {
      failed(error)
    }
  }

  const reset = () => {
    if (!zoomed) return
    generation++
    zoomed = false
    note.textContent = ""
    draw(full)
  }

  // A drag selects steps; the selection is cleared at once and the steps read again.
  const selected = (self: uPlot) => {
    const { left, width } = self.select
    self.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
    if (width < 2) return
    const min = Math.max(0, Math.ceil(self.posToVal(left, "x")))
    const max = Math.floor(self.posToVal(left + width, "x"))
    if (max >= min) void zoomTo(min, max)
  }

  const options = (): uPlot.Options => ({
    width: Math.floor(plot.clientWidth),
    height: HEIGHT,
    series: seriesOf(lines, markedAt),
    bands: lines.length === 1 ? [{ series: [3, 2], fill: withAlpha(lines[0]!.color, 0.18) }] : [],
    scales: { x: { time: false } },
    axes: [
      { ...axisStyle, size: 32, incrs: stepIncrements, values: (_, splits) => splits.map(formatCompact) },
      {
        ...axisStyle,
        values: (_, splits, __, ___, increment) => formatTicks(splits, increment),
        size: (_, values) => (values ? Math.max(...values.map((v) => v.length)) * 6.5 + 16 : 40)
      }
    ],
    // The legend is the hover readout (style.css shows it over the plot while the pointer is on the chart).
    legend: { live: true, markers: { show: lines.length > 1, width: 0, fill: (_, i) => lines[i - 1]?.color ?? "transparent" } },
    ...(lines.length > 1 ? { focus: { alpha: 0.35 } } : {}),
    cursor: {
      drag: { x: true, y: false, setScale: false },
      sync: { key: syncKey },
      ...(lines.length > 1 ? { focus: { prox: 24 } } : {}),
      bind: {
        dblclick: (_, __, handler) => (event) => {
          reset()
          return handler(event)
        }
      }
    },
    hooks: {
      draw: [drawMarkers(element, () => shown.map((points, i) => ({ steps: points.steps, marked: points.marked, color: lines[i]!.color })))],
      setSelect: [selected],
      // The readout sits on the side of the plot away from the cursor.
      setCursor: [(self) => void element.classList.toggle("readout-left", (self.cursor.left ?? 0) > self.over.clientWidth / 2)]
    }
  })

  // The plot's width in px: 0 until it is first laid out (hidden charts are not), when the first read starts.
  let width = 0
  const resized = new ResizeObserver(([entry]) => {
    const now = Math.floor(entry?.contentRect.width ?? 0)
    if (now === 0 || now === width) return
    const first = width === 0
    width = now
    if (first) void load(width)
    else chart?.setSize({ width, height: HEIGHT })
  })
  resized.observe(plot)

  return {
    metric,
    element,
    append: (runId, rows) => {
      const i = lines.findIndex((line) => line.runId === runId)
      if (i < 0 || rows.length === 0) return
      if (pending !== undefined) return void pending[i]!.push(rows)
      addRows(full[i]!, metric, rows)
      while (full[i]!.steps.length > 2 * samples) full[i] = halve(full[i]!)
      if (!zoomed) draw(full)
    },
    destroy: () => {
      controller.abort()
      resized.disconnect()
      chart?.destroy()
    }
  }
}
