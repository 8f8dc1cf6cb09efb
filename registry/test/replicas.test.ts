import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ADMIN, fetchToken, ManagementClient } from './support/auth.js';
import { runConformance } from './support/conformance.js';
import { runGc } from './support/gc.js';
import { startMinio, type RunningMinio } from './support/minio.js';
import { buildImage, randomBlob, type Blob, type Image } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { metricValue, spawnRegistry, type RegistryProcess } from './support/process.js';
import { startRoundRobinProxy, UPSTREAM_HEADER, type RoundRobinProxy } from './support/proxy.js';
import { PushClient, PushError } from './support/push.js';
import { removeDir, TEST_ADMIN_PASSWORD, tempDir } from './support/registry.js';

const KiB = 1024;

describe('three registry processes on PostgreSQL + S3 behind a round-robin proxy', () => {
  let minio: RunningMinio;
  let env: Record<string, string>;
  let proxy: RoundRobinProxy;
  const replicas: RegistryProcess[] = [];
  const dirs: string[] = [];

  const spawnReplica = async (index: number, port?: number) => {
    const dataDir = await tempDir(`wharf-replica-${index}-`);
    dirs.push(dataDir);
    return spawnRegistry({ dataDir, env, ...(port !== undefined && { port }) });
  };

  const tokenFor = async (repos: string[]) => {
    const scopes = repos.map((r) => `repository:${r}:pull,push,delete`);
    const { token, status, body } = await fetchToken(proxy.url, scopes, { username: 'admin', password: TEST_ADMIN_PASSWORD });
    if (!token) throw new Error(`no token: ${status} ${JSON.stringify(body)}`);
    return token;
  };

  beforeAll(async () => {
    minio = await startMinio(inject('toolsBin'));
    const shared = await tempDir('wharf-replicas-');
    dirs.push(shared);
    const keyFile = join(shared, 'token-key.pem');
    await writeFile(keyFile, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    env = {
      WHARF_DATABASE_URL: await createTestDatabase(inject('pgAdminUrl')),
      WHARF_STORAGE_DRIVER: 's3',
      WHARF_S3_ENDPOINT: minio.endpoint,
      WHARF_S3_REGION: minio.region,
      WHARF_S3_BUCKET: await minio.createBucket(),
      WHARF_S3_ACCESS_KEY_ID: minio.accessKeyId,
      WHARF_S3_SECRET_ACCESS_KEY: minio.secretAccessKey,
      WHARF_AUTH_MODE: 'token',
      WHARF_AUTH_SERVICE: 'wharf-test',
      WHARF_TOKEN_KEY_FILE: keyFile,
      WHARF_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
      WHARF_GC_SCHEDULE: 'off',
      WHARF_JOBS_POLL_INTERVAL: '200ms',
    };
    // Started together: the schema migrations race and must apply once.
    replicas.push(...(await Promise.all([0, 1, 2].map((i) => spawnReplica(i)))));
    proxy = await startRoundRobinProxy(replicas.map((r) => r.port));
    const api = new ManagementClient(proxy.url);
    for (const project of ['conformance', 'replicas']) await api.project(project);
  });

  afterAll(async () => {
    await proxy?.close();
    // SIGTERM: in-flight requests finish, workers stop, the process exits 0.
    const exits = await Promise.all(replicas.map((r) => r.stop()));
    await minio?.close();
    for (const dir of dirs) await removeDir(dir);
    expect(exits.filter((e) => e.signal !== 'SIGKILL')).toEqual(exits.filter((e) => e.signal !== 'SIGKILL').map(() => ({ code: 0, signal: null })));
  });

  it('passes the conformance suite through the proxy, every replica serving part of it', async () => {
    const before = [...proxy.served];
    const { counts, output } = await runConformance(inject('toolsBin'), proxy.host, { OCI_USERNAME: 'admin', OCI_PASSWORD: TEST_ADMIN_PASSWORD });
    console.log(`conformance through 3 replicas: ${counts.tests} specs, ${counts.passed} passed, ${counts.failures} failed, ${counts.errors} errors, ${counts.skipped} skipped`);
    expect(counts.failed, `failed specs:\n${counts.failed.join('\n')}\n${output.slice(-3000)}`).toEqual([]);
    expect(counts.passed).toBeGreaterThan(800);
    for (let i = 0; i < 3; i++) expect(proxy.served[i]! - before[i]!).toBeGreaterThan(100);
  }, 600_000);

  it('finishes a chunked upload whose requests alternate between the replicas', async () => {
    const repo = 'replicas/chunked';
    const answeredBy: number[] = [];
    const client = new PushClient(proxy.url, await tokenFor([repo]), (res) => answeredBy.push(Number(res.headers.get(UPSTREAM_HEADER))));
    const blob = randomBlob(600 * KiB);
    await client.pushBlobChunked(repo, blob, 100 * KiB);
    // POST, six PATCHes and the PUT: each request went to a different replica from the one before.
    expect(answeredBy).toHaveLength(8);
    for (let i = 1; i < answeredBy.length; i++) expect(answeredBy[i]).not.toBe(answeredBy[i - 1]);
    expect(new Set(answeredBy).size).toBe(3);
    for (let i = 0; i < 3; i++) await client.verifyBlob(repo, blob.digest);
  });

  it('runs a garbage collection queued through one replica on whichever worker claims it', async () => {
    const run = await runGc(proxy.url, { dryRun: true }, ADMIN);
    expect(run).toMatchObject({ state: 'succeeded', report: { dryRun: true, phase: 'done' } });
  });

  it('keeps every acknowledged object intact when a replica is killed with SIGKILL mid-push', async () => {
    const clients = 6;
    const repos = Array.from({ length: clients }, (_, i) => `replicas/kill${i}`);
    const token = await tokenFor(repos);
    const acked: { repo: string; blob: Blob }[] = [];
    /** Images each worker pushed whole; `afterRemoval`: begun once the victim was out of the proxy. */
    const tagged: { repo: string; tag: string; image: Image; afterRemoval: boolean }[] = [];
    const failures: { afterRemoval: boolean; error: PushError }[] = [];
    let stop = false;
    let removed = false;
    const victim = replicas[2]!;

    // One upload is certainly mid-request on the victim when it dies: a PATCH whose body is half
    // sent, counted by the victim's upload gauge before any other request goes its way.
    const repo = 'replicas/interrupted';
    const resumeToken = await tokenFor([repo]);
    const started = await fetch(`${victim.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${resumeToken}` } });
    expect(started.status).toBe(202);
    const location = started.headers.get('location')!;
    const blob = randomBlob(300 * KiB);
    const cut = new Promise<string>((resolve) => {
      const req = request(`${victim.url}${location}`, {
        method: 'PATCH',
        headers: { Authorization: `Bearer ${resumeToken}`, 'Content-Type': 'application/octet-stream', 'Content-Length': blob.size, 'Content-Range': `0-${blob.size - 1}` },
      });
      req.on('response', (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
      req.write(blob.data.subarray(0, 100 * KiB));
    });
    await vi.waitFor(async () => expect(await metricValue(victim.url, 'wharf_upload_requests_in_flight')).toBe(1), { timeout: 30_000, interval: 50 });

    const worker = async (c: number) => {
      const client = new PushClient(proxy.url, token);
      const repo = repos[c]!;
      for (let n = 0; !stop; n++) {
        const afterRemoval = removed;
        const image = await buildImage({ layers: 2, payloadSize: 160 * KiB });
        try {
          for (const blob of [image.config, ...image.layers]) {
            if (blob.size > 64 * KiB) await client.pushBlobChunked(repo, blob, 64 * KiB);
            else await client.pushBlob(repo, blob);
            acked.push({ repo, blob });
          }
          await client.pushManifest(repo, `v${n}`, image.manifest, image.mediaType);
          tagged.push({ repo, tag: `v${n}`, image, afterRemoval });
        } catch (err) {
          // The replica died under this request: start the image again (judged below).
          if (!(err instanceof PushError)) throw err;
          failures.push({ afterRemoval, error: err });
        }
      }
    };
    const servedBefore = proxy.served[2]!;
    const running = Array.from({ length: clients }, (_, c) => worker(c));
    // The workers are pushing through the victim too when it dies.
    await vi.waitFor(() => expect(proxy.served[2]! - servedBefore).toBeGreaterThanOrEqual(20), { timeout: 60_000, interval: 10 });
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await cut).toMatch(/ECONNRESET|socket hang up/);
    proxy.remove(2);
    removed = true;
    // Every worker pushes a whole image begun after the victim left the proxy.
    await vi.waitFor(() => expect(new Set(tagged.filter((t) => t.afterRemoval).map((t) => t.repo)).size).toBe(clients), { timeout: 120_000, interval: 50 });
    stop = true;
    await Promise.all(running);
    // What failed was on its way through the victim: a dropped connection, or the proxy's 502 for it.
    expect(failures.filter((f) => f.afterRemoval).map((f) => f.error.message)).toEqual([]);
    for (const { error } of failures) expect(error.status === undefined || (error.status === 502 && error.message.includes('upstream 2')), error.message).toBe(true);

    // The interrupted upload accepted nothing and resumes on the surviving replicas.
    const status = await fetch(`${proxy.url}${location}`, { headers: { Authorization: `Bearer ${resumeToken}` } });
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
    const resumed = new PushClient(proxy.url, resumeToken);
    const patched = await fetch(`${proxy.url}${location}`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${resumeToken}`, 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${blob.size - 1}` },
      body: blob.data,
    });
    expect(patched.status).toBe(202);
    const finished = await fetch(`${proxy.url}${patched.headers.get('location')}?digest=${blob.digest}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${resumeToken}` },
    });
    expect(finished.status).toBe(201);
    await resumed.verifyBlob(repo, blob.digest);
    const check = new PushClient(proxy.url, token);
    for (const { repo, blob } of acked) await check.verifyBlob(repo, blob.digest);
    for (const { repo, tag, image } of tagged) {
      expect((await check.manifest(repo, tag)).equals(image.manifest.data)).toBe(true);
    }

    // The killed replica comes back on the same database and bucket and serves the same content.
    replicas[2] = await spawnReplica(2, victim.port);
    const direct = new PushClient(replicas[2].url, token);
    for (const { repo, tag, image } of tagged.slice(-3)) {
      expect((await direct.manifest(repo, tag)).equals(image.manifest.data)).toBe(true);
      for (const blob of image.layers) await direct.verifyBlob(repo, blob.digest);
    }
    console.log(`kill -9: ${acked.length} blobs and ${tagged.length} tags acknowledged, ${failures.length} pushes cut off and retried, all intact`);
  });
});
