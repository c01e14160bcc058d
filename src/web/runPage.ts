/**
 * `/projects/:project/runs/:runId`: a run's header (name, state, exit code, times, host, tags,
 * notes; a button that deletes the run), a chart per history key, its summary and config, and its console output; all kept
 * current while the run is running (live.ts).
 */
import * as api from "./api.js"
import { chartBoard, type ChartBoard } from "./chartBoard.js"
import { el, replaceChildren } from "./dom.js"
import { formatCount, formatDuration, formatFullTime, formatTime, runDuration } from "./format.js"
import { keyValueTable } from "./keyValueTable.js"
import { followRun, nextStep } from "./live.js"
import { outputView } from "./outputView.js"
import { breadcrumbs, loadingNotice, type Page, showFailure, stateBadge, tagList } from "./pageParts.js"
import { colorAt } from "./palette.js"
import type { Poll } from "./poll.js"
import { go, href } from "./router.js"
import type { RunDetail } from "./wire.js"

const fact = (label: string, value: Node | string) => el("div", "fact", null, el("dt", null, null, label), el("dd", null, null, value))

/**
 * The button that deletes the run, after the browser's confirmation; then the project's runs are
 * shown. A failure is told in `status`.
 */
const deleteButton = (run: RunDetail, status: HTMLElement): HTMLElement => {
  const button = el("button", "button danger", { attrs: { type: "button", "data-testid": "delete-run" } }, "Delete run")
  button.addEventListener("click", () => {
    const question = `Delete the run "${run.name}" (${run.runId}) and everything it logged, for good? A training process still uploading it stops.`
    if (!window.confirm(question)) return
    button.setAttribute("disabled", "")
    api.deleteRun(run.project, run.runId).then(
      () => go(href({ page: "runs", project: run.project })),
      (error: unknown) => {
        button.removeAttribute("disabled")
        showFailure(status, "Could not delete the run.")(error)
      }
    )
  })
  return button
}

const runHeader = (run: RunDetail, now: number, status: HTMLElement): HTMLElement => {
  const duration = runDuration(run, now)
  return el(
    "header",
    "run-head",
    null,
    el(
      "div",
      "run-title",
      null,
      el("h1", "page-title", { attrs: { "data-testid": "run-name" } }, run.name),
      stateBadge(run.state),
      el("span", "spacer"),
      deleteButton(run, status)
    ),
    el(
      "dl",
      "facts",
      null,
      fact("Run ID", el("code", null, null, run.runId)),
      fact("Started", run.startedAt === null ? "—" : el("span", null, { attrs: { title: formatFullTime(run.startedAt) } }, formatTime(run.startedAt))),
      fact("Duration", duration === null ? "—" : formatDuration(duration)),
      fact("Exit code", run.exitCode === null ? "—" : el("span", run.exitCode === 0 ? null : "bad", null, String(run.exitCode))),
      fact("History rows", formatCount(run.historyRows)),
      fact("Host", run.host ?? "—"),
      run.group === null ? null : fact("Group", run.group),
      run.jobType === null ? null : fact("Job type", run.jobType)
    ),
    run.tags.length === 0 ? null : el("div", "run-tags", null, tagList(run.tags)),
    run.notes === null || run.notes === "" ? null : el("p", "run-notes", null, run.notes)
  )
}

export const runPage = (root: HTMLElement, project: string, runId: string): Page => {
  const controller = new AbortController()
  const signal = controller.signal
  let board: ChartBoard | undefined
  let following: Poll | undefined
  const crumbs = (name: string) => breadcrumbs([{ label: "Projects", route: { page: "projects" } }, { label: project, route: { page: "runs", project } }, { label: name }])
  replaceChildren(root, crumbs(runId), loadingNotice())

  const open = async () => {
    const first = await api.run(project, runId, signal)
    const head = el("div")
    const status = el("div", "status-line")
    const details = el("div", "two-col")
    const output = outputView(project, runId)
    const charts = chartBoard([{ project, runId, label: first.name, color: colorAt(0) }], "This run has logged no history yet.")
    board = charts
    const showDetails = (run: RunDetail) => {
      replaceChildren(head, runHeader(run, Date.now(), status))
      replaceChildren(details, keyValueTable("Summary", run.summary, "summary"), keyValueTable("Config", run.config, "config"))
      status.replaceChildren()
    }
    const showRun = (run: RunDetail) => {
      showDetails(run)
      charts.showKeys(run.historyKeys)
    }
    replaceChildren(root, crumbs(first.name), head, status, charts.element, details, output.element)
    document.title = `${first.name} · ${project} · steplog`

    showDetails(first)
    // Following starts where the history is now, read before any chart's first read (live.ts).
    const from = first.state === "running" ? await nextStep(project, runId, signal) : 0
    charts.showKeys(first.historyKeys)
    output.pull(signal).catch(showFailure(status, "Could not read the console output."))
    if (first.state === "running") {
      following = followRun(
        project,
        runId,
        from,
        first,
        {
          showRun,
          appendHistory: (rows) => {
            for (const chart of charts.charts()) chart.append(runId, rows)
          },
          pullOutput: output.pull
        },
        showFailure(status, "Lost touch with the server; trying again.")
      )
    }
  }
  open().catch(showFailure(root, "Could not load the run.", crumbs(runId)))

  return {
    dispose: () => {
      controller.abort()
      following?.stop()
      board?.destroy()
    }
  }
}
