import { defineConfig } from 'vitest/config';

// One vitest run covers both programs. Each project starts its heavy peers once
// (globalSetup) and shares them with every test file through `inject()`.
export default defineConfig({
  test: {
    reporters: process.env.CI ? ['default'] : ['default'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'registry',
          include: ['registry/test/**/*.test.ts'],
          globalSetup: ['registry/test/support/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'bench',
          include: ['bench/test/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'operator',
          include: ['operator/test/**/*.test.ts'],
          globalSetup: ['operator/test/support/global-setup.ts'],
        },
      },
    ],
  },
});
