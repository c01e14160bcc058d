/**
 * Where the machine's upload service listens, and how messages travel there: one JSON line each
 * (schemas/IpcSchema.ts) over a Unix socket (or, to the process that started it, over its stdin
 * and stdout). Who starts it: ServiceStartLock.ts.
 *
 * One service serves every online run of every training process that would start an identical
 * one: the same user, Node binary and steplog version and build, and the same upload settings read
 * from the environment (the credentials file, STEPLOG_API_KEY, STEPLOG_UPLOAD_DEADLINE_MS). The
 * socket's name is a hash of those, in a folder of the user's own (mode 0700) in the system's
 * temporary folder: no other user can listen there in its place (and hear the API keys `OpenRun`
 * carries) or hold its start lock. So eight training processes of a sweep share one service (one
 * heap, one JIT, one event loop for eight uploads: bench/concurrent.ts) instead of starting eight,
 * while a process with other settings gets a service of its own. Where that folder is not safe (not
 * the user's own, open to others, a link), each process gets a service of its own, as before.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { credentialsPath } from "../actors/Credentials.js"
import { STEPLOG_VERSION } from "../schemas/Version.js"

/** The user's folder for service sockets, made if need be; null when it is not safe to share. */
const sharedFolder = (): string | null => {
  const uid = process.getuid?.()
  if (uid === undefined) return null
  const folder = path.join(os.tmpdir(), `steplog-${uid}`)
  try {
    fs.mkdirSync(folder, { mode: 0o700 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") return null
  }
  try {
    const stat = fs.lstatSync(folder)
    return stat.isDirectory() && stat.uid === uid && (stat.mode & 0o077) === 0 ? folder : null
  } catch {
    return null
  }
}

/** The socket of the service that `servicePath`, spawned with `env`, would be. */
export const socketPath = (servicePath: string, env: Readonly<Record<string, string | undefined>>): string => {
  const identity = [
    STEPLOG_VERSION,
    process.execPath,
    servicePath,
    credentialsPath(env),
    env["STEPLOG_API_KEY"] ?? "",
    env["STEPLOG_UPLOAD_DEADLINE_MS"] ?? ""
  ].join("\0")
  const hash = crypto.createHash("sha256").update(identity).digest("hex").slice(0, 20)
  return path.join(sharedFolder() ?? privateFolder(), `service-${hash}.sock`)
}

/**
 * A folder of this process's own, for a service no other process finds. Where none can be made
 * (no temporary folder), a path where nothing listens: the service then serves the process that
 * started it over its pipes alone, and nothing fails.
 */
const privateFolder = (): string => {
  try {
    return fs.mkdtempSync(path.join(os.tmpdir(), "steplog-"))
  } catch {
    return path.join(os.tmpdir(), `steplog-unavailable-${process.pid}`)
  }
}

/** One side of a connection between a training process and the service: a socket, or a pair of pipes. */
export interface Connection {
  readonly input: NodeJS.ReadableStream
  readonly output: NodeJS.WritableStream
}

/**
 * Calls `onMessage` with each line `input` receives, parsed as JSON (a line that is not JSON is
 * passed as its text, for the receiver's decoder to refuse and report).
 */
export const onLines = (input: NodeJS.ReadableStream, onMessage: (message: unknown) => void): void => {
  const lines = readline.createInterface({ input, crlfDelay: Infinity })
  // readline passes on the connection's errors (a reset, when the other side is killed), and an
  // error event no one hears throws: in a training process, the user's. The end is reported on its own.
  lines.on("error", () => {})
  lines.on("line", (line) => {
    let message: unknown
    try {
      message = JSON.parse(line)
    } catch {
      message = line
    }
    onMessage(message)
  })
}

/** Writes one message as a JSON line; a closed connection drops it (its end is reported on its own). */
export const sendLine = (output: NodeJS.WritableStream, message: unknown): void => {
  if (!output.writable) return
  output.write(`${JSON.stringify(message)}\n`)
}
