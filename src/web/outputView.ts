/**
 * A run's console output: the text as the run wrote it (stderr in red), read forward from a seq
 * cursor, so a live run's new lines are read once each. The page keeps the newest MAX_LINES
 * records; it follows the end while the reader is scrolled to it.
 */
import * as api from "./api.js"
import { el } from "./dom.js"
import { formatCount } from "./format.js"
import type { OutputLine } from "./wire.js"

export interface OutputView {
  readonly element: HTMLElement
  /** Reads and shows the records after the cursor; at most PAGES_PER_PULL pages, the rest at the next pull. */
  readonly pull: (signal: AbortSignal) => Promise<void>
}

const PAGE = 1000
const PAGES_PER_PULL = 20
const MAX_LINES = 5000

export const outputView = (project: string, runId: string): OutputView => {
  const text = el("pre", "console", { attrs: { "data-testid": "console", tabindex: 0 } })
  const dropped = el("p", "console-note", { attrs: { hidden: true } })
  const empty = el("p", "empty", null, "No console output.")
  const element = el("section", "panel console-panel", null, el("h2", null, null, "Console output"), dropped, text, empty)
  let after: number | undefined
  let shown = 0
  let droppedCount = 0

  const show = (lines: ReadonlyArray<OutputLine>) => {
    const atEnd = text.scrollTop + text.clientHeight >= text.scrollHeight - 4
    for (const line of lines) text.appendChild(el("span", line.stream === "stderr" ? "stderr" : null, null, line.text))
    shown += lines.length
    while (shown > MAX_LINES && text.firstChild !== null) {
      text.firstChild.remove()
      shown--
      droppedCount++
    }
    if (droppedCount > 0) {
      dropped.hidden = false
      dropped.textContent = `${formatCount(droppedCount)} earlier records are not shown.`
    }
    empty.hidden = shown > 0
    if (atEnd) text.scrollTop = text.scrollHeight
  }

  const read = async (signal: AbortSignal) => {
    for (let page = 0; page < PAGES_PER_PULL; page++) {
      const answer = await api.output(project, runId, after, PAGE, signal)
      after = answer.next
      if (answer.lines.length > 0) show(answer.lines)
      if (answer.lines.length < PAGE) return
    }
  }
  // One read at a time: two from the same cursor would show the same records twice.
  let reading: Promise<void> | undefined

  return {
    element,
    pull: (signal) => {
      reading ??= read(signal).finally(() => {
        reading = undefined
      })
      return reading
    }
  }
}
