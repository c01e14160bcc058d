/**
 * examples/train.ts run as its reader would run it, online against a server on 127.0.0.1 and for
 * one epoch: the example keeps working as steplog changes, and what it logs reaches the server.
 */
import { execFile } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import * as Schema from "effect/Schema"
import { expect, it } from "vitest"
import { History, RunList } from "../../src/schemas/Wire.js"
import { useTempDir } from "../support/tempDir.js"
import { useTestServer } from "../support/testServer.js"

const temp = useTempDir("example-train")
const server = useTestServer(temp.dir)
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** GET a route of the "digits" project, decoded with the schema the server answers with. */
const get = async <A, I>(route: string, schema: Schema.Schema<A, I>): Promise<A> => {
  const response = await fetch(`${server.baseUrl}/api/v1/projects/digits${route}`, { headers: { authorization: `Bearer ${server.key}` } })
  expect(response.status).toBe(200)
  return Schema.decodeUnknownSync(schema)(await response.json())
}

it("trains a network on digits, logging loss and acc at every step and val/* at the epoch's end, and uploads it", async () => {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("STEPLOG_")))
  const env = { ...inherited, XDG_CONFIG_HOME: temp.dir(), STEPLOG_MODE: "online", STEPLOG_BASE_URL: server.baseUrl, STEPLOG_DIR: temp.file("runs") }
  // The key comes from the credentials file the server's first start wrote, as on a user's machine.
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "examples/train.ts", "--epochs", "1", "--hidden", "16", "--lr", "0.01"], { cwd: root, env, timeout: 60_000 })
  expect(stdout).toMatch(/: best val\/acc 0\.\d{3}; \d+ records uploaded\n$/)

  const { runs } = await get("/runs", RunList)
  expect(runs).toHaveLength(1)
  const run = runs[0]!
  expect(run).toMatchObject({ state: "finished", exitCode: 0, config: { lr: 0.01, hidden: 16, batch: 32, epochs: 1 }, tags: ["mnist", "tfjs", "mlp"] })
  const { rows } = await get(`/runs/${run.runId}/history`, History)
  expect(rows.map((row) => row.step)).toEqual(rows.map((_, i) => i))
  for (const row of rows) expect(row.values).toEqual(expect.objectContaining({ loss: expect.any(Number), acc: expect.any(Number) }))
  const last = rows.at(-1)!.values
  expect(last).toMatchObject({ "val/acc": run.summary["best_val_acc"] })
  // Ten classes: guessing scores about 0.1; one epoch of training scores far above it.
  expect(last["val/acc"]).toBeGreaterThan(0.5)
  expect(rows.slice(0, -1).every((row) => !("val/acc" in row.values))).toBe(true)
})
