/** A full garbage collection on demand, so that `heapUsed` counts live objects only. */
import * as v8 from "node:v8"
import * as vm from "node:vm"

/**
 * Returns `gc`. `--expose-gc` may be set at run time, and a new context then sees `gc`: no
 * vitest setting is needed for the files that use it.
 */
export const garbageCollector = (): (() => void) => {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as () => void
}
