import { randomBytes } from 'node:crypto';
import { request, type ClientRequest } from 'node:http';
import pg from 'pg';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { buildImage, RegistryClient } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { metricValue, spawnRegistry, type RegistryProcess } from './support/process.js';
import { rawRequest } from './support/raw-http.js';
import { removeDir, tempDir } from './support/registry.js';

describe('graceful shutdown of a registry process (SIGTERM)', () => {
  let registry: RegistryProcess | undefined;
  let dataDir: string | undefined;
  afterAll(async () => {
    if (registry?.child.exitCode === null) registry.child.kill('SIGKILL');
    if (dataDir) await removeDir(dataDir);
  });

  it('finishes the in-flight upload, refuses new connections, flushes the audit log and exits 0', async () => {
    const databaseUrl = await createTestDatabase(inject('pgAdminUrl'));
    dataDir = await tempDir('wharf-shutdown-');
    registry = await spawnRegistry({ dataDir, env: { WHARF_DATABASE_URL: databaseUrl, WHARF_AUTH_MODE: 'none', WHARF_LOG_LEVEL: 'info' } });
    const client = new RegistryClient(registry.url);
    const image = await buildImage({ layers: 1 });
    await client.pushImage('shutdown/app', 'v1', image);

    const session = await rawRequest(registry.url, { method: 'POST', path: '/v2/shutdown/app/blobs/uploads/' });
    const location = String(session.headers.location);
    const body = randomBytes(256 * 1024);
    // A PATCH whose body is still arriving when SIGTERM comes: the test sends the rest only
    // once the server is shutting down.
    let patch!: ClientRequest;
    const answer = new Promise<{ status: number; range: string | undefined }>((resolve, reject) => {
      patch = request(`${registry!.url}${location}`, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, range: res.headers.range }));
      });
      patch.on('error', reject);
      patch.write(body.subarray(0, 1000));
    });
    await vi.waitFor(async () => expect(await metricValue(registry!.url, 'wharf_upload_requests_in_flight')).toBe(1), { timeout: 30_000, interval: 50 });
    registry.child.kill('SIGTERM');
    await vi.waitFor(() => expect(registry!.output()).toContain('shutting down'), { timeout: 30_000, interval: 20 });
    const refused = await fetch(`${registry.url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect([503, 'refused']).toContain(refused);
    patch.end(body.subarray(1000));
    expect(await answer).toEqual({ status: 202, range: `0-${body.length - 1}` });
    expect(await registry.exited).toEqual({ code: 0, signal: null });
    expect(registry.output()).toContain('shut down cleanly');

    // The push audit event was buffered when the signal came; shutdown flushed it.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query("SELECT actor, action, resource FROM audit_log WHERE action = 'push' AND resource = 'shutdown/app:v1'");
      expect(rows).toEqual([{ actor: 'anonymous', action: 'push', resource: 'shutdown/app:v1' }]);
      const { rows: uploads } = await db.query('SELECT size::int AS size FROM uploads');
      expect(uploads).toEqual([{ size: body.length }]);
    } finally {
      await db.end();
    }
  });
});
