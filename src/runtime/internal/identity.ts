/** Where a run comes from: generated ids and names, and the git commit. */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { RunId } from "../../schemas/Record.js"

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

/**
 * A random 8-character run id (41 bits): enough that runs of one project do not collide. Its
 * letters and digits make it a RunId by construction, so no schema is loaded to brand it.
 */
export const generateRunId = (): RunId =>
  Array.from(randomBytes(8), (byte) => ALPHABET[byte % ALPHABET.length]).join("") as RunId

const ADJECTIVES = ["brisk", "calm", "bold", "quiet", "swift", "lucid", "eager", "steady", "bright", "gentle", "keen", "vivid"]
const NOUNS = ["river", "summit", "forest", "comet", "harbor", "meadow", "canyon", "glacier", "falcon", "orbit", "ember", "delta"]

/** A readable run name such as `swift-comet-7`, numbered after the runs already in the directory. */
export const generateRunName = (runsSoFar: number): string => {
  const [a, b] = randomBytes(2)
  return `${ADJECTIVES[a! % ADJECTIVES.length]}-${NOUNS[b! % NOUNS.length]}-${runsSoFar + 1}`
}

/** The commit checked out in the git work tree around `cwd`, read from `.git` without running git. */
export const gitCommit = (cwd: string): string | null => {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const gitDir = path.join(dir, ".git")
    if (fs.existsSync(gitDir)) {
      try {
        const head = fs.readFileSync(path.join(gitDir, "HEAD"), "utf8").trim()
        if (!head.startsWith("ref: ")) return head
        const ref = head.slice(5)
        const loose = path.join(gitDir, ref)
        if (fs.existsSync(loose)) return fs.readFileSync(loose, "utf8").trim()
        const packed = fs.readFileSync(path.join(gitDir, "packed-refs"), "utf8")
        return packed.split("\n").find((line) => line.endsWith(` ${ref}`))?.split(" ")[0] ?? null
      } catch {
        return null
      }
    }
    if (path.dirname(dir) === dir) return null
  }
}

