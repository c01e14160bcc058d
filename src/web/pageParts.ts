/** Pieces every page uses: the mounted-page handle, breadcrumbs, a run's state, tags, notices. */
import { type Child, el, replaceChildren } from "./dom.js"
import { isAbort } from "./poll.js"
import { href, type Route } from "./router.js"
import type { RunState } from "./wire.js"

/** A page on screen; the router disposes of it (stops its polls, frees its charts) when leaving. */
export interface Page {
  readonly dispose: () => void
}

/** `Projects / mnist / swift-fox-12`: each crumb but the last a link. */
export const breadcrumbs = (crumbs: ReadonlyArray<{ readonly label: string; readonly route?: Route }>): HTMLElement =>
  el(
    "nav",
    "crumbs",
    { attrs: { "aria-label": "Breadcrumb" } },
    ...crumbs.flatMap((crumb, i) => [
      i > 0 ? el("span", "crumb-sep", { attrs: { "aria-hidden": "true" } }, "/") : null,
      crumb.route === undefined ? el("span", "crumb-current", null, crumb.label) : el("a", null, { attrs: { href: href(crumb.route) } }, crumb.label)
    ])
  )

/** A run's state with its dot; the dot pulses while the run is running. */
export const stateBadge = (state: RunState): HTMLElement =>
  el("span", `state state-${state}`, { attrs: { "data-testid": "run-state", "data-state": state } }, el("span", "dot", { attrs: { "aria-hidden": "true" } }), state)

export const tagList = (tags: ReadonlyArray<string>): HTMLElement => el("span", "tags", null, ...tags.map((tag) => el("span", "tag", null, tag)))

/** What went wrong, in place of (or above) what could not be shown. */
export const errorNotice = (what: string, error: unknown): HTMLElement =>
  el("div", "notice notice-error", { attrs: { role: "alert" } }, el("strong", null, null, what), " ", error instanceof Error ? error.message : String(error))

/** A failure handler: shows `what` went wrong in `into` (after `before`), unless a left page's read was aborted. */
export const showFailure =
  (into: Element, what: string, ...before: ReadonlyArray<Child>) =>
  (error: unknown): void => {
    if (!isAbort(error)) replaceChildren(into, ...before, errorNotice(what, error))
  }

export const loadingNotice = (): HTMLElement => el("p", "loading", { attrs: { "aria-live": "polite" } }, "Loading…")
