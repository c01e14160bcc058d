/**
 * haproxy in front of steplog server processes, as a team would run replicas: round-robin over
 * the backends, each health-checked on /healthz every 200 ms (a dead one is taken out, a restarted
 * one back in), on a free port of 127.0.0.1. The test that starts it stops it.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { freePort } from "./freePort.js"
import { poll } from "./poll.js"

const config = (port: number, backends: ReadonlyArray<number>) => `global
  maxconn 512
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  retries 2
  option redispatch
frontend steplog
  bind 127.0.0.1:${port}
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 200ms fall 1 rise 1
${backends.map((backend, i) => `  server replica${i} 127.0.0.1:${backend} check`).join("\n")}
`

/** A running haproxy: its URL, and `stop`. */
export interface Balancer {
  readonly url: string
  readonly stop: () => Promise<void>
}

/** Starts `haproxy` (the binary at `binary`) over the servers on `backends` (ports of 127.0.0.1); `dir` holds its config. */
export const startHaproxy = async (binary: string, backends: ReadonlyArray<number>, dir: string): Promise<Balancer> => {
  const port = await freePort()
  const file = path.join(dir, `haproxy-${port}.cfg`)
  fs.writeFileSync(file, config(port, backends))
  const child: ChildProcess = spawn(binary, ["-db", "-f", file], { stdio: ["ignore", "ignore", "pipe"] })
  let log = ""
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (log += chunk))
  const url = `http://127.0.0.1:${port}`
  await poll(`haproxy listening on ${url}`, async () => {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}: ${log}`)
    return await new Promise<true | undefined>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => (socket.destroy(), resolve(true)))
      socket.on("error", () => resolve(undefined))
    })
  })
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once("close", () => resolve())
        child.kill("SIGKILL")
      })
  }
}
