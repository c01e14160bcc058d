/**
 * A fresh database of the test run's PostgreSQL cluster (postgresCluster.ts), for one test file
 * or one test: created empty, named after its caller and this process, left for the cluster's
 * teardown to remove with everything else.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { inject } from "vitest"

let made = 0

/** Creates an empty database; resolves to its URL. */
export const freshDatabase = (name: string): Promise<string> => {
  const cluster = inject("postgresUrl")
  const database = `${name.toLowerCase().replace(/[^a-z0-9]+/g, "_")}_${process.pid}_${made++}`
  return Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(`${cluster}/postgres`) }), (sql) => sql.unsafe(`CREATE DATABASE "${database}"`))).pipe(
      Effect.provide(Reactivity.layer),
      Effect.as(`${cluster}/${database}`)
    )
  )
}

/** A layer over a fresh database's URL: `make(url)` once the database exists. */
export const withFreshDatabase = <A, E, R>(name: string, make: (url: string) => Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.unwrapEffect(Effect.map(Effect.promise(() => freshDatabase(name)), make))
