/**
 * vitest's globalSetup: resolves the browser tests' Chromium once per test run, before any test
 * file starts (parallel files would race to unpack the packaged one), and hands it to every test
 * file through `inject("chromium")`. A Chromium that cannot be had fails the browser tests with the
 * reason, not the whole run.
 */
import type { TestProject } from "vitest/node"
import { chromiumPath } from "./chromium.js"

/** The Chromium binary for the browser tests, or why there is none. */
export type ResolvedChromium = { readonly path: string } | { readonly error: string }

declare module "vitest" {
  export interface ProvidedContext {
    chromium: ResolvedChromium
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const resolved: ResolvedChromium = await chromiumPath().then(
    (path) => ({ path }),
    (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) })
  )
  project.provide("chromium", resolved)
}
