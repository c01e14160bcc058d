/**
 * The dashboard's copy of the API's JSON shapes (src/web/wire.ts; the browser cannot load Effect's
 * Schema) agrees with the schemas the server encodes with: every answer the server can send is a
 * value of the type the dashboard reads. Checked by the type checker (`npm run typecheck`).
 */
import { describe, expectTypeOf, it } from "vitest"
import type * as Wire from "../../src/schemas/Wire.js"
import type * as Web from "../../src/web/wire.js"

describe("the dashboard's wire types", () => {
  it("accept every answer the server encodes", () => {
    expectTypeOf<typeof Wire.RunDetail.Encoded>().toMatchTypeOf<Web.RunDetail>()
    expectTypeOf<typeof Wire.RunList.Encoded>().toMatchTypeOf<Web.RunList>()
    expectTypeOf<typeof Wire.ProjectList.Encoded>().toMatchTypeOf<Web.ProjectList>()
    expectTypeOf<typeof Wire.History.Encoded>().toMatchTypeOf<Web.History>()
    expectTypeOf<typeof Wire.OutputLines.Encoded>().toMatchTypeOf<Web.OutputLines>()
    expectTypeOf<typeof Wire.ApiError.Encoded>().toMatchTypeOf<Web.ApiError>()
  })
})
