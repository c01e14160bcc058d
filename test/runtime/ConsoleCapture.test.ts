/**
 * Console capture: what the process prints while a run is open reaches the run's journal as
 * `output` records, in one seq order with its rows, and still reaches the terminal unchanged; the
 * streams' own write functions are back in place once the run has ended. First in this process,
 * with stand-ins for the terminal (the write functions the capture finds and must call), then in
 * real child processes (a normal exit, SIGKILL), then online, through the server's output route.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { Console } from "node:console"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { readJournal } from "../../src/journal/JournalReader.js"
import { MAX_RECORD_CHARS } from "../../src/runtime/ConsoleCapture.js"
import { openRun } from "../../src/runtime/OpenRun.js"
import { ActiveRun, type Run } from "../../src/runtime/Run.js"
import type { OutputRecord, Record } from "../../src/schemas/Record.js"
import type { InitOptions } from "../../src/schemas/Settings.js"
import { killChildren, startFixture } from "../support/child.js"
import { poll } from "../support/poll.js"
import { expectContiguous, journalOf } from "../support/runJournal.js"
import { useTempDir } from "../support/tempDir.js"
import { useTestServer } from "../support/testServer.js"

const temp = useTempDir("console")

/** The run id of the fixture's runs, each under a root of its own. */
const ID = "printer"

type Stream = "stdout" | "stderr"
const STREAMS = ["stdout", "stderr"] as const

/**
 * Stand-ins for the terminal: each stream's write becomes one that notes its arguments and calls
 * the callback, as a stream does; the streams' own write is put back after the test.
 */
const terminal = (() => {
  let saved: Array<readonly [Stream, PropertyDescriptor | undefined]> = []
  const state = {
    writes: [] as Array<{ readonly stream: Stream; readonly args: ReadonlyArray<unknown> }>,
    /** The write functions the capture finds when a run opens. */
    write: {} as { [S in Stream]: NodeJS.WriteStream["write"] }
  }
  beforeEach(() => {
    state.writes = []
    saved = STREAMS.map((stream) => [stream, Object.getOwnPropertyDescriptor(process[stream], "write")])
    for (const stream of STREAMS) {
      const write = function(...args: Array<unknown>) {
        state.writes.push({ stream, args })
        const callback = args.find((arg) => typeof arg === "function") as (() => void) | undefined
        callback?.()
        return true
      } as NodeJS.WriteStream["write"]
      process[stream].write = write
      state.write[stream] = write
    }
  })
  afterEach(() => {
    for (const [stream, descriptor] of saved) {
      if (descriptor === undefined) delete (process[stream] as { write?: unknown }).write
      else Object.defineProperty(process[stream], "write", descriptor)
    }
  })
  return state
})()

/** Runs opened by the current test, finished after it (before the terminal is put back). */
const opened: Array<Run> = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((run) => run.finish()))
})

/** An offline run in a fresh directory, settings from `options` only (not this machine's STEPLOG_*). */
const open = async (options: InitOptions = {}): Promise<Run> => {
  const run = await Effect.runPromise(openRun({ mode: "offline", dir: temp.file("runs"), ...options }, { env: {} }))
  opened.push(run)
  return run
}

const journal = (run: Run): ReadonlyArray<Record> => {
  const scan = Either.getOrThrow(readJournal(path.join(run.dir, "journal.slog")))
  expect(scan.damage).toEqual([])
  return scan.records
}

const outputOf = (records: ReadonlyArray<Record>) =>
  records.filter((record): record is OutputRecord => record.kind === "output").map(({ stream, text }) => ({ stream, text }))

/** A console printing to the process's streams (vitest gives tests a console of its own). */
const consoleOfProcess = () => new Console({ stdout: process.stdout, stderr: process.stderr })

