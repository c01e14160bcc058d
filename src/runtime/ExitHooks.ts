/**
 * Ends open runs when the process goes down without `finish()`: a normal exit, `process.exit(n)`,
 * an uncaught exception (all three emit "exit") and SIGINT / SIGTERM / SIGHUP. Each run is ended
 * synchronously, so every logged record is in its journal before the process is gone.
 *
 * A signal handler would otherwise keep the process alive, so when ours is the only handler it
 * re-raises the signal after the runs are written: the process ends exactly as it would have
 * without steplog (same signal, same exit status). When the program has handlers of its own, the
 * decision is theirs. Listeners are installed while a run is open and removed after the last one.
 */

/** What the hooks need of a run. */
export interface Closable {
  finishSync(exitCode: number, signal: string | null): void
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const
const SIGNAL_NUMBERS: { readonly [signal: string]: number } = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }

const open = new Set<Closable>()

const closeAll = (exitCode: number, signal: string | null): void => {
  for (const run of [...open]) run.finishSync(exitCode, signal)
  open.clear()
  uninstall()
}

const onExit = (code: number): void => closeAll(code, null)

const onSignal = (signal: NodeJS.Signals): void => {
  const ours = process.listenerCount(signal) === 1
  closeAll(128 + (SIGNAL_NUMBERS[signal] ?? 0), signal)
  if (ours) process.kill(process.pid, signal)
}

const install = (): void => {
  process.on("exit", onExit)
  for (const signal of SIGNALS) process.on(signal, onSignal)
}

const uninstall = (): void => {
  process.off("exit", onExit)
  for (const signal of SIGNALS) process.off(signal, onSignal)
}

/** Watches `run` until `release` is called (its `finish()`). */
export const watch = (run: Closable): (() => void) => {
  if (open.size === 0) install()
  open.add(run)
  return () => {
    if (open.delete(run) && open.size === 0) uninstall()
  }
}
