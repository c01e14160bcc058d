/**
 * The locale the dashboard writes numbers and dates in: the browser's language when `Intl` accepts
 * it as a tag, else en-US.
 *
 * Not every browser's language is a tag `Intl` accepts: Chromium started under LANG=C.UTF-8 says
 * `en-US@posix`. uPlot formats with `new Intl.NumberFormat(navigator.language)` while it loads, and
 * that throw would take down every module of the page; so where the language is refused, this
 * module makes `navigator.language` read the accepted locale. It must run before uPlot loads:
 * index.html loads it as a module script of its own ahead of main.js (module scripts run in
 * document order, each with its imports, so none of main.js's imports, uPlot among them, runs before it).
 */

/** The canonical form of `tag`, or undefined when `Intl` refuses it. */
const canonical = (tag: string): string | undefined => {
  try {
    return Intl.getCanonicalLocales(tag)[0]
  } catch {
    return undefined
  }
}

const accepted = canonical(navigator.language)

/** The locale of every number and date the dashboard writes. */
export const locale: string = accepted ?? "en-US"

if (accepted === undefined) {
  // An own property of this navigator, over Navigator.prototype's getter: what uPlot reads as it loads.
  Object.defineProperty(navigator, "language", { value: locale, configurable: true })
}