describe("a run capturing the console", () => {
  it("records console.log, console.error and direct writes as output records between the rows logged around them, and still prints each write as given", async () => {
    const run = await open()
    const out = consoleOfProcess()
    const called: Array<string> = []
    const bytes = Buffer.from("bytes ✓\n")
    const onBytes = () => called.push("bytes")
    const onLine = () => called.push("line")

    out.log("epoch", 1)
    run.log({ loss: 0.5 })
    out.error("checked 1")
    process.stdout.write(bytes, onBytes)
    process.stdout.write("partial ")
    process.stdout.write("line\n", "utf8", onLine)
    run.log({ loss: 0.4 })
    await run.finish()

    const records = journal(run)
    expect(records.map((record) => record.seq)).toEqual(records.map((_, i) => i))
    expect(records.map((record) => (record.kind === "output" ? `${record.stream}: ${record.text}` : record.kind))).toEqual([
      "run",
      "stdout: epoch 1\n",
      "history",
      "stderr: checked 1\n",
      "stdout: bytes ✓\n",
      "stdout: partial line\n",
      "history",
      "summary",
      "exit"
    ])
    // The terminal got every write with its own arguments, callbacks included, and they were called.
    expect(terminal.writes.map(({ stream, args }) => [stream, ...args])).toEqual([
      // Console passes a callback of its own.
      ["stdout", "epoch 1\n", expect.any(Function)],
      ["stderr", "checked 1\n", expect.any(Function)],
      ["stdout", bytes, onBytes],
      ["stdout", "partial "],
      ["stdout", "line\n", "utf8", onLine]
    ])
    expect(terminal.writes[2]!.args[0]).toBe(bytes)
    expect(called).toEqual(["bytes", "line"])
    for (const stream of STREAMS) expect(process[stream].write).toBe(terminal.write[stream])
  })

  it("decodes a character cut across two Buffer chunks, and a string in another encoding", async () => {
    const run = await open()
    const e = Buffer.from("é\n")
    process.stdout.write(e.subarray(0, 1))
    process.stdout.write(e.subarray(1))
    process.stdout.write(new Uint8Array(Buffer.from("typed array\n")))
    process.stdout.write(Buffer.from("hex ✓\n").toString("hex"), "hex")
    // A cut character followed by a string: the lost byte shows as U+FFFD, as a terminal shows it.
    process.stderr.write(e.subarray(0, 1))
    process.stderr.write("after\n")
    await run.finish()
    expect(outputOf(journal(run))).toEqual([
      { stream: "stdout", text: "é\n" },
      { stream: "stdout", text: "typed array\n" },
      { stream: "stdout", text: "hex ✓\n" },
      { stream: "stderr", text: "\ufffdafter\n" }
    ])
  })

  it("splits a write longer than a record holds, at a newline when one is near, never inside a character", async () => {
    const run = await open()
    const line = "x".repeat(MAX_RECORD_CHARS - 10) + "\n"
    const long = line + "y".repeat(2 * MAX_RECORD_CHARS + 5) + "\n"
    // Off by one, so that a cut at the limit would fall between the two halves of an emoji.
    const emoji = "a" + "😀".repeat(MAX_RECORD_CHARS) + "\n"
    process.stdout.write(long)
    process.stderr.write(emoji)
    await run.finish()
    const outputs = outputOf(journal(run))
    const texts = (stream: Stream) => outputs.filter((output) => output.stream === stream).map((output) => output.text)
    expect(texts("stdout").join("")).toBe(long)
    expect(texts("stdout")[0]).toBe(line)
    expect(texts("stdout").length).toBe(4)
    expect(texts("stderr").join("")).toBe(emoji)
    for (const { text } of outputs) {
      expect(text.length).toBeLessThanOrEqual(MAX_RECORD_CHARS)
      // UTF-8 has no half characters: a text that survives the round trip has none either.
      expect(Buffer.from(text).toString()).toBe(text)
    }
  })

  it("holds a line until its newline, a write to the other stream, the hold time or the end of the run", async () => {
    const run = await open({ durability: "sync", flushIntervalMs: 20 })
    process.stdout.write("loading")
    process.stdout.write(".")
    process.stdout.write(".\n")
    process.stdout.write("half")
    process.stderr.write("warning\n")
    process.stdout.write("waiting")
    // No newline, no other write: the hold time (flushIntervalMs) lets it go on its own.
    await poll("the held \"waiting\" to reach the journal", () => outputOf(journal(run)).find((output) => output.text === "waiting"))
    process.stderr.write("cut short")
    await run.finish()
    expect(outputOf(journal(run))).toEqual([
      { stream: "stdout", text: "loading..\n" },
      { stream: "stdout", text: "half" },
      { stream: "stderr", text: "warning\n" },
      { stream: "stdout", text: "waiting" },
      { stream: "stderr", text: "cut short" }
    ])
    expect(journal(run).slice(-3).map((record) => record.kind)).toEqual(["output", "summary", "exit"])
  })

  it("is ended by the exit hooks' path too: open lines recorded, the streams' own write put back", async () => {
    const run = await open()
    expect(run).toBeInstanceOf(ActiveRun)
    process.stdout.write("last words")
    ;(run as ActiveRun).finishSync(1, null)
    expect(outputOf(journal(run))).toEqual([{ stream: "stdout", text: "last words" }])
    for (const stream of STREAMS) expect(process[stream].write).toBe(terminal.write[stream])
  })

  it("belongs to the first run that captures; a second run open meanwhile records nothing printed", async () => {
    const first = await open()
    const second = await open()
    process.stdout.write("seen by the first\n")
    await first.finish()
    for (const stream of STREAMS) expect(process[stream].write).toBe(terminal.write[stream])
    process.stdout.write("seen by nobody\n")
    await second.finish()
    expect(outputOf(journal(first))).toEqual([{ stream: "stdout", text: "seen by the first\n" }])
    expect(outputOf(journal(second))).toEqual([])
    expect(terminal.writes.map(({ args }) => args[0])).toEqual(["seen by the first\n", "seen by nobody\n"])
  })

  it("leaves a write put on top of its own in place, and passes writes on beneath it", async () => {
    const run = await open()
    const captured = process.stdout.write
    const onTop = function(this: unknown, ...args: Array<unknown>) {
      return Reflect.apply(captured, this, args) as boolean
    } as NodeJS.WriteStream["write"]
    process.stdout.write = onTop
    await run.finish()
    expect(process.stdout.write).toBe(onTop)
    process.stdout.write("after the run\n")
    expect(terminal.writes.map(({ args }) => args[0])).toEqual(["after the run\n"])
    expect(outputOf(journal(run))).toEqual([])
  })
})

