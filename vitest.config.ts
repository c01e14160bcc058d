import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Once per run, for the files that need them: one PostgreSQL cluster (each file makes a
    // database of its own) and the Chromium the browser tests drive.
    globalSetup: ["test/support/postgresCluster.ts", "test/support/chromiumSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
