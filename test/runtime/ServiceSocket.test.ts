/**
 * Where the upload service's socket is (runtime/ServiceSocket.ts): in a folder of the user's own
 * in the temporary folder, named by the settings a service depends on; a folder open to others is
 * not used, and a missing temporary folder fails nothing. Each test points TMPDIR at a folder of
 * its own. And how its lines are read: each line as a message, and a connection the other side
 * resets (a service killed) ends the connection without throwing in the process that reads.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { onLines, socketPath } from "../../src/runtime/ServiceSocket.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("service-socket")
const tmpBefore = process.env["TMPDIR"]
afterEach(() => {
  if (tmpBefore === undefined) delete process.env["TMPDIR"]
  else process.env["TMPDIR"] = tmpBefore
})

const uid = process.getuid!()
/** A fresh folder to be the temp folder. */
const freshTmp = (): string => {
  const dir = temp.file("tmp")
  fs.mkdirSync(dir)
  return dir
}
const env = { XDG_CONFIG_HOME: "/config", STEPLOG_API_KEY: "sk-a" }

describe("socketPath", () => {
  it("is in a folder of the user's own (mode 0700) in the temp folder, the same for the same settings, another for others", () => {
    const tmp = freshTmp()
    process.env["TMPDIR"] = tmp
    const socket = socketPath("/srv/ServiceEntry.cjs", env)
    expect(path.dirname(socket)).toBe(path.join(tmp, `steplog-${uid}`))
    expect(fs.statSync(path.dirname(socket)).mode & 0o777).toBe(0o700)
    expect(socketPath("/srv/ServiceEntry.cjs", { ...env })).toBe(socket)
    expect(socketPath("/srv/ServiceEntry.cjs", { ...env, STEPLOG_API_KEY: "sk-b" })).not.toBe(socket)
    expect(socketPath("/srv/ServiceEntry.cjs", { ...env, XDG_CONFIG_HOME: "/other" })).not.toBe(socket)
    expect(socketPath("/elsewhere/ServiceEntry.cjs", env)).not.toBe(socket)
  })

  it("does not use a folder others may open: the process gets a folder of its own", () => {
    const tmp = freshTmp()
    process.env["TMPDIR"] = tmp
    const shared = path.join(tmp, `steplog-${uid}`)
    fs.mkdirSync(shared, { mode: 0o755 })
    fs.chmodSync(shared, 0o755)
    const socket = socketPath("/srv/ServiceEntry.cjs", env)
    expect(path.dirname(socket)).not.toBe(shared)
    expect(path.dirname(path.dirname(socket))).toBe(tmp)
    expect(fs.statSync(path.dirname(socket)).mode & 0o777).toBe(0o700)
  })

  it("fails nothing when the temp folder is missing: a path where nothing listens", () => {
    const tmp = path.join(freshTmp(), "missing")
    process.env["TMPDIR"] = tmp
    const socket = socketPath("/srv/ServiceEntry.cjs", env)
    expect(socket.startsWith(tmp)).toBe(true)
    expect(fs.existsSync(path.dirname(socket))).toBe(false)
  })
})

describe("onLines", () => {
  it("hands on each JSON line, and lets a reset connection close without an error event thrown", async () => {
    const server = net.createServer((socket) => {
      socket.write(`{"n":1}\nnot json\n`)
      // Once the client has written something this side will never read: a reset, not a close.
      socket.once("data", () => socket.resetAndDestroy())
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    try {
      const client = net.createConnection((server.address() as net.AddressInfo).port, "127.0.0.1")
      const errors: Array<string> = []
      client.on("error", (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message))
      const got: Array<unknown> = []
      onLines(client, (message) => {
        got.push(message)
        if (got.length === 2) client.write("unread\n")
      })
      await new Promise((resolve) => client.once("close", resolve))
      expect(got).toEqual([{ n: 1 }, "not json"])
      expect(errors).toEqual(["ECONNRESET"])
    } finally {
      server.close()
    }
  })
})