describe("console: \"off\"", () => {
  it("records nothing and leaves the streams' write alone", async () => {
    const run = await open({ console: "off" })
    for (const stream of STREAMS) expect(process[stream].write).toBe(terminal.write[stream])
    consoleOfProcess().log("not recorded")
    await run.finish()
    expect(outputOf(journal(run))).toEqual([])
    expect(terminal.writes).toHaveLength(1)
  })
})

describe("a process that prints", () => {
  afterEach(killChildren)
  const printed = (epochs: number) => [
    ...Array.from({ length: epochs }, (_, k) => [
      { stream: "stdout", text: `epoch ${k + 1}\n` },
      { stream: "stderr", text: `checked ${k + 1}\n` }
    ]).flat(),
    { stream: "stdout", text: "bytes ✓\n" }
  ]

  it("leaves its output in the journal, between its rows, when it exits without finish()", async () => {
    const root = temp.file("runs")
    fs.mkdirSync(root)
    const child = startFixture("printLines.mjs", { STEPLOG_DIR: root, STEPLOG_RUN_ID: ID, END: "return" }, root)
    expect(await child.exited(), child.stderr()).toEqual({ code: 0, signal: null })
    const { records } = journalOf(root, ID).scan
    expectContiguous(records)
    expect(outputOf(records)).toEqual(printed(3))
    expect(records.map((record) => record.kind)).toEqual([
      "run",
      ...Array.from({ length: 3 }, () => ["output", "history", "output"]).flat(),
      "output",
      "summary",
      "exit"
    ])
  })

  it("leaves its output in the journal when SIGKILL ends it (durability sync)", async () => {
    const root = temp.file("runs")
    fs.mkdirSync(root)
    const child = startFixture("printLines.mjs", { STEPLOG_DIR: root, STEPLOG_RUN_ID: ID, END: "idle", STEPLOG_DURABILITY: "sync" }, root)
    await child.waitForLine((line) => line === "printed")
    child.process.kill("SIGKILL")
    expect(await child.exited()).toEqual({ code: null, signal: "SIGKILL" })
    const { records } = journalOf(root, ID).scan
    expectContiguous(records)
    expect(outputOf(records)).toEqual(printed(3))
    expect(records.some((record) => record.kind === "exit")).toBe(false)
  })

  it("gets its streams' own write back from finish()", async () => {
    const root = temp.file("runs")
    fs.mkdirSync(root)
    const child = startFixture("printLines.mjs", { STEPLOG_DIR: root, STEPLOG_RUN_ID: ID, END: "finish" }, root)
    expect(await child.waitForLine((line) => line.startsWith("restored "))).toBe("restored true")
    expect(outputOf(journalOf(root, ID).scan.records)).toEqual(printed(3))
  })
})

describe("an online run that prints", () => {
  const server = useTestServer(temp.dir)
  afterEach(killChildren)

  it("shows its output at the server's output route, in order", async () => {
    const root = temp.file("runs")
    fs.mkdirSync(root)
    const child = startFixture("printLines.mjs", {
      STEPLOG_MODE: "online",
      STEPLOG_BASE_URL: server.baseUrl,
      STEPLOG_API_KEY: server.key,
      STEPLOG_PROJECT: "console",
      STEPLOG_DIR: root,
      STEPLOG_RUN_ID: ID,
      XDG_CONFIG_HOME: temp.file("config"),
      EPOCHS: "2",
      END: "finish"
    }, root)
    await child.waitForLine((line) => line.startsWith("restored "))
    const response = await fetch(`${server.baseUrl}/api/v1/projects/console/runs/${ID}/output`, { headers: { authorization: `Bearer ${server.key}` } })
    expect(response.status).toBe(200)
    const { lines } = (await response.json()) as { lines: Array<{ seq: number; stream: string; text: string }> }
    expect(lines.map(({ stream, text }) => ({ stream, text }))).toEqual([
      { stream: "stdout", text: "epoch 1\n" },
      { stream: "stderr", text: "checked 1\n" },
      { stream: "stdout", text: "epoch 2\n" },
      { stream: "stderr", text: "checked 2\n" },
      { stream: "stdout", text: "bytes ✓\n" }
    ])
    expect(lines.map((line) => line.seq)).toEqual([1, 3, 4, 6, 7])
  })
})
