import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One PostgreSQL cluster for the run; each test file that needs it makes a database of its own.
    globalSetup: ["test/support/postgresCluster.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
