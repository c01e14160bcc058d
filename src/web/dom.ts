/**
 * A tiny element builder. Text goes in with `textContent` and attributes with `setAttribute`, never
 * through `innerHTML`: a run name like `<img onerror=…>` is shown as the characters it is.
 */

/** A child: an element, text (a text node), or nothing (skipped, for conditional children). */
export type Child = Node | string | number | null | undefined | false

/** Attributes; `null`, `undefined` and `false` leave one out, `true` sets it empty. */
export type Attributes = { readonly [name: string]: string | number | boolean | null | undefined }

export interface Options {
  readonly attrs?: Attributes
}

/** `el("a", "run-link", { attrs: { href } }, name)`: tag, class names, options, children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string | null,
  options?: Options | null,
  ...children: ReadonlyArray<Child>
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  if (className) element.className = className
  for (const [name, value] of Object.entries(options?.attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue
    element.setAttribute(name, value === true ? "" : String(value))
  }
  append(element, children)
  return element
}

/** Appends children as `el` does. */
export const append = (parent: Node, children: ReadonlyArray<Child>): void => {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child)
  }
}

/** Replaces every child of `parent`. */
export const replaceChildren = (parent: Element, ...children: ReadonlyArray<Child>): void => {
  parent.replaceChildren()
  append(parent, children)
}
