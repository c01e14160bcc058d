/**
 * The numbers JSON cannot carry (NaN, ±Infinity, -0: Wire.ts's JsonNumber) on a chart. -0 plots as
 * the zero it is. NaN and ±Infinity leave a gap in the line, never a zero, and a marker at their
 * step: a triangle at the top for +Infinity, at the bottom for -Infinity, a ring at the bottom for
 * NaN; the hover readout names them. Test hook: `data-nonfinite`, the markers drawn.
 */
import type uPlot from "uplot"
import type { JsonNumber, Value } from "./wire.js"

/** Which of NaN and ±Infinity a value is, if it is one. */
export type Marked = "NaN" | "Infinity" | "-Infinity"

/** The number a value plots as (booleans as 0 / 1), or null for a gap. */
export const plotted = (value: Value | undefined): number | null =>
  typeof value === "number" ? value : typeof value === "boolean" ? Number(value) : isStandIn(value) && value.number === "-0" ? -0 : null

/** The marker a value draws, if any. */
export const markedOf = (value: Value | undefined): Marked | null => (isStandIn(value) && value.number !== "-0" ? value.number : null)

/** A bucket bound as the band draws it: a number, or null where none can be drawn (±Infinity, NaN, none). */
export const bound = (value: JsonNumber | undefined): number | null =>
  value === undefined ? null : typeof value === "number" ? value : value.number === "-0" ? -0 : null

const isStandIn = (value: Value | undefined): value is { readonly number: "NaN" | "Infinity" | "-Infinity" | "-0" } =>
  typeof value === "object" && value !== null

/** What the hover readout says for a marked value. */
export const markedWord = (marked: Marked): string => (marked === "NaN" ? "NaN" : marked === "Infinity" ? "+∞" : "−∞")

/** One line's marked steps, with the colour to draw them in. */
export interface MarkedLine {
  readonly steps: ReadonlyArray<number>
  readonly marked: ReadonlyArray<Marked | null>
  readonly color: string
}

const SIZE = 5

/** A uPlot draw hook that marks the steps of `lines()` holding NaN or ±Infinity; sets `data-nonfinite` on `element`. */
export const drawMarkers = (element: HTMLElement, lines: () => ReadonlyArray<MarkedLine>) => (u: uPlot): void => {
  const { ctx, bbox } = u
  const [xMin, xMax] = [u.scales["x"]!.min ?? -Infinity, u.scales["x"]!.max ?? Infinity]
  let drawn = 0
  ctx.save()
  ctx.lineWidth = 1.5 * devicePixelRatio
  for (const line of lines()) {
    ctx.fillStyle = ctx.strokeStyle = line.color
    line.marked.forEach((marked, i) => {
      const step = line.steps[i]!
      if (marked === null || step < xMin || step > xMax) return
      const x = u.valToPos(step, "x", true)
      const size = SIZE * devicePixelRatio
      const y = marked === "Infinity" ? bbox.top + size : bbox.top + bbox.height - size
      ctx.beginPath()
      if (marked === "NaN") ctx.arc(x, y, size * 0.8, 0, 2 * Math.PI)
      else {
        const tip = marked === "Infinity" ? -size : size
        ctx.moveTo(x - size, y - tip / 2)
        ctx.lineTo(x + size, y - tip / 2)
        ctx.lineTo(x, y + tip / 2)
        ctx.closePath()
      }
      if (marked === "NaN") ctx.stroke()
      else ctx.fill()
      drawn++
    })
  }
  ctx.restore()
  element.dataset["nonfinite"] = String(drawn)
}
