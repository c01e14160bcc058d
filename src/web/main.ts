/** The dashboard's entry: the top bar, and the page of the current route (router.ts). */
import * as api from "./api.js"
import { comparePage } from "./comparePage.js"
import { el, replaceChildren } from "./dom.js"
import { breadcrumbs, type Page } from "./pageParts.js"
import { projectsPage } from "./projectsPage.js"
import { type Route, start } from "./router.js"
import { runPage } from "./runPage.js"
import { runsPage } from "./runsPage.js"

const signOut = el("button", "button quiet", { attrs: { type: "button" } }, "Sign out")
signOut.addEventListener("click", () => {
  void api.signOut().then(() => window.location.assign("/"))
})
const main = el("main", "page")
replaceChildren(
  document.body,
  el("header", "topbar", null, el("a", "brand", { attrs: { href: "/" } }, el("span", "brand-mark", { attrs: { "aria-hidden": "true" } }), "steplog"), el("span", "spacer"), signOut),
  main
)

const mount = (route: Route): Page => {
  switch (route.page) {
    case "projects":
      return projectsPage(main)
    case "runs":
      return runsPage(main, route.project)
    case "run":
      return runPage(main, route.project, route.runId)
    case "compare":
      return comparePage(main, route.project, route.runIds)
    case "notFound":
      replaceChildren(main, breadcrumbs([{ label: "Projects", route: { page: "projects" } }]), el("h1", "page-title", null, "Page not found"), el("p", "muted", null, `Nothing lives at ${route.path}.`))
      return { dispose: () => {} }
  }
}

let page: Page | undefined
start((route) => {
  page?.dispose()
  document.title = route.page === "runs" || route.page === "compare" ? `${route.project} · steplog` : "steplog"
  page = mount(route)
})
