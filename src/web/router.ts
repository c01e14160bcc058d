/**
 * The dashboard's client routes (history.pushState), the same paths the server answers with the
 * app shell:
 *   /                                        projects
 *   /projects/:project                       runs table
 *   /projects/:project/runs/:runId           run page
 *   /projects/:project/compare?runs=a,b      runs compared
 */

export type Route =
  | { readonly page: "projects" }
  | { readonly page: "runs"; readonly project: string }
  | { readonly page: "run"; readonly project: string; readonly runId: string }
  | { readonly page: "compare"; readonly project: string; readonly runIds: ReadonlyArray<string> }
  | { readonly page: "notFound"; readonly path: string }

const seg = encodeURIComponent

/** The path of a route (what links point at). */
export const href = (route: Route): string => {
  switch (route.page) {
    case "projects":
      return "/"
    case "runs":
      return `/projects/${seg(route.project)}`
    case "run":
      return `/projects/${seg(route.project)}/runs/${seg(route.runId)}`
    case "compare":
      return `/projects/${seg(route.project)}/compare?runs=${route.runIds.map(seg).join(",")}`
    case "notFound":
      return route.path
  }
}

/** The route a location shows. */
export const parse = (pathname: string, search: string): Route => {
  let parts: Array<string>
  try {
    parts = pathname.split("/").filter((part) => part !== "").map(decodeURIComponent)
  } catch {
    return { page: "notFound", path: pathname }
  }
  const [first, project, third, runId, ...rest] = parts
  if (parts.length === 0) return { page: "projects" }
  if (first !== "projects" || project === undefined || rest.length > 0) return { page: "notFound", path: pathname }
  if (third === undefined) return { page: "runs", project }
  if (third === "runs" && runId !== undefined) return { page: "run", project, runId }
  if (third === "compare" && runId === undefined) {
    const runIds = (new URLSearchParams(search).get("runs") ?? "").split(",").filter((id) => id !== "")
    return { page: "compare", project, runIds }
  }
  return { page: "notFound", path: pathname }
}

/** The current route's renderer, once `start` has run. */
let listener: (() => void) | undefined

/**
 * Calls `show` with the current route now, on every `navigate`, on back / forward, and on a plain
 * left click of a same-origin link to a page route (a click with a modifier key opens a tab as usual).
 */
export const start = (show: (route: Route) => void): void => {
  const current = () => show(parse(window.location.pathname, window.location.search))
  window.addEventListener("popstate", current)
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
    const link = event.target instanceof Element ? event.target.closest("a") : null
    if (link === null || link.target !== "" || link.hasAttribute("download")) return
    const url = new URL(link.href, window.location.href)
    if (url.origin !== window.location.origin || /^\/(api|assets|auth)\//.test(url.pathname)) return
    event.preventDefault()
    go(url.pathname + url.search)
  })
  listener = current
  current()
}

/** Shows the page at `path` (a new history entry). */
export const go = (path: string): void => {
  window.history.pushState(null, "", path)
  window.scrollTo(0, 0)
  listener?.()
}
