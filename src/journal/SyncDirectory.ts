/**
 * Makes a directory's entries durable: a file made or renamed in it survives a power cut once its
 * directory is synced. Fails where the directory cannot be opened or synced; a caller for whom
 * that is only a lost saving (the upload cursor) ignores the failure.
 */
import * as fs from "node:fs"

/** fsync of the directory `dir`. */
export const syncDirectory = async (dir: string): Promise<void> => {
  const handle = await fs.promises.open(dir, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
