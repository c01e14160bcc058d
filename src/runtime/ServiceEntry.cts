/**
 * The service process's entry point, forked by ServiceLink.ts as `dist/runtime/ServiceEntry.cjs`.
 * It is CommonJS for one reason: its first lines run before the event loop first turns. The
 * parent sends `OpenRun` right after forking, and Node emits an IPC message to whoever listens at
 * that moment; an ES module's imports take several turns to load, so a listener installed in
 * ServiceMain.ts would miss the messages of a parent that died early (seen: a parent SIGKILLed
 * 50 ms after the fork). Here every message and the disconnect are held until ServiceMain takes over.
 */
import nodeModule = require("node:module")

const pending: Array<unknown> = []
let disconnected = false
const hold = (message: unknown): void => void pending.push(message)
const gone = (): void => void (disconnected = true)
process.on("message", hold)
process.on("disconnect", gone)

// Node ≥ 22.1 keeps compiled code on disk: the service's modules then load ~15% faster (measured
// on Node 22: ~420 → ~360 ms), and every online training process forks a service. Synchronous, so
// it cannot let an IPC message through before the listeners above; absent from Node 20 (a no-op).
;(nodeModule as { readonly enableCompileCache?: () => unknown }).enableCompileCache?.()

void import("./ServiceMain.js").then(
  (service) =>
    service.start({
      // Called by ServiceMain in the same tick as it installs its own listeners: nothing is lost or seen twice.
      handOver: () => {
        process.off("message", hold)
        process.off("disconnect", gone)
        return { pending, disconnected }
      }
    }),
  () => process.exit(70)
)
