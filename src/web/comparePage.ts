/**
 * `/projects/:project/compare?runs=a,b,…`: runs overlaid, one chart per history key any of them
 * has, one colour per run (in the order of the address), with a legend naming the runs.
 */
import * as api from "./api.js"
import { chartBoard, type ChartBoard } from "./chartBoard.js"
import type { ChartLine } from "./chart.js"
import { el, replaceChildren } from "./dom.js"
import { formatCount } from "./format.js"
import { breadcrumbs, errorNotice, loadingNotice, type Page, showFailure, stateBadge } from "./pageParts.js"
import { colorAt } from "./palette.js"
import { isAbort } from "./poll.js"
import { href } from "./router.js"
import type { RunDetail } from "./wire.js"

const legend = (project: string, runs: ReadonlyArray<RunDetail>, lines: ReadonlyArray<ChartLine>): HTMLElement =>
  el(
    "ul",
    "run-legend",
    { attrs: { "data-testid": "compare-legend" } },
    ...runs.map((run, i) =>
      el(
        "li",
        null,
        { attrs: { "data-run-id": run.runId } },
        el("span", "swatch", { attrs: { style: `background:${lines[i]!.color}`, "aria-hidden": "true" } }),
        el("a", "strong-link", { attrs: { href: href({ page: "run", project, runId: run.runId }), title: run.runId } }, run.name),
        stateBadge(run.state)
      )
    )
  )

export const comparePage = (root: HTMLElement, project: string, runIds: ReadonlyArray<string>): Page => {
  const controller = new AbortController()
  let board: ChartBoard | undefined
  const crumbs = breadcrumbs([{ label: "Projects", route: { page: "projects" } }, { label: project, route: { page: "runs", project } }, { label: "Compare" }])
  replaceChildren(root, crumbs, el("h1", "page-title", null, `Compare ${formatCount(runIds.length)} runs`), loadingNotice())

  const open = async () => {
    const results = await Promise.allSettled(runIds.map((runId) => api.run(project, runId, controller.signal)))
    const runs = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []))
    const missing = results.flatMap((result, i) => (result.status === "rejected" && !isAbort(result.reason) ? [errorNotice(`Could not load run ${runIds[i]}.`, result.reason)] : []))
    const lines = runs.map((run, i): ChartLine => ({ project, runId: run.runId, label: run.name, color: colorAt(i) }))
    const keys = [...new Set(runs.flatMap((run) => run.historyKeys))].sort((a, b) => a.localeCompare(b))
    board = chartBoard(lines, "None of these runs has logged history.")
    replaceChildren(root, crumbs, el("h1", "page-title", null, `Compare ${formatCount(runs.length)} runs`), ...missing, legend(project, runs, lines), board.element)
    board.showKeys(keys)
  }
  open().catch(showFailure(root, "Could not load the runs.", crumbs))

  return {
    dispose: () => {
      controller.abort()
      board?.destroy()
    }
  }
}
