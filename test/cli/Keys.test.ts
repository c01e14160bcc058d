/**
 * `steplog keys` against a data directory, run as the built CLI (dist/cli/main.js), and the SQLite
 * server's first start: the key it makes for this machine, once.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { credentialsPath, storedKey } from "../../src/actors/Credentials.js"
import { KeyStore } from "../../src/server/store/KeyStore.js"
import * as Server from "../../src/server/Server.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("keys")
const main = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "cli", "main.js")

const steplog = (args: ReadonlyArray<string>) => spawnSync(process.execPath, [main, ...args], { encoding: "utf8" })

/** Whether `key` verifies against the keys of `dataDir`, and as which name. */
const verify = (dataDir: string, key: string) =>
  Effect.runPromise(
    Effect.flatMap(KeyStore, (keys) => keys.verify(key)).pipe(Effect.map(Option.map((info) => info.name)), Effect.provide(Server.storeLayer({ dataDir })))
  )

describe("steplog keys", () => {
  it("creates a key shown once on stdout, lists it, and revokes it by name", async () => {
    const data = temp.file("data")
    const created = steplog(["keys", "create", "--project", "alpha", "--project", "beta", "--name", "ci", "--data", data])
    expect(created.status).toBe(0)
    const key = created.stdout.trim()
    expect(key).toMatch(/^slk_[A-Za-z0-9_-]{43}$/)
    expect(created.stderr).toMatch(/shown only this once/)
    expect(await verify(data, key)).toEqual(Option.some("ci"))
    // Only the hash is stored.
    expect(fs.readFileSync(Server.databasePath(data)).includes(Buffer.from(key))).toBe(false)

    const listed = execFileSync(process.execPath, [main, "keys", "list", "--data", data], { encoding: "utf8" })
    expect(listed).toMatch(/^key_[0-9a-f]{12}\s+ci\s+alpha,beta\s+\S+Z\s+-$/m)
    expect(listed).not.toContain(key)

    expect(steplog(["keys", "create", "--project", "alpha", "--name", "ci", "--data", data]).status).toBe(2)
    const revoked = steplog(["keys", "revoke", "ci", "--data", data])
    expect(revoked.status).toBe(0)
    expect(await verify(data, key)).toEqual(Option.none())
    expect(execFileSync(process.execPath, [main, "keys", "list", "--data", data], { encoding: "utf8" })).not.toMatch(/ci\s+alpha,beta\s+\S+Z\s+-$/m)
  })

  it("refuses a bad --project, an unknown key and a directory without a server database (status 2)", () => {
    const data = temp.file("data")
    expect(steplog(["keys", "create", "--project", "no spaces", "--data", data]).status).toBe(2)
    expect(steplog(["keys", "create", "--data", data]).status).toBe(2)
    const missing = steplog(["keys", "list", "--data", temp.file("nowhere")])
    expect(missing.status).toBe(2)
    expect(missing.stderr).toMatch(/no steplog server database/)
    steplog(["keys", "create", "--project", "*", "--data", data])
    expect(steplog(["keys", "revoke", "no-such-key", "--data", data]).stderr).toMatch(/no API key with id or name "no-such-key"/)
  })
})

describe("the SQLite server's first start", () => {
  it("makes one local key for every project, stores it for its URL (keeping other entries), and none on a later start", async () => {
    const data = temp.file("data")
    const env = { XDG_CONFIG_HOME: temp.file("config") }
    fs.mkdirSync(path.dirname(credentialsPath(env)), { recursive: true })
    fs.writeFileSync(credentialsPath(env), JSON.stringify({ keys: { "http://elsewhere:1": "slk_other" } }))
    const start = async () => {
      const runtime = ManagedRuntime.make(Server.layer({ port: 0, dataDir: data, env, say: () => Effect.void }))
      const { baseUrl } = await runtime.runPromise(Server.ServerInfo)
      const key = storedKey(baseUrl, env)
      const whoami = key === null ? null : await (await fetch(`${baseUrl}/api/v1/whoami`, { headers: { authorization: `Bearer ${key}` } })).json()
      await runtime.dispose()
      return { baseUrl, key, whoami }
    }
    const first = await start()
    expect(first.whoami).toMatchObject({ name: "local", projects: "*" })
    expect(storedKey("http://elsewhere:1", env)).toBe("slk_other")
    expect(fs.statSync(credentialsPath(env)).mode & 0o777).toBe(0o600)

    fs.rmSync(credentialsPath(env))
    const second = await start()
    expect(second.key).toBeNull()
    const names = await Effect.runPromise(Effect.flatMap(KeyStore, (keys) => keys.list).pipe(Effect.provide(Server.storeLayer({ dataDir: data }))))
    expect(names.map((k) => k.name)).toEqual(["local"])
  })
})
