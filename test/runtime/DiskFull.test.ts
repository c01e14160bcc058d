/**
 * A run whose disk fills up, on a real full disk: a small tmpfs mounted for the test (root only;
 * elsewhere skipped with one line saying so; under CI=true they fail instead: support/tmpfs.ts).
 * `log()` never throws, memory held for unwritten records stays under `maxUnwrittenMb`, the
 * journal stays whole and its seqs contiguous, `finish()` tells how many records were written and
 * dropped and why, and writes resume by themselves once space returns.
 */
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { init } from "../../src/index.js"
import { readJournal } from "../../src/journal/JournalReader.js"
import { garbageCollector } from "../support/gc.js"
import { poll } from "../support/poll.js"
import { tmpfs, tmpfsUnavailable } from "../support/tmpfs.js"
import { useSteplogWarnings } from "../support/warnings.js"

const unavailable = tmpfsUnavailable("test/runtime/DiskFull.test.ts")

/** The records of the run journal in `dir` (undamaged) and their seqs. */
const journalIn = (dir: string) => {
  const scan = Either.getOrThrow(readJournal(path.join(dir, "journal.slog")))
  expect(scan.damage).toEqual([])
  return scan.records
}

describe.skipIf(unavailable !== undefined)("a full disk", () => {
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
