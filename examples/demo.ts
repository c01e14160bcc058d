/**
 * `npm run demo`: trains the example network with steplog recording offline, then shows what was
 * recorded: the run directory and the tail of its journal through `steplog inspect`.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const dir = path.join(root, "steplog")
const env = { ...process.env, STEPLOG_DIR: dir, STEPLOG_MODE: "offline" }

console.log("training a two-layer network on two half-moons, logging every step …")
execFileSync(process.execPath, ["--import", "tsx", path.join(root, "examples", "train.ts")], { stdio: "inherit", env, cwd: root })

const runDir = fs.realpathSync(path.join(dir, "latest-run"))
console.log(`\nrun directory: ${runDir}`)
for (const name of fs.readdirSync(runDir)) console.log(`  ${name}`)
console.log(`\nsteplog inspect ${path.relative(root, runDir)} --tail 5:`)
execFileSync(process.execPath, [path.join(root, "dist", "cli", "main.js"), "inspect", runDir, "--tail", "5"], { stdio: "inherit" })
