/**
 * `steplog keys create | list | revoke`: the API keys of a server's store (its data directory's
 * SQLite file, or its PostgreSQL database with --database), worked on in the database directly (the
 * server may be running: SQLite's WAL lets both use the file; PostgreSQL is shared anyway).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Schema from "effect/Schema"
import { ProjectName } from "../schemas/Wire.js"
import * as Server from "../server/Server.js"
import { KeyName, KeyStore, type KeyInfo, type KeyScope } from "../server/store/KeyStore.js"
import type { StoreFailed } from "../server/store/RecordStore.js"
import type { StoreLayoutUnsupported } from "../server/store/StoreLayout.js"
import { data, database } from "./Server.js"

/** `keys list` or `keys revoke` was pointed at a directory that holds no server database. */
export class NoServerDatabase extends Data.TaggedError("NoServerDatabase")<{ readonly dataDir: string }> {
  override get message(): string {
    return `steplog: no steplog server database in ${path.resolve(this.dataDir)} (give the server's --data directory)`
  }
}

const projects = Options.text("project").pipe(
  Options.withAlias("p"),
  Options.withDescription('A project the key may use; repeat it for several. "*" means every project, present and future.'),
  Options.repeated,
  Options.mapEffect((given): Effect.Effect<KeyScope, ValidationError.ValidationError> => {
    const invalid = (text: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(text)))
    if (given.length === 0) return invalid('give at least one --project ("*" for every project)')
    if (given.includes("*")) return Effect.succeed("*")
    const decoded = given.map((p) => Schema.decodeUnknownEither(ProjectName)(p))
    const bad = given.find((_, i) => Either.isLeft(decoded[i]!))
    if (bad !== undefined) return invalid(`--project "${bad}" is not a project name (1 to 128 letters, digits, '.', '-' or '_')`)
    return Effect.succeed([...new Set(decoded.map((d) => Either.getOrThrow(d)))])
  })
)

const name = Options.text("name").pipe(
  Options.withAlias("n"),
  Options.withDescription('A name for the key, unique among unrevoked keys, shown by `keys list` and accepted by `keys revoke`. Default "key-<id>".'),
  Options.filterMap((n) => (Schema.is(KeyName)(n) ? Option.some(n) : Option.none()), "--name takes a key name of 1 to 64 letters, digits, '.', '@', '-' or '_'"),
  Options.optional
)

const scopeText = (scope: KeyScope): string => (scope === "*" ? "*" : scope.join(","))
const time = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString().replace(/\.\d+Z$/, "Z"))

/** Where the keys are: the store of `--database`, else the SQLite file of `--data`. */
interface StoreOptions {
  readonly data: string
  readonly database: Option.Option<string>
}

/**
 * Runs `effect` against the KeyStore of the store; `mustExist` refuses a data directory with no
 * server database (a PostgreSQL database is made ready whatever it held).
 */
const withKeys = <A, E>(store: StoreOptions, mustExist: boolean, effect: Effect.Effect<A, E, KeyStore>) =>
  Effect.suspend((): Effect.Effect<A, E | NoServerDatabase | StoreFailed | StoreLayoutUnsupported> => {
    if (Option.isSome(store.database)) return Effect.provide(effect, Server.storeLayer({ database: store.database.value }))
    return mustExist && !fs.existsSync(Server.databasePath(store.data))
      ? Effect.fail(new NoServerDatabase({ dataDir: store.data }))
      : Effect.provide(effect, Server.storeLayer({ dataDir: store.data }))
  })

const create = Command.make("create", { projects, name, data, database }, (options) =>
  withKeys(
    options,
    false,
    Effect.gen(function* () {
      const keys = yield* KeyStore
      const created = yield* keys.create({ projects: options.projects, ...(options.name._tag === "Some" ? { name: options.name.value } : {}) })
      yield* Console.log(created.key)
      yield* Console.error(
        `steplog: created the API key "${created.info.name}" (${created.info.id}) for project(s) ${scopeText(created.info.projects)}. ` +
          "It is shown only this once: store it now (`steplog login`, or STEPLOG_API_KEY)."
      )
    })
  )
).pipe(
  Command.withDescription(
    "Create an API key for one or more projects and print it on stdout, once: the server keeps only its SHA-256 hash. " +
      "A key may write and read only its projects (403 on others)."
  )
)

const list = Command.make("list", { data, database }, (options) =>
  withKeys(
    options,
    true,
    Effect.gen(function* () {
      const all = yield* (yield* KeyStore).list
      const rows = [["ID", "NAME", "PROJECTS", "CREATED", "REVOKED"], ...all.map((k: KeyInfo) => [k.id, k.name, scopeText(k.projects), time(k.createdAt), time(k.revokedAt)])]
      const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
      yield* Console.log(rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n"))
    })
  )
).pipe(Command.withDescription("List every API key of the server, revoked ones included: id, name, projects, created and revoked times (UTC). Keys themselves are never shown again."))

const idOrName = Args.text({ name: "id | name" }).pipe(Args.withDescription("The key's id (key_…) or the name of an unrevoked key, as `steplog keys list` shows them."))

const revoke = Command.make("revoke", { idOrName, data, database }, (options) =>
  withKeys(
    options,
    true,
    Effect.gen(function* () {
      const info = yield* (yield* KeyStore).revoke(options.idOrName)
      yield* Console.log(`steplog: revoked the API key "${info.name}" (${info.id}); every server refuses requests with it (401) within a second.`)
    })
  )
).pipe(Command.withDescription("Revoke an API key: every request with it gets 401, from running servers within a second (each takes a key it verified as verified for a second)."))

/** The `keys` command and its subcommands. */
export const keys = Command.make("keys").pipe(
  Command.withDescription("Manage the API keys of a steplog server's store (its --data directory, or its PostgreSQL --database): create (printed once), list, revoke. Works whether or not the server is running."),
  Command.withSubcommands([create, list, revoke])
)
