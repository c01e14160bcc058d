/**
 * Node's on-disk compile cache, as the bin and the service entry turn it on: `enableCompileCache()`
 * with no directory writes under `os.tmpdir()`, so a child given a TMPDIR of its own shows whether
 * it turned the cache on. NODE_COMPILE_CACHE is left out of the child's environment: it would turn
 * the cache on by itself.
 */
import * as fs from "node:fs"
import * as nodeModule from "node:module"
import * as path from "node:path"

/** Whether this Node has a compile cache to turn on (≥ 22.1). */
export const nodeHasCompileCache = typeof (nodeModule as { readonly enableCompileCache?: unknown }).enableCompileCache === "function"

/** An environment whose temp folder is `tmp`, without anything that turns the cache on or off. */
export const envWithTmp = (tmp: string): NodeJS.ProcessEnv => {
  const { NODE_COMPILE_CACHE: _on, NODE_DISABLE_COMPILE_CACHE: _off, ...env } = process.env
  return { ...env, TMPDIR: tmp }
}

/** How many files the compile cache holds in `tmp`. */
export const cachedFiles = (tmp: string): number => {
  const cache = path.join(tmp, "node-compile-cache")
  return fs.existsSync(cache) ? fs.readdirSync(cache, { recursive: true }).length : 0
}
