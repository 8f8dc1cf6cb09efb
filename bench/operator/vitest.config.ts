import { defineConfig } from 'vitest/config';

// `make bench-operator`: the operator at scale on the same real control plane as the operator
// tests (their global setup). A measurement that writes a results table, not a test: it is never
// part of `make test`.
export default defineConfig({
  test: {
    include: ['bench/operator/*.bench-run.ts'],
    globalSetup: ['operator/test/support/global-setup.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
