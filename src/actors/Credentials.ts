/**
 * The local credentials file, `$XDG_CONFIG_HOME/steplog/credentials.json` (else
 * `~/.config/steplog/credentials.json`, mode 0600): API keys by server base URL,
 * `{ "keys": { "http://127.0.0.1:7077": "…" } }`. Reading it never fails a run: a missing or
 * unreadable file simply holds no key.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DEFAULT_BASE_URL } from "../schemas/Settings.js"

/** Where the credentials file lives for this environment. */
export const credentialsPath = (env: Readonly<Record<string, string | undefined>> = process.env): string =>
  path.join(env["XDG_CONFIG_HOME"] || path.join(env["HOME"] || os.homedir(), ".config"), "steplog", "credentials.json")

/** The stored API key for `baseUrl`, or null. */
export const storedKey = (baseUrl: string, env: Readonly<Record<string, string | undefined>> = process.env): string | null => {
  try {
    const file = JSON.parse(fs.readFileSync(credentialsPath(env), "utf8")) as { keys?: Record<string, unknown> }
    const key = file.keys?.[baseUrl.replace(/\/+$/, "")]
    return typeof key === "string" && key.length > 0 ? key : null
  } catch {
    return null
  }
}

/**
 * Stores `key` for `baseUrl` in the credentials file, keeping every other entry; the file is
 * replaced atomically (written beside it, then renamed) with mode 0600, its folder 0700. Returns
 * the file's path.
 */
export const storeKey = (baseUrl: string, key: string, env: Readonly<Record<string, string | undefined>> = process.env): string => {
  const file = credentialsPath(env)
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  let keys: Record<string, unknown> = {}
  try {
    const existing = JSON.parse(fs.readFileSync(file, "utf8")) as { keys?: unknown }
    if (typeof existing.keys === "object" && existing.keys !== null && !Array.isArray(existing.keys)) keys = existing.keys as Record<string, unknown>
  } catch {
    // A missing or unreadable file holds no keys; it is replaced.
  }
  keys[baseUrl.replace(/\/+$/, "")] = key
  const temp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(temp, JSON.stringify({ keys }, null, 2) + "\n", { mode: 0o600 })
  fs.renameSync(temp, file)
  return file
}

/**
 * The server a reader (the CLI, `steplog/api`) talks to, and its key: as given, else the
 * environment's STEPLOG_BASE_URL and STEPLOG_API_KEY, else the local default server and the
 * credentials file's key for the server chosen (null: none).
 */
export const resolveServer = (
  given: { readonly baseUrl?: string | undefined; readonly apiKey?: string | undefined },
  env: Readonly<Record<string, string | undefined>> = process.env
): { readonly baseUrl: string; readonly apiKey: string | null } => {
  const baseUrl = (given.baseUrl ?? (env["STEPLOG_BASE_URL"] || DEFAULT_BASE_URL)).replace(/\/+$/, "")
  return { baseUrl, apiKey: given.apiKey ?? (env["STEPLOG_API_KEY"] || storedKey(baseUrl, env)) }
}
