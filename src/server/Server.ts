/**
 * The tracking server as a layer: the HTTP API (ApiServer.ts) and the dashboard (Dashboard.ts) on a
 * Node HTTP server, over a store's RecordStore, KeyStore and Sessions (store/). `layer` opens the
 * store: one SQLite file in the data directory, or a PostgreSQL database (`database`) that several
 * server processes share; `layerWith` takes the store from its context (tests give it an in-memory one).
 *
 * On the first start of a server without any key, it makes a key named "local" for every project
 * and stores it in the local credentials file under the server's base URL, so that a run on this
 * machine needs no set-up.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { storeKey } from "../actors/Credentials.js"
import type { RecordKind } from "../schemas/Record.js"
import * as AccessLog from "./AccessLog.js"
import * as ApiServer from "./ApiServer.js"
import * as Dashboard from "./Dashboard.js"
import * as Lifecycle from "./Lifecycle.js"
import { KeyStore } from "./store/KeyStore.js"
import * as PostgresStore from "./store/postgres/PostgresStore.js"
import { StoreFailed } from "./store/RecordStore.js"
import { Sessions } from "./store/SessionStore.js"
import * as StoredKinds from "./StoredKinds.js"
import * as SqliteStore from "./store/sqlite/SqliteStore.js"

/** Where the server listens and keeps its data. */
export interface ServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 7077; 0 picks a free port. */
  readonly port?: number
  /** Default ./steplog-server (the SQLite file is inside); only `layer` uses it, and not with `database`. */
  readonly dataDir?: string
  /** A PostgreSQL URL (postgres://user:password@host:port/database): the store is that database, not the data directory's SQLite file. */
  readonly database?: string
  /** Where the credentials file is looked for (XDG_CONFIG_HOME, HOME); default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Where the server's notices go; default stdout. */
  readonly say?: (line: string) => Effect.Effect<void>
  /** Where the dashboard's built files are; default dist/web/ of this package. */
  readonly webRoot?: string
  /** How long requests in flight may go on once the server is stopping; default 10 s (Lifecycle.ts). */
  readonly grace?: Duration.DurationInput
  /** Log a line for each request at Info (AccessLog.ts); default false. */
  readonly accessLog?: boolean
  /** Record kinds to refuse, as an older server lacking them would (StoredKinds.ts); for tests of mixed versions. */
  readonly refuseKinds?: ReadonlyArray<RecordKind>
}

/** The running server. */
export class ServerInfo extends Context.Tag("steplog/server/ServerInfo")<
  ServerInfo,
  {
    /** `http://host:port`, the port as bound. */
    readonly baseUrl: string
    /** A fresh dashboard URL with a one-time sign-in token (`${baseUrl}/?token=…`, usable once within 24 h). */
    readonly signInUrl: Effect.Effect<string>
  }
>() {}

/** The default data directory, relative to the working directory. */
export const defaultDataDir = "steplog-server"

/** The SQLite file of a data directory, holding records and keys alike. */
export const databasePath = (dataDir: string): string => path.join(dataDir, "steplog.db")

/** The store a server's options name: the PostgreSQL database of `database`, else the SQLite file of `dataDir` (the directory created if missing). */
export const storeLayer = (options: Pick<ServerOptions, "dataDir" | "database">) => {
  if (options.database !== undefined) return PostgresStore.layer(options.database)
  const dataDir = options.dataDir ?? defaultDataDir
  return Layer.unwrapEffect(
    Effect.try({
      try: () => {
        fs.mkdirSync(dataDir, { recursive: true })
        return SqliteStore.layer({ filename: databasePath(dataDir) })
      },
      catch: (cause) => new StoreFailed({ operation: `create the data directory ${dataDir}`, cause })
    })
  )
}

const baseUrlOf = (address: HttpServer.Address): string => {
  if (address._tag === "UnixAddress") return `http+unix://${address.path}`
  const host = address.hostname === "0.0.0.0" || address.hostname === "::" ? "127.0.0.1" : address.hostname
  return `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`
}

/** Makes the "local" key on a server that has none and stores it in the credentials file. */
const firstStart = (baseUrl: string, options: ServerOptions) =>
  Effect.gen(function* () {
    const keys = yield* KeyStore
    if ((yield* keys.list).length > 0) return
    // Taken: another process of the same store (replicas starting together) made it a moment ago.
    const created = yield* keys.create({ name: "local", projects: "*" }).pipe(Effect.catchTag("KeyNameTaken", () => Effect.succeed(null)))
    if (created === null) return
    const { key } = created
    const say = options.say ?? Console.log
    const file = yield* Effect.try({
      try: () => storeKey(baseUrl, key, options.env),
      catch: (cause) => cause
    }).pipe(Effect.either)
    if (file._tag === "Right") {
      yield* say(`steplog server: first start; created the API key "local" (all projects) and stored it for ${baseUrl} in ${file.right}`)
    } else {
      // The key is shown once, so that it is not lost when the file cannot be written.
      yield* say(`steplog server: first start; created the API key "local" (all projects): ${key}\n  (could not store it in the credentials file: ${String(file.left)})`)
    }
  })

/**
 * The server over the store (RecordStore, KeyStore, Sessions) of its context, listening until the
 * layer is released, and then stopping as Lifecycle.ts says.
 */
export const layerWith = (options: ServerOptions = {}) =>
  Layer.unwrapEffect(Effect.sync(() => {
    const server = http.createServer()
    const listen = NodeHttpServer.layer(() => server, { host: options.host ?? "127.0.0.1", port: options.port ?? 7077 })
    const info = Layer.effect(
      ServerInfo,
      Effect.gen(function* () {
        const baseUrl = yield* HttpServer.addressWith((address) => Effect.succeed(baseUrlOf(address)))
        yield* firstStart(baseUrl, options)
        const sessions = yield* Sessions
        return { baseUrl, signInUrl: Effect.map(Effect.orDie(sessions.mintToken), (token) => `${baseUrl}/?token=${token}`) }
      })
    )
    const served = Layer.merge(HttpServer.serve(Dashboard.app(options.webRoot)), info).pipe(
      Layer.provide(ApiServer.layer),
      Layer.provide([listen, StoredKinds.layer(options.refuseKinds)])
    )
    const lifecycle = Lifecycle.make(server, options.grace)
    // Stopping is built after what serves requests, so released before it: the handlers outlive the requests in flight.
    const running = lifecycle.stopOnRelease.pipe(Layer.provideMerge(served), Layer.provideMerge(lifecycle.layer))
    return options.accessLog === true ? Layer.merge(running, AccessLog.layer(server)) : running
  }))

/** The server with its store as `options` name it (storeLayer). */
export const layer = (options: ServerOptions = {}) => layerWith(options).pipe(Layer.provide(storeLayer(options)))
