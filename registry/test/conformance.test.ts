import { afterAll, describe, expect, inject, it } from 'vitest';
import type { StorageConfig } from '../src/config.js';
import { CONFORMANCE_SUITES, runConformance } from './support/conformance.js';
import { startMinio, type RunningMinio } from './support/minio.js';
import { createTestDatabase } from './support/pg.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';

let minio: Promise<RunningMinio> | undefined;
afterAll(async () => (await minio)?.close());

async function s3Storage(): Promise<StorageConfig> {
  const m = await (minio ??= startMinio(inject('toolsBin')));
  const { endpoint, region, accessKeyId, secretAccessKey } = m;
  return { driver: 's3', s3: { endpoint, region, forcePathStyle: true, accessKeyId, secretAccessKey, bucket: await m.createBucket(), redirect: false } };
}

const backends: { name: string; database: () => Promise<string | undefined>; storage?: () => Promise<StorageConfig> }[] = [
  { name: 'embedded PGlite + filesystem', database: async () => undefined },
  { name: 'PostgreSQL + filesystem', database: async () => createTestDatabase(inject('pgAdminUrl')) },
  { name: 'PostgreSQL + S3 (MinIO)', database: async () => createTestDatabase(inject('pgAdminUrl')), storage: s3Storage },
];

describe.each(backends)('OCI distribution-spec conformance on $name', ({ database, storage }) => {
  let registry: RunningRegistry | undefined;

  const stop = async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
    registry = undefined;
  };
  afterAll(stop);

  // Each suite gets a fresh registry: the suites' tag and catalog expectations assume they
  // are alone in their namespace.
  it.each(CONFORMANCE_SUITES)('passes every spec of the $name suite with all four workflows on', async (suite) => {
    await stop();
    const databaseUrl = await database();
    registry = await startRegistry({ ...(databaseUrl && { databaseUrl }), ...(storage && { storage: await storage() }) });
    const { counts, output } = await runConformance(inject('toolsBin'), registry.host, {}, suite);
    console.log(
      `conformance (${suite.name}): ${counts.tests} specs, ${counts.passed} passed, ${counts.failures} failed, ${counts.errors} errors, ${counts.skipped} skipped, ${counts.disabled} disabled`,
    );
    expect(counts.failed, `failed specs:\n${counts.failed.join('\n')}\n${output.slice(-3000)}`).toEqual([]);
    expect(counts.failures + counts.errors).toBe(0);
    // Guards against a suite that silently ran nothing.
    expect(counts.passed).toBeGreaterThan(suite.minPassed);
  }, 600_000);
});
