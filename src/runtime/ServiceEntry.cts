/**
 * The service process's entry point, forked by ServiceLink.ts as `dist/runtime/ServiceEntry.cjs`.
 * It is CommonJS for one reason: its first lines run before the event loop first turns. The
 * parent sends `OpenRun` right after forking, and Node emits an IPC message to whoever listens at
 * that moment; an ES module's imports take several turns to load, so a listener installed in
 * ServiceMain.ts would miss the messages of a parent that died early (seen: a parent SIGKILLed
 * 50 ms after the fork). Here every message and the disconnect are held until ServiceMain takes over.
 */
const pending: Array<unknown> = []
let disconnected = false
const hold = (message: unknown): void => void pending.push(message)
const gone = (): void => void (disconnected = true)
process.on("message", hold)
process.on("disconnect", gone)

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
