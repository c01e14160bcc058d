#!/usr/bin/env node
/**
 * The `steplog` bin. It turns on Node's on-disk compile cache (Node ≥ 22.1; Node 20 has none and
 * runs as before) and only then loads the command, Cli.ts: the cache serves the modules loaded
 * after it is on, and a command loads about a thousand of them, most from @effect.
 */
import * as nodeModule from "node:module"

// Absent from Node 20 and from its types; the cache goes where NODE_COMPILE_CACHE says, else to
// the temp folder, and NODE_DISABLE_COMPILE_CACHE turns it off.
;(nodeModule as { readonly enableCompileCache?: () => unknown }).enableCompileCache?.()

await import("./Cli.js")
