/**
 * `npm run bench`: runs every benchmark, each in a fresh Node process (no benchmark inherits
 * another's heap or JIT state), prints their tables, and with `--readme` writes the tables into
 * README.md between the `bench:start` and `bench:end` markers, with the Node version and machine.
 * `npm run bench -- first-init.ts` runs only the files named; with `--readme`, their tables replace
 * their earlier versions (or are added at the end) and every other table stays as it was.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const scenarios: ReadonlyArray<ReadonlyArray<string>> = [
  ["call-cost.ts"],
  ["burst.ts"],
  ["paced.ts"],
  ["million.ts", "steplog"],
  ["million.ts", "pino"],
  ["history-read.ts"],
  ["store-ingest.ts"],
  ["read-wait.ts"],
  ["sync.ts"],
  ["online.ts"],
  ["latency.ts"],
  ["isolation.ts"],
  ["concurrent.ts"],
  ["dashboard.ts"],
  ["first-init.ts"]
]

const named = process.argv.slice(2).filter((arg) => !arg.startsWith("--"))
const chosen = named.length === 0 ? scenarios : scenarios.filter(([file]) => named.includes(file!))
if (chosen.length < new Set(named).size) throw new Error(`no benchmark named ${named.join(", ")}; the benchmarks: ${scenarios.map(([f]) => f).join(", ")}`)

const results = path.join(os.tmpdir(), `steplog-bench-${process.pid}.jsonl`)
fs.rmSync(results, { force: true })
for (const [file, ...args] of chosen) {
  execFileSync(process.execPath, ["--import", "tsx", path.join(here, file!), ...args], {
    stdio: "inherit",
    env: { ...process.env, BENCH_JSON: results }
  })
}

const tables = fs.readFileSync(results, "utf8").trim().split("\n").map((line) => JSON.parse(line) as {
  title: string
  rows: Array<Record<string, string | number>>
})
fs.rmSync(results, { force: true })

/** Tables with the same title (the two million-call runs) are merged into one. */
const merged = new Map<string, Array<Record<string, string | number>>>()
for (const table of tables) merged.set(table.title, [...(merged.get(table.title) ?? []), ...table.rows])

const tableBlocks = [...merged].map(([title, rows]) => {
  const columns = Object.keys(rows[0]!)
  return [
    `**${title}**`,
    "",
    `| ${columns.join(" | ")} |`,
    `| ${columns.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${columns.map((c) => String(row[c])).join(" | ")} |`)
  ].join("\n")
})
const machine = `Node ${process.version}, ${os.cpus()[0]?.model ?? "unknown CPU"} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 10)}`
const section = [`Measured by \`npm run bench\` on ${machine}.`, "", ...tableBlocks.flatMap((t) => [t, ""])].join("\n")

/**
 * The README's section with only the tables of this run replaced or appended, each saying when and
 * where it was measured (the section's first line dates the others). A table is matched by its
 * title up to the first colon: the rest may hold figures of the run.
 */
const partialSection = (old: string): string => {
  const blocks = old.trim().split(/\n(?=\*\*)/)
  const key = (block: string) => block.split("\n")[0]!.split(":")[0]
  for (const table of tableBlocks) {
    const [title, ...rest] = table.split("\n")
    const block = [title, "", `Measured by \`npm run bench -- ${named.join(" ")}\` on ${machine}.`, ...rest].join("\n")
    const at = blocks.findIndex((b) => key(b) === key(table))
    if (at >= 0) blocks[at] = block
    else blocks.push(block)
  }
  return blocks.map((b) => b.trimEnd()).join("\n\n") + "\n"
}

if (process.argv.includes("--readme")) {
  const readme = path.join(here, "..", "README.md")
  const text = fs.readFileSync(readme, "utf8")
  const start = "<!-- bench:start -->"
  const end = "<!-- bench:end -->"
  const from = text.indexOf(start)
  const to = text.indexOf(end)
  if (from < 0 || to < from) throw new Error(`README.md has no ${start} … ${end} section`)
  const old = text.slice(from + start.length, to)
  fs.writeFileSync(readme, text.slice(0, from + start.length) + "\n" + (named.length === 0 ? section : partialSection(old)) + text.slice(to))
  console.log(`\nREADME.md benchmark section updated (${machine})`)
} else {
  console.log(`\n${section}`)
}
