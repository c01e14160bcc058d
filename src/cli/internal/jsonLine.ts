/**
 * JSON for output lines. JSON has no NaN or Infinity (`JSON.stringify` would print `null`, which
 * reads as "nothing logged"), so they print as the strings "NaN", "Infinity" and "-Infinity".
 */

/** One line of JSON for `value`, with NaN and ±Infinity spelled as strings. */
export const jsonLine = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v))
