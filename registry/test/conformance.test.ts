import { afterAll, describe, expect, inject, it } from 'vitest';
import { runConformance } from './support/conformance.js';
import { createTestDatabase } from './support/pg.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';

const backends = [
  { name: 'embedded PGlite + filesystem', database: async () => undefined },
  { name: 'PostgreSQL + filesystem', database: async () => createTestDatabase(inject('pgAdminUrl')) },
];

describe.each(backends)('OCI distribution-spec conformance on $name', ({ database }) => {
  let registry: RunningRegistry | undefined;

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('passes every spec with all four workflows on', async () => {
    const databaseUrl = await database();
    registry = await startRegistry(databaseUrl ? { databaseUrl } : {});
    const { counts, output } = await runConformance(inject('toolsBin'), registry.host);
    console.log(
      `conformance: ${counts.tests} specs, ${counts.passed} passed, ${counts.failures} failed, ${counts.errors} errors, ${counts.skipped} skipped, ${counts.disabled} disabled`,
    );
    expect(counts.failed, `failed specs:\n${counts.failed.join('\n')}\n${output.slice(-3000)}`).toEqual([]);
    expect(counts.failures + counts.errors).toBe(0);
    // Guards against a suite that silently ran nothing.
    expect(counts.passed).toBeGreaterThan(800);
  }, 600_000);
});
