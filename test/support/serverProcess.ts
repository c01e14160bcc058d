/**
 * `steplog server` as a process of its own (the built CLI), for the tests where the claim is about
 * server processes: stopping on a signal, replicas behind a balancer. `killChildren` (afterEach)
 * ends any the test left running.
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { startNode, type Child } from "./child.js"

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "cli", "main.js")

/** A server process and the URL it listens on. */
export interface ServerProcess {
  readonly child: Child
  readonly baseUrl: string
}

/**
 * Starts `steplog server <args>` (with `--port`, `--data` or `--database` among them) with `env`
 * over this environment, and waits until it says where it listens.
 */
export const startServerProcess = async (args: ReadonlyArray<string>, env: { readonly [name: string]: string }, cwd: string): Promise<ServerProcess> => {
  const child = startNode(main, ["server", ...args], { ...process.env, ...env }, cwd)
  const line = await child.waitForLine((text) => text.includes("listening on"), 30_000)
  return { child, baseUrl: /listening on (http:\/\/[^\s,]+)/.exec(line)![1]! }
}
