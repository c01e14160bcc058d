/**
 * The runs' colours: a fixed palette (Tableau 10, reordered so neighbours differ most), one colour
 * per run in the order the runs were picked, so a run keeps its colour on every chart of a page.
 */
const colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"] as const

/** The colour of the i-th run (the palette repeats after ten). */
export const colorAt = (i: number): string => colors[i % colors.length]!

/** `color` with opacity `alpha` (0–1), for fills. */
export const withAlpha = (color: string, alpha: number): string =>
  `${color}${Math.round(alpha * 255).toString(16).padStart(2, "0")}`
