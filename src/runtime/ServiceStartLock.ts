/**
 * Who starts the upload service when none listens: a file beside its socket, made exclusively and
 * holding the pid of the process that took it, so that eight training processes starting at once
 * start one service while the others wait for it to listen. The service removes it once it listens
 * (or cannot); a lock whose holder is gone, or too old, is taken over.
 */
import * as fs from "node:fs"
import { processAlive } from "./RunDir.js"

const lockFile = (socketFile: string) => `${socketFile}.starting`

/**
 * Takes the right to start the service of `socketFile`: true for one caller at a time. A lock
 * whose holder is gone, or older than `staleMs`, is taken over (the service it started died
 * before it listened).
 */
export const take = (socketFile: string, staleMs: number): boolean => {
  const file = lockFile(socketFile)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx" })
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") return true // no lock to be had here (a read-only folder): start anyway
      try {
        const holder = Number(fs.readFileSync(file, "utf8"))
        const fresh = Date.now() - fs.statSync(file).mtimeMs < staleMs
        if (fresh && Number.isInteger(holder) && holder > 0 && processAlive(holder)) return false
        fs.unlinkSync(file)
      } catch {
        // gone meanwhile: try again
      }
    }
  }
  return false
}

/**
 * Ends the wait for the service to start: the service calls it once it listens (or failed to),
 * whoever took the lock (its starter may be gone); a starter whose service died calls it with its
 * own pid, to give up the lock only if it still holds it.
 */
export const release = (socketFile: string, holder?: number): void => {
  try {
    if (holder === undefined || fs.readFileSync(lockFile(socketFile), "utf8") === String(holder)) fs.unlinkSync(lockFile(socketFile))
  } catch {
    // not there: nothing to give up
  }
}
