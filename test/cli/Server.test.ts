/**
 * `steplog server` as the built CLI: it prints a one-time dashboard link at start, and that link
 * signs a browser in to the built dashboard (dist/web/, so `npm run build` first).
 */
import { spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { poll } from "../support/poll.js"
import { useTempDir } from "../support/tempDir.js"

const temp = useTempDir("cli-server")
const main = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "cli", "main.js")
const webRoot = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "web")

describe("steplog server", () => {
  it("prints a dashboard link whose token signs in once to the built dashboard", async () => {
    const child = spawn(process.execPath, [main, "server", "--port", "0", "--data", path.join(temp.dir(), "data")], {
      env: { ...process.env, XDG_CONFIG_HOME: path.join(temp.dir(), "config"), HOME: temp.dir() }
    })
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve))
    let stdout = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    try {
      const link = await poll("the dashboard link on stdout", () =>
        /steplog server: dashboard at (http:\/\/127\.0\.0\.1:\d+)\/\?token=([A-Za-z0-9_-]{43})\n/.exec(stdout) ?? undefined
      )
      const [url, baseUrl] = [link[0].slice("steplog server: dashboard at ".length).trim(), link[1]!]

      const signedIn = await fetch(url, { redirect: "manual" })
      expect([signedIn.status, signedIn.headers.get("location")]).toEqual([303, "/"])
      const cookie = (signedIn.headers.get("set-cookie") ?? "").split(";")[0]!
      const page = await fetch(`${baseUrl}/`, { headers: { cookie } })
      const html = fs.readFileSync(path.join(webRoot, "index.html"), "utf8")
      expect(page.status).toBe(200)
      expect(await page.text()).toBe(html)
      // The built page's import map is allowed by its hash, and nothing else inline.
      const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1]!
      const hash = crypto.createHash("sha256").update(importMap).digest("base64")
      expect(page.headers.get("content-security-policy")).toContain(`script-src 'self' 'sha256-${hash}';`)
      expect((await fetch(`${baseUrl}/api/v1/projects`, { headers: { cookie } })).status).toBe(200)

      expect((await fetch(url, { redirect: "manual" })).status).toBe(401)
    } finally {
      child.kill("SIGINT")
      await exited
    }
  })
})
