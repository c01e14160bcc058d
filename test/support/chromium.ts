/**
 * Headless Chromium for the dashboard's browser tests and bench/dashboard.ts, driven by
 * playwright-core, which never downloads a browser. The binary is the one STEPLOG_CHROMIUM names,
 * else a `chromium` on the PATH, else the one the `@sparticuz/chromium` devDependency ships inside
 * its npm tarball (unpacked into the temp folder on first use): nothing to install by hand.
 *
 * Under vitest, chromiumSetup.ts resolves it once per test run (test files would race to unpack it);
 * outside vitest (bench, a script) `launchChromium()` resolves it itself.
 */
import { execFileSync } from "node:child_process"
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

/** Whether `file` runs: `--version` answers in ~10 ms. */
const runs = (file: string): boolean => {
  try {
    execFileSync(file, ["--version"], { stdio: "ignore", timeout: 30_000 })
    return true
  } catch {
    return false
  }
}

/**
 * The packaged Chromium, unpacked when missing. The package unpacks straight to its final path and
 * takes any file there as done, so a file left by an interrupted unpack is removed and unpacked again.
 */
const packagedChromium = async (): Promise<string> => {
  const missing = (why: string) =>
    new Error(`the dashboard's browser tests need Chromium, and ${why}: install Chromium and put \`chromium\` on the PATH, or set STEPLOG_CHROMIUM to a Chromium binary`)
  if (process.platform !== "linux" || process.arch !== "x64") throw missing(`the one @sparticuz/chromium ships is for Linux x64 (this is ${process.platform} ${process.arch})`)
  const { default: packaged } = await import("@sparticuz/chromium")
  const file = await packaged.executablePath()
  if (runs(file)) return file
  fs.rmSync(file, { force: true })
  const again = await packaged.executablePath()
  if (runs(again)) return again
  throw missing(`the one @sparticuz/chromium ships does not run here (${again})`)
}

/** The Chromium binary to run: STEPLOG_CHROMIUM, else `chromium` on the PATH, else the packaged one; an error saying what to do. */
export const chromiumPath = async (env: NodeJS.ProcessEnv = process.env): Promise<string> => {
  const named = env["STEPLOG_CHROMIUM"]
  if (named !== undefined && named !== "") {
    if (isExecutable(named)) return named
    throw new Error(`STEPLOG_CHROMIUM names ${named}, which is not an executable file`)
  }
  const found = (env["PATH"] ?? "").split(path.delimiter).filter((dir) => dir !== "").map((dir) => path.join(dir, "chromium")).find(isExecutable)
  return found ?? (await packagedChromium())
}

/** How to launch: which binary (else `chromiumPath()`), and the browser's environment (else this process's). */
export interface LaunchOptions {
  readonly executablePath?: string
  readonly env?: NodeJS.ProcessEnv
}

/**
 * Headless Chromium with playwright's default switches, which already keep it off the network
 * (--disable-background-networking, --disable-component-update, --no-first-run, --disable-sync).
 * Not the packaged browser's own `args`: they turn off web security, which the CSP tests check.
 */
export const launchChromium = async (options: LaunchOptions = {}): Promise<Browser> =>
  chromium.launch({
    executablePath: options.executablePath ?? (await chromiumPath()),
    headless: true,
    ...(options.env !== undefined ? { env: options.env } : {})
  })

/** The window every page opens with (and the docs' screenshots are taken at). */
export const viewport = { width: 1400, height: 900 } as const
