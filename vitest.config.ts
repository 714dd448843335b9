import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file gets its own process: embedded engines bind one data directory per process (chdb)
    // and Pulumi's mocks are process-wide.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
