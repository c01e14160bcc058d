/**
 * Where the machine's upload service listens, and how messages travel there: one JSON line each
 * (the schemas of schemas/Ipc.ts) over a Unix socket.
 *
 * One service serves every online run of every training process that would start an identical
 * one: the same user, Node binary and steplog build, and the same upload settings read from the
 * environment (the credentials file, STEPLOG_API_KEY, STEPLOG_UPLOAD_DEADLINE_MS). The socket's
 * name is a hash of those, in the system's temporary folder. So eight training processes of a
 * sweep share one service (one heap, one JIT, one event loop for eight uploads: bench/concurrent.ts)
 * instead of starting eight, while a process with other settings gets a service of its own.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { credentialsPath } from "../actors/Credentials.js"

/** The socket of the service that `servicePath`, spawned with `env`, would be. */
export const socketPath = (servicePath: string, env: Readonly<Record<string, string | undefined>>): string => {
  const identity = [
    process.getuid?.() ?? 0,
    process.execPath,
    servicePath,
    credentialsPath(env),
    env["STEPLOG_API_KEY"] ?? "",
    env["STEPLOG_UPLOAD_DEADLINE_MS"] ?? ""
  ].join("\0")
  const hash = crypto.createHash("sha256").update(identity).digest("hex").slice(0, 20)
  return path.join(os.tmpdir(), `steplog-service-${hash}.sock`)
}

/** One side of a connection between a training process and the service: a socket, or a pair of pipes. */
export interface Connection {
  readonly input: NodeJS.ReadableStream
  readonly output: NodeJS.WritableStream
}

const lockFile = (socketFile: string) => `${socketFile}.starting`

/**
 * Takes the right to start the service (a file beside the socket, holding this process's pid):
 * true for one caller at a time; the others wait for the service to listen. A lock older than
 * `staleMs` is taken over (its holder died before the service listened).
 */
export const startLock = (socketFile: string, staleMs: number): boolean => {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile(socketFile), String(process.pid), { flag: "wx" })
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") return true // no lock to be had here (a read-only folder): start anyway
      try {
        if (Date.now() - fs.statSync(lockFile(socketFile)).mtimeMs < staleMs) return false
        fs.unlinkSync(lockFile(socketFile))
      } catch {
        // gone meanwhile: try again
      }
    }
  }
  return false
}

/**
 * Ends the wait for the service to start: the service calls it once it listens (or failed to),
 * whoever took the lock (its starter may be gone); a starter whose service died calls it with its
 * own pid, to give up the lock only if it still holds it.
 */
export const releaseStartLock = (socketFile: string, holder?: number): void => {
  try {
    if (holder === undefined || fs.readFileSync(lockFile(socketFile), "utf8") === String(holder)) fs.unlinkSync(lockFile(socketFile))
  } catch {
    // not there: nothing to give up
  }
}

/**
 * Calls `onMessage` with each line `input` receives, parsed as JSON (a line that is not JSON is
 * passed as its text, for the receiver's decoder to refuse and report).
 */
export const onLines = (input: NodeJS.ReadableStream, onMessage: (message: unknown) => void): void => {
  let pending = ""
  input.setEncoding("utf8")
  input.on("data", (chunk: string) => {
    pending += chunk
    for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
      const line = pending.slice(0, end)
      pending = pending.slice(end + 1)
      let message: unknown
      try {
        message = JSON.parse(line)
      } catch {
        message = line
      }
      onMessage(message)
    }
  })
}

/** Writes one message as a JSON line; a closed connection drops it (its end is reported on its own). */
export const sendLine = (output: NodeJS.WritableStream, message: unknown): void => {
  if (!output.writable) return
  output.write(`${JSON.stringify(message)}\n`)
}
