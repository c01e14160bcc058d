/** The upload progress line `finish()` and `steplog sync` draw on a terminal. */

/** `[#####-----]  50%  150/300 records`. */
export const progressBar = (acknowledged: number, total: number, width = 30): string => {
  const ratio = total === 0 ? 1 : Math.min(1, acknowledged / total)
  const filled = Math.round(ratio * width)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%  ${acknowledged}/${total} records`
}
