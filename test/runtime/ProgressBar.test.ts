import { describe, expect, it } from "vitest"
import { progressBar } from "../../src/runtime/ProgressBar.js"

describe("progressBar", () => {
  it("fills its width in proportion to what is acknowledged, with the percentage and the counts", () => {
    expect(progressBar(150, 300, 10)).toBe("[#####-----]  50%  150/300 records")
    expect(progressBar(0, 303)).toBe(`[${"-".repeat(30)}]   0%  0/303 records`)
    expect(progressBar(303, 303)).toBe(`[${"#".repeat(30)}] 100%  303/303 records`)
  })

  it("rounds the bar but never shows 100% before the last record", () => {
    expect(progressBar(299, 300, 10)).toBe("[##########]  99%  299/300 records")
  })

  it("shows a run of no records, or more acknowledged than counted, as full", () => {
    expect(progressBar(0, 0, 4)).toBe("[####] 100%  0/0 records")
    expect(progressBar(5, 3, 4)).toBe("[####] 100%  5/3 records")
  })
})
