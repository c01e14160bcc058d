/**
 * A run whose disk fills up, on a real full disk: a small tmpfs mounted for the test (root only;
 * elsewhere the tests are skipped with one line saying so, and under CI=true they fail instead).
 * `log()` never throws, memory held for unwritten records stays under `maxUnwrittenMb`, the
 * journal stays whole and its seqs contiguous, `finish()` tells how many records were written and
 * dropped and why, and writes resume by themselves once space returns.
 */
import * as Either from "effect/Either"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { init } from "../../src/index.js"
import { readJournal } from "../../src/journal/JournalReader.js"
import { garbageCollector } from "../support/gc.js"
import { poll } from "../support/service.js"
import { useSteplogWarnings } from "../support/warnings.js"

/** Mounted disks, unmounted after the file's tests. */
const mounted: Array<string> = []
afterAll(() => {
  for (const dir of mounted.splice(0)) {
    execFileSync("umount", [dir])
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

/** A fresh tmpfs of `mib` MiB, or why one cannot be mounted here. */
const tmpfs = (mib: number): Either.Either<string, string> => {
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

const probe = tmpfs(1)
if (Either.isLeft(probe)) {
  if (process.env["CI"] === "true") throw new Error(`test/runtime/DiskFull.test.ts: ${probe.left}`)
  console.warn(`skipping test/runtime/DiskFull.test.ts: ${probe.left}`)
}

/** The records of the run journal in `dir` (undamaged) and their seqs. */
const journalIn = (dir: string) => {
  const scan = Either.getOrThrow(readJournal(path.join(dir, "journal.slog")))
  expect(scan.damage).toEqual([])
  return scan.records
}

describe.skipIf(Either.isLeft(probe))("a full disk", () => {
  const warnings = useSteplogWarnings()

  it("costs the newest rows past maxUnwrittenMb, never a throw or unbounded memory; finish() says how many were written and dropped, and why", async () => {
    const disk = Either.getOrThrow(tmpfs(3))
    const collectGarbage = garbageCollector()
    const run = await init({ dir: disk, mode: "offline", console: "off", maxUnwrittenMb: 2 })
    collectGarbage()
    const held = () => {
      const usage = process.memoryUsage()
      return usage.heapUsed + usage.arrayBuffers
    }
    const baseline = held()
    let peak = 0
    const ROWS = 400_000
    for (let i = 0; i < ROWS; i++) {
      run.log({ loss: 1 / (i + 1), acc: i / ROWS })
      if ((i + 1) % 50_000 === 0) {
        collectGarbage()
        peak = Math.max(peak, held() - baseline)
      }
    }
    const result = await run.finish()

    // The run record, the rows, the summary and the exit record.
    expect(result.records).toBe(ROWS + 3)
    expect(result.written + result.dropped).toBe(result.records)
    expect(result.dropped).toBeGreaterThan(ROWS / 2)
    expect(result.dropReason).toMatch(/ENOSPC|no space/i)
    expect(result).toMatchObject({ uploaded: false, pending: result.written })
    const records = journalIn(run.dir)
    expect(records).toHaveLength(result.written)
    expect(records.map((record) => record.seq)).toEqual(records.map((_, i) => i))
    // 2 MiB of held frames, and the rest of the run's working set.
    expect(peak).toBeLessThan(2 * 2 ** 20 + 16 * 2 ** 20)
    const told = await warnings.settled()
    expect(told.filter((message) => message.includes("held in memory"))).toHaveLength(1)
    expect(told.filter((message) => message.includes("wait for the disk"))).toHaveLength(1)
  })

  it("writes what it held by itself once space returns: the journal whole, every row in it, nothing dropped", async () => {
    const disk = Either.getOrThrow(tmpfs(2))
    const filler = path.join(disk, "filler")
    fs.writeFileSync(filler, Buffer.alloc(1536 * 1024))
    const run = await init({ dir: path.join(disk, "runs"), mode: "offline", console: "off" })
    let logged = 0
    await poll("the disk to refuse a write", () => {
      for (let i = 0; i < 1_000; i++) run.log({ loss: 1 / ++logged })
      return warnings.now().some((message) => message.includes("held in memory")) ? true : undefined
    })
    fs.rmSync(filler)
    for (let i = 0; i < 100; i++) run.log({ loss: 1 / ++logged })
    // Before finish(): the next flush writes what was held.
    await poll("every row in the journal", () => (journalIn(run.dir).length === logged + 1 ? true : undefined))
    expect(await run.finish()).toMatchObject({ records: logged + 3, written: logged + 3, dropped: 0 })
    const records = journalIn(run.dir)
    expect(records.map((record) => record.seq)).toEqual(records.map((_, i) => i))
    expect(records.filter((record) => record.kind === "history")).toHaveLength(logged)
    expect((await warnings.settled()).filter((message) => message.includes("takes journal writes again"))).toHaveLength(1)
  })
})
