/**
 * Small real disks that fill up: tmpfs mounts for the tests of a full disk (root only). Where
 * mounting fails, `tmpfsUnavailable` says why once, so a test file can skip with that one line
 * (and fail instead under CI=true, which runs as root). Every disk is unmounted after its file.
 */
import * as Either from "effect/Either"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

const mounted: Array<string> = []
afterAll(() => {
  for (const dir of mounted.splice(0)) {
    execFileSync("umount", ["--lazy", dir])
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

/** A fresh tmpfs of `mib` MiB, or why one cannot be mounted here. */
export const tmpfs = (mib: number): Either.Either<string, string> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "steplog-full-disk-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${mib}m`, "tmpfs", dir], { stdio: "pipe" })
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true })
    return Either.left(`mounting a tmpfs failed (${String((error as Error).message).split("\n")[0]}); these tests need root`)
  }
  mounted.push(dir)
  return Either.right(dir)
}

/** Gives the tmpfs at `dir` a new size: space returns to a full disk. */
export const resize = (dir: string, mib: number): void => {
  execFileSync("mount", ["-o", `remount,size=${mib}m`, dir], { stdio: "pipe" })
}

/**
 * Why the tests of `file` cannot run here (no tmpfs can be mounted), said once on stderr; undefined
 * when they can. Under CI=true it throws instead: CI runs as root, so a skip there hides a fault.
 */
export const tmpfsUnavailable = (file: string): string | undefined => {
  const probe = tmpfs(1)
  if (Either.isRight(probe)) return undefined
  if (process.env["CI"] === "true") throw new Error(`${file}: ${probe.left}`)
  console.warn(`skipping ${file}: ${probe.left}`)
  return probe.left
}
