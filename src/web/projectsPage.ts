/** `/`: the projects the session may see, newest activity first. */
import * as api from "./api.js"
import { el, replaceChildren } from "./dom.js"
import { formatAgo, formatCount, formatFullTime } from "./format.js"
import { breadcrumbs, loadingNotice, type Page, showFailure } from "./pageParts.js"
import { href } from "./router.js"
import type { ProjectList } from "./wire.js"

const table = (list: ProjectList, now: number): HTMLElement => {
  const projects = [...list.projects].sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0))
  return el(
    "table",
    "data-table projects-table",
    { attrs: { "data-testid": "projects-table" } },
    el("thead", null, null, el("tr", null, null, el("th", null, null, "Project"), el("th", "num", null, "Runs"), el("th", null, null, "Last activity"))),
    el(
      "tbody",
      null,
      null,
      ...projects.map((project) =>
        el(
          "tr",
          null,
          { attrs: { "data-project": project.name } },
          el("td", "name-cell", null, el("a", "strong-link", { attrs: { href: href({ page: "runs", project: project.name }) } }, project.name)),
          el("td", "num", null, formatCount(project.runs)),
          el(
            "td",
            "muted",
            project.updatedAt === null ? null : { attrs: { title: formatFullTime(project.updatedAt) } },
            project.updatedAt === null ? "—" : formatAgo(project.updatedAt, now)
          )
        )
      )
    )
  )
}

export const projectsPage = (root: HTMLElement): Page => {
  const content = el("div", null, null, loadingNotice())
  replaceChildren(root, breadcrumbs([{ label: "Projects" }]), el("h1", "page-title", null, "Projects"), content)
  const controller = new AbortController()
  api.projects(controller.signal).then(
    (list) =>
      replaceChildren(
        content,
        list.projects.length === 0
          ? el("div", "empty-state", null, el("p", null, null, "No runs yet."), el("p", "muted", null, "Runs show up here as soon as a training script calls init() with this server's URL and key."))
          : table(list, Date.now())
      ),
    showFailure(content, "Could not load the projects.")
  )
  return { dispose: () => controller.abort() }
}
