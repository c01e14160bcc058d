/**
 * Headless Chromium for the dashboard's browser tests and bench/dashboard.ts, driven by
 * playwright-core, which never downloads a browser: it runs the system's chromium (Debian's
 * package, which .ci/run installs), or the binary STEPLOG_CHROMIUM names.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { chromium, type Browser } from "playwright-core"

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** The Chromium binary to run: STEPLOG_CHROMIUM, else `chromium` on the PATH; an error saying how to get one. */
export const chromiumPath = (env: NodeJS.ProcessEnv = process.env): string => {
  const named = env["STEPLOG_CHROMIUM"]
  if (named !== undefined && named !== "") {
    if (isExecutable(named)) return named
    throw new Error(`STEPLOG_CHROMIUM names ${named}, which is not an executable file`)
  }
  const found = (env["PATH"] ?? "").split(path.delimiter).filter((dir) => dir !== "").map((dir) => path.join(dir, "chromium")).find(isExecutable)
  if (found !== undefined) return found
  throw new Error(
    "the dashboard's browser tests need Chromium, and playwright-core downloads none: install it " +
      "(`apt-get install chromium` on Debian) or set STEPLOG_CHROMIUM to a Chromium binary"
  )
}

/** Headless Chromium from `chromiumPath()`. */
export const launchChromium = (): Promise<Browser> => chromium.launch({ executablePath: chromiumPath(), headless: true })

/** The window every page opens with (and the docs' screenshots are taken at). */
export const viewport = { width: 1400, height: 900 } as const
