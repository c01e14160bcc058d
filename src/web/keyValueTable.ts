/** A config or summary as a two-column table; nested objects flattened to `a.b` keys, sorted. */
import { el } from "./dom.js"
import { formatCount, formatJson } from "./format.js"
import type { Json } from "./wire.js"

const flatten = (value: { readonly [key: string]: Json }, prefix: string, into: Array<[string, Json]>): Array<[string, Json]> => {
  for (const [key, entry] of Object.entries(value)) {
    if (entry !== null && typeof entry === "object" && !Array.isArray(entry) && Object.keys(entry).length > 0) {
      flatten(entry as { readonly [key: string]: Json }, `${prefix}${key}.`, into)
    } else into.push([`${prefix}${key}`, entry])
  }
  return into
}

export const keyValueTable = (title: string, value: { readonly [key: string]: Json }, testId: string): HTMLElement => {
  const entries = flatten(value, "", []).sort(([a], [b]) => a.localeCompare(b))
  return el(
    "section",
    "panel",
    { attrs: { "data-testid": testId } },
    el("h2", null, null, title, " ", el("span", "count", null, formatCount(entries.length))),
    entries.length === 0
      ? el("p", "empty", null, "None.")
      : el(
          "table",
          "kv-table",
          null,
          el("tbody", null, null, ...entries.map(([key, entry]) => el("tr", null, null, el("th", null, { attrs: { scope: "row" } }, key), el("td", typeof entry === "number" ? "num" : null, null, formatJson(entry)))))
        )
  )
}
