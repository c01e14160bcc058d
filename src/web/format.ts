/**
 * How the dashboard writes numbers, times and durations: digits, separators and dates in the
 * browser's locale (locale.ts), words in English. The examples below are en-US.
 */
import { locale } from "./locale.js"
import type { Json, RunDetail } from "./wire.js"

const grouped = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 })
const compact = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 })
const significant = new Intl.NumberFormat(locale, { maximumSignificantDigits: 5 })
const scientific = new Intl.NumberFormat(locale, { notation: "scientific", maximumFractionDigits: 3 })
const twoDigits = new Intl.NumberFormat(locale, { minimumIntegerDigits: 2, useGrouping: false })

/** A step or count: `1,234,567`. */
export const formatCount = (n: number): string => grouped.format(n)

/** A step on a chart axis: `250`, `12.5K`, `1M`. */
export const formatCompact = (n: number): string => (Math.abs(n) < 10_000 ? grouped.format(n) : compact.format(n))

/** A metric value: up to 5 significant digits (`1,234.5`), exponent form for very large or small magnitudes (`1.235E9`). */
export const formatNumber = (n: number): string => {
  if (!Number.isFinite(n)) return String(n)
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return grouped.format(n)
  const magnitude = Math.abs(n)
  if (magnitude !== 0 && (magnitude < 1e-4 || magnitude >= 1e9)) return scientific.format(n)
  return significant.format(n)
}

/** The fewest decimals (at most 12) that write `n` exactly: 0.25 needs 2. */
const decimalsFor = (n: number): number => {
  let decimals = 0
  while (decimals < 12 && Math.abs(n * 10 ** decimals - Math.round(n * 10 ** decimals)) > 1e-6) decimals++
  return decimals
}

/**
 * A chart axis's tick labels, all with the same number of digits: as many decimals as the step
 * between ticks needs (`0.00`, `0.25`, `0.50`), exponent form for magnitudes under 1e-3 or from 1e7.
 */
export const formatTicks = (ticks: ReadonlyArray<number>, increment: number): Array<string> => {
  const largest = Math.max(...ticks.map(Math.abs))
  if (largest !== 0 && (largest < 1e-3 || largest >= 1e7)) {
    const mantissa = decimalsFor(increment / 10 ** Math.floor(Math.log10(largest) + 1e-9))
    const exponent = new Intl.NumberFormat(locale, { notation: "scientific", minimumFractionDigits: mantissa, maximumFractionDigits: mantissa })
    return ticks.map((v) => (v === 0 ? grouped.format(0) : exponent.format(v)))
  }
  const decimals = decimalsFor(increment)
  const fixed = new Intl.NumberFormat(locale, { minimumFractionDigits: decimals, maximumFractionDigits: decimals })
  return ticks.map((v) => fixed.format(v))
}

/** Any summary or config value, on one line. */
export const formatJson = (value: Json | undefined): string => {
  if (value === undefined || value === null) return "—"
  if (typeof value === "number") return formatNumber(value)
  if (typeof value === "string") return value
  if (typeof value === "boolean") return String(value)
  return JSON.stringify(value)
}

/** A length of time: `850 ms`, `42 s`, `3m 07s`, `2h 05m`, `3d 4h`. */
export const formatDuration = (ms: number): string => {
  if (ms < 1000) return `${formatCount(Math.max(0, Math.round(ms)))} ms`
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${formatCount(s)} s`
  const pad = (n: number) => twoDigits.format(n)
  if (s < 3600) return `${formatCount(Math.floor(s / 60))}m ${pad(s % 60)}s`
  if (s < 86_400) return `${formatCount(Math.floor(s / 3600))}h ${pad(Math.floor((s % 3600) / 60))}m`
  return `${formatCount(Math.floor(s / 86_400))}d ${formatCount(Math.floor((s % 86_400) / 3600))}h`
}

const dateTime = new Intl.DateTimeFormat(locale, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })
const fullDateTime = new Intl.DateTimeFormat(locale, { dateStyle: "full", timeStyle: "long" })

/** A moment, for a table cell: `Mar 4, 2026, 14:05`. */
export const formatTime = (ms: number): string => dateTime.format(ms)

/** A moment in full, for a tooltip. */
export const formatFullTime = (ms: number): string => fullDateTime.format(ms)

/** How long ago: `just now`, `5 min ago`, `3 h ago`, `2 days ago`. */
export const formatAgo = (ms: number, now: number): string => {
  const s = Math.round((now - ms) / 1000)
  if (s < 45) return "just now"
  if (s < 3600) return `${formatCount(Math.max(1, Math.round(s / 60)))} min ago`
  if (s < 86_400) return `${formatCount(Math.round(s / 3600))} h ago`
  const days = Math.round(s / 86_400)
  return days === 1 ? "yesterday" : `${formatCount(days)} days ago`
}

/** A run's length so far: to now while running, else to its last record. */
export const runDuration = (run: RunDetail, now: number): number | null => {
  if (run.startedAt === null) return null
  const end = run.state === "running" ? now : (run.updatedAt ?? run.startedAt)
  return Math.max(0, end - run.startedAt)
}
