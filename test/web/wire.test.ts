/**
 * The dashboard's copy of the API's JSON shapes (src/web/wire.ts; the browser cannot load Effect's
 * Schema) agrees with the schemas the server encodes with, and with the answers the API declares
 * for each endpoint the dashboard reads (apiPaths.test.ts checks it reads only those): every
 * answer the server can send is a value of the type the dashboard reads. Checked by the type
 * checker (`npm run typecheck`).
 */
import type * as Effect from "effect/Effect"
import { describe, expectTypeOf, it } from "vitest"
import type { ApiClient } from "../../src/actors/ApiClient.js"
import type * as ApiErrors from "../../src/schemas/ApiErrors.js"
import type * as Wire from "../../src/schemas/Wire.js"
import type * as Web from "../../src/web/wire.js"

/** The client HttpApiClient derives from the declaration: its methods, by group and endpoint. */
type Client = ApiClient
/** What an endpoint of the declaration answers (its success schema's type), called without `withResponse`. */
type Answer<Method extends (request: never) => Effect.Effect<unknown, unknown, unknown>> = Exclude<Effect.Effect.Success<ReturnType<Method>>, ReadonlyArray<unknown>>

describe("the dashboard's wire types", () => {
  it("accept every answer the server encodes", () => {
    expectTypeOf<typeof Wire.RunDetail.Encoded>().toMatchTypeOf<Web.RunDetail>()
    expectTypeOf<typeof Wire.RunList.Encoded>().toMatchTypeOf<Web.RunList>()
    expectTypeOf<typeof Wire.ProjectList.Encoded>().toMatchTypeOf<Web.ProjectList>()
    expectTypeOf<typeof Wire.History.Encoded>().toMatchTypeOf<Web.History>()
    expectTypeOf<typeof Wire.OutputLines.Encoded>().toMatchTypeOf<Web.OutputLines>()
    expectTypeOf<typeof Wire.DeletedRun.Encoded>().toMatchTypeOf<Web.DeletedRun>()
    expectTypeOf<typeof ApiErrors.ApiFailure.Encoded>().toMatchTypeOf<Web.ApiError>()
  })

  it("accept what the declaration says each endpoint the dashboard reads answers", () => {
    expectTypeOf<Answer<Client["query"]["listProjects"]>>().toMatchTypeOf<Web.ProjectList>()
    expectTypeOf<Answer<Client["query"]["listRuns"]>>().toMatchTypeOf<Web.RunList>()
    expectTypeOf<Answer<Client["query"]["getRun"]>>().toMatchTypeOf<Web.RunDetail>()
    expectTypeOf<Answer<Client["query"]["history"]>>().toMatchTypeOf<Web.History>()
    expectTypeOf<Answer<Client["query"]["output"]>>().toMatchTypeOf<Web.OutputLines>()
    expectTypeOf<Answer<Client["upload"]["deleteRun"]>>().toMatchTypeOf<Web.DeletedRun>()
    // Not vacuous: a method's answer is found.
    expectTypeOf<Answer<Client["query"]["getRun"]>>().toEqualTypeOf<Wire.RunDetail>()
  })
})
