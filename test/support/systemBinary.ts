/**
 * A program a test needs from the system rather than from npm (haproxy, from Debian's package):
 * its path when it is on the PATH. When it is missing the test is skipped with one line naming
 * the package that brings it, except under CI=true, where a missing program fails the test file:
 * CI (`.ci/run`) installs it, so a skip there would hide a test that never ran.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** The path of `name` on the PATH, or undefined (after the skip notice) when it is missing. */
export const systemBinary = (name: string, debianPackage: string): string | undefined => {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    if (dir === "") continue
    const candidate = path.join(dir, name)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  const notice = `${name} is not installed (Debian package "${debianPackage}": apt-get install ${debianPackage})`
  if (process.env["CI"] === "true") throw new Error(`${notice}; CI installs it, so its tests may not be skipped there`)
  console.warn(`skipping the tests that need ${notice}`)
  return undefined
}
