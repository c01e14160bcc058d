// Copies the dashboard's static files (src/web/*.html, *.css) next to its compiled modules in dist/web.
import * as fs from "node:fs"

const from = new URL("../src/web/", import.meta.url)
const to = new URL("../dist/web/", import.meta.url)
fs.mkdirSync(to, { recursive: true })
for (const name of fs.readdirSync(from)) {
  if (name.endsWith(".html") || name.endsWith(".css")) fs.copyFileSync(new URL(name, from), new URL(name, to))
}
