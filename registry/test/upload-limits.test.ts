import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { StorageConfig } from '../src/config.js';
import { fetchToken, ManagementClient } from './support/auth.js';
import { startMinio, type RunningMinio } from './support/minio.js';
import { randomBlob, RegistryClient, sha256 } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { rawRequest } from './support/raw-http.js';
import { removeDir, startRegistry, tokenAuth, type RunningRegistry } from './support/registry.js';
import { bytes, sampleMax, streamRequest, type StreamOutcome } from './support/streaming.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The project's storage limit in the quota tests. */
const LIMIT = 1 * MiB;
/** What a client tries to stream into it, as in the attack (200 MB). */
const FLOOD = 200 * MiB;
/**
 * The most a refused stream may have handed to its socket before the answer: the
 * allowance plus what the kernel buffers on both sides of a loopback connection. A
 * server that keeps reading lets the client send the whole flood.
 */
const SENT_BEFORE_ANSWER = 48 * MiB;
/** The filesystem driver batches writes into buffers of this size. */
const ONE_BUFFER = 1 * MiB;
/** uploads.maxSize in these tests. */
const MAX_SIZE = 24 * MiB;

let minio: Promise<RunningMinio> | undefined;
afterAll(async () => (await minio)?.close());

interface Backend {
  name: string;
  database: () => Promise<string | undefined>;
  storage?: () => Promise<StorageConfig>;
}

async function s3Storage(): Promise<StorageConfig> {
  const m = await (minio ??= startMinio(inject('toolsBin')));
  const { endpoint, region, accessKeyId, secretAccessKey } = m;
  return { driver: 's3', s3: { endpoint, region, forcePathStyle: true, accessKeyId, secretAccessKey, bucket: await m.createBucket(), redirect: false } };
}

const backends: Backend[] = [
  { name: 'PGlite + filesystem', database: async () => undefined },
  { name: 'PostgreSQL + filesystem', database: async () => createTestDatabase(inject('pgAdminUrl')) },
  { name: 'PostgreSQL + S3 (MinIO)', database: async () => createTestDatabase(inject('pgAdminUrl')), storage: s3Storage },
];

/** Bytes held by uploads in progress: files under uploads/ on the filesystem, objects under uploads/ on S3. */
function uploadBytes(registry: RunningRegistry, storage: StorageConfig | undefined): () => Promise<number> {
  if (storage?.driver === 's3') {
    const { endpoint, region, accessKeyId, secretAccessKey, bucket } = storage.s3;
    const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! } });
    return async () => {
      let total = 0;
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'uploads/', ContinuationToken: token }));
        for (const o of page.Contents ?? []) total += o.Size ?? 0;
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return total;
    };
  }
  const dir = join(registry.dataDir, 'blobs', 'uploads');
  return async () => {
    let total = 0;
    for (const name of await readdir(dir)) {
      // A part file removed between the listing and its stat holds nothing any more.
      const s = await stat(join(dir, name)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
      total += s?.size ?? 0;
    }
    return total;
  };
}

function expectQuotaRefusal(res: StreamOutcome, project: string) {
  expect({ status: res.status, code: res.code }, res.body.toString()).toEqual({ status: 403, code: 'DENIED' });
  const error = res.json<{ errors: { message: string; detail: { quota: { project: string; limit: number; used: number; needed: number } } }[] }>().errors[0]!;
  expect(error.message).toMatch(new RegExp(`^storage quota of project "${project}" exceeded: \\d+ of ${LIMIT} bytes used, this push needs \\d+ more$`));
  expect(error.detail.quota).toMatchObject({ project, limit: LIMIT, used: 0 });
  expect(error.detail.quota.needed).toBeGreaterThan(LIMIT);
}

describe.each(backends)('upload limits while streaming on $name', ({ database, storage: makeStorage }) => {
  let registry: RunningRegistry;
  let storage: StorageConfig | undefined;
  let held: () => Promise<number>;
  let api: ManagementClient;

  beforeAll(async () => {
    const databaseUrl = await database();
    storage = makeStorage && (await makeStorage());
    registry = await startRegistry({ ...(databaseUrl && { databaseUrl }), ...(storage && { storage }), limits: { uploads: { maxSize: MAX_SIZE } } });
    held = uploadBytes(registry, storage);
    api = new ManagementClient(registry.url);
    await api.project('q', { storageLimit: LIMIT });
    await api.project('q20', { storageLimit: 20 * MiB });
    await api.project('big', {});
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  async function startUpload(repo: string): Promise<string> {
    const res = await rawRequest(registry.url, { method: 'POST', path: `/v2/${repo}/blobs/uploads/` });
    expect(res.status).toBe(202);
    return String(res.headers.location);
  }

  /** Streams `req`, measuring what uploads hold meanwhile; checks that nothing is left once answered. */
  async function streamed(req: Parameters<typeof streamRequest>[1]): Promise<{ res: StreamOutcome; peak: number }> {
    const sampler = sampleMax(held);
    const res = await streamRequest(registry.url, req);
    const peak = await sampler.stop();
    expect(await held()).toBe(0);
    return { res, peak };
  }

  async function expectSessionGone(location: string) {
    const status = await rawRequest(registry.url, { method: 'GET', path: location });
    expect({ status: status.status, code: status.code }).toEqual({ status: 404, code: 'BLOB_UPLOAD_UNKNOWN' });
  }

  async function usage(project: string): Promise<number> {
    return (await api.ok('GET', `/projects/${project}`)).usedBytes;
  }

  it('cuts off a chunked PATCH past the quota with DENIED, holding at most the limit meanwhile, and discards the session', async () => {
    const location = await startUpload('q/app');
    const { res, peak } = await streamed({ method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(FLOOD) });
    expectQuotaRefusal(res, 'q');
    expect(res.headers.connection).toBe('close');
    expect(res.sentAll).toBe(false);
    expect(res.bytesSent).toBeLessThan(SENT_BEFORE_ANSWER);
    expect(peak).toBeLessThanOrEqual(LIMIT + ONE_BUFFER);
    await expectSessionGone(location);
    expect(await usage('q')).toBe(0);
  });

  it('holds a larger quota the same way once storage has taken several buffers (S3: chunk objects) of the upload', async () => {
    const location = await startUpload('q20/app');
    const { res, peak } = await streamed({ method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(FLOOD) });
    expect({ status: res.status, code: res.code }).toEqual({ status: 403, code: 'DENIED' });
    expect(res.json<{ errors: { detail: { quota: unknown } }[] }>().errors[0]!.detail.quota).toMatchObject({ project: 'q20', limit: 20 * MiB, used: 0 });
    expect(res.bytesSent).toBeLessThan(20 * MiB + SENT_BEFORE_ANSWER);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(20 * MiB + ONE_BUFFER);
    await expectSessionGone(location);
  });

  it('counts what the session already holds: a second chunk that crosses the limit is refused and the session discarded', async () => {
    const location = await startUpload('q/app');
    const first = await streamRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(LIMIT - 100 * KiB) });
    expect(first.status).toBe(202);
    const { res } = await streamed({ method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(FLOOD) });
    expectQuotaRefusal(res, 'q');
    expect(res.bytesSent).toBeLessThan(SENT_BEFORE_ANSWER);
    await expectSessionGone(location);
  });

  it('refuses a PATCH whose Content-Range goes past the quota before reading its body', async () => {
    const location = await startUpload('q/app');
    const { res } = await streamed({ method: 'PATCH', path: location, headers: { 'Content-Range': `0-${FLOOD - 1}`, 'Content-Type': 'application/octet-stream' }, body: bytes(FLOOD) });
    expectQuotaRefusal(res, 'q');
    expect(res.bytesSent).toBeLessThan(SENT_BEFORE_ANSWER);
  });

  it('stops a chunked PATCH at its Content-Range: a body longer than declared is SIZE_INVALID, and nothing past the declared range is kept', async () => {
    const location = await startUpload('q/app');
    const { res, peak } = await streamed({ method: 'PATCH', path: location, headers: { 'Content-Range': `0-${100 * KiB - 1}`, 'Content-Type': 'application/octet-stream' }, body: bytes(FLOOD) });
    expect({ status: res.status, code: res.code }, res.body.toString()).toEqual({ status: 400, code: 'SIZE_INVALID' });
    expect(res.bytesSent).toBeLessThan(SENT_BEFORE_ANSWER);
    expect(peak).toBeLessThanOrEqual(100 * KiB + ONE_BUFFER);
    // The session survives at its old size: the client may send the chunk again.
    const status = await rawRequest(registry.url, { method: 'GET', path: location });
    expect({ status: status.status, range: status.headers.range }).toEqual({ status: 204, range: '0-0' });
    expect((await rawRequest(registry.url, { method: 'DELETE', path: location })).status).toBe(204);
  });

  it('cuts off a monolithic POST ?digest= of unknown length past the quota, storing nothing', async () => {
    const digest = sha256('never complete');
    const { res, peak } = await streamed({ method: 'POST', path: `/v2/q/app/blobs/uploads/?digest=${digest}`, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(FLOOD) });
    expectQuotaRefusal(res, 'q');
    expect(res.bytesSent).toBeLessThan(SENT_BEFORE_ANSWER);
    expect(peak).toBeLessThanOrEqual(LIMIT + ONE_BUFFER);
    expect((await rawRequest(registry.url, { method: 'HEAD', path: `/v2/q/app/blobs/${digest}` })).status).toBe(404);
  });

  it('cuts off the closing PUT ?digest= of unknown length past the quota and discards the session', async () => {
    const location = await startUpload('q/app');
    const { res, peak } = await streamed({ method: 'PUT', path: `${location}?digest=${sha256('never complete')}`, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(FLOOD) });
    expectQuotaRefusal(res, 'q');
    expect(res.bytesSent).toBeLessThan(SENT_BEFORE_ANSWER);
    expect(peak).toBeLessThanOrEqual(LIMIT + ONE_BUFFER);
    await expectSessionGone(location);
  });

  it('still accepts streamed uploads that fit, and counts them', async () => {
    const blob = randomBlob(LIMIT / 2);
    const location = await startUpload('q/app');
    const patch = await streamRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: (async function* () { yield blob.data; })() });
    expect(patch.status).toBe(202);
    const put = await rawRequest(registry.url, { method: 'PUT', path: `${location}?digest=${blob.digest}` });
    expect(put.status).toBe(201);
    expect(await usage('q')).toBe(blob.size);
    expect((await rawRequest(registry.url, { method: 'DELETE', path: `/v2/q/app/blobs/${blob.digest}` })).status).toBe(202);
    expect(await usage('q')).toBe(0);
  });

  describe('the size cap of one upload (24 MiB here)', () => {
    it('answers 413 SIZE_INVALID to a chunked PATCH that grows past it, and discards the session', async () => {
      const location = await startUpload('big/app');
      const { res, peak } = await streamed({ method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(FLOOD) });
      expect({ status: res.status, code: res.code }, res.body.toString()).toEqual({ status: 413, code: 'SIZE_INVALID' });
      expect(res.json<{ errors: { message: string; detail: unknown }[] }>().errors[0]).toMatchObject({ message: `the upload exceeds the largest blob this registry accepts (${MAX_SIZE} bytes)`, detail: { maxSize: MAX_SIZE } });
      expect(res.bytesSent).toBeLessThan(MAX_SIZE + SENT_BEFORE_ANSWER);
      expect(peak).toBeLessThanOrEqual(MAX_SIZE + ONE_BUFFER);
      await expectSessionGone(location);
    });

    it('answers 413 to a declared length past it without waiting for the body', async () => {
      const location = await startUpload('big/app');
      // Headers only: the answer must come before any body byte is sent.
      const res = await streamRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Length': MAX_SIZE + 1, 'Content-Type': 'application/octet-stream' }, body: (async function* () { await new Promise(() => undefined); })() });
      expect({ status: res.status, code: res.code }).toEqual({ status: 413, code: 'SIZE_INVALID' });
      expect(res.bytesSent).toBe(0);
      await expectSessionGone(location);
      const post = await streamRequest(registry.url, { method: 'POST', path: `/v2/big/app/blobs/uploads/?digest=${sha256('x')}`, headers: { 'Content-Length': MAX_SIZE + 1 }, body: (async function* () { await new Promise(() => undefined); })() });
      expect({ status: post.status, code: post.code }).toEqual({ status: 413, code: 'SIZE_INVALID' });
    });

    it('accepts an upload of exactly the cap', async () => {
      const blob = randomBlob(MAX_SIZE);
      const location = await startUpload('big/app');
      const patch = await streamRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: (async function* () { yield blob.data; })() });
      expect(patch.status).toBe(202);
      expect((await rawRequest(registry.url, { method: 'PUT', path: `${location}?digest=${blob.digest}` })).status).toBe(201);
    });
  });
});

describe.each(backends.slice(0, 2))('upload session caps on $name', ({ database }) => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    const databaseUrl = await database();
    registry = await startRegistry({ ...(databaseUrl && { databaseUrl }), auth: tokenAuth(), limits: { uploads: { maxSessionsPerPrincipal: 4, maxSessionsPerRepository: 3 } } });
    client = new RegistryClient(registry.url);
    const api = new ManagementClient(registry.url);
    await api.project('caps');
    for (const user of ['alice', 'bob']) {
      await api.user(user, `${user}-password-123`);
      await api.member('caps', user, 'developer');
      const scopes = ['a', 'b', 'c'].map((r) => `repository:caps/${r}:pull,push`);
      tokens[user] = (await fetchToken(registry.url, scopes, { username: user, password: `${user}-password-123` })).token!;
    }
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  async function start(user: string, repo: string): Promise<{ status: number; code?: string; location?: string; retryAfter?: string | null; message?: string }> {
    const res = await client.fetch(`/v2/caps/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${tokens[user]}` } });
    const body = res.status === 202 ? undefined : ((await res.json()) as { errors: { code: string; message: string }[] });
    return { status: res.status, ...(body && { code: body.errors[0]!.code, message: body.errors[0]!.message, retryAfter: res.headers.get('retry-after') }), ...(res.status === 202 && { location: res.headers.get('location')! }) };
  }

  it('bounds open sessions per repository with 429 TOOMANYREQUESTS, counting every principal', async () => {
    expect((await start('alice', 'a')).status).toBe(202);
    expect((await start('alice', 'a')).status).toBe(202);
    const third = await start('bob', 'a');
    expect(third.status).toBe(202);
    const refused = await start('bob', 'a');
    expect(refused).toMatchObject({ status: 429, code: 'TOOMANYREQUESTS', message: 'repository caps/a has 3 open upload sessions, the most allowed; finish or cancel one (idle sessions expire)' });
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    // Cancelling one makes room again.
    expect((await client.fetch(third.location!, { method: 'DELETE', headers: { Authorization: `Bearer ${tokens.bob}` } })).status).toBe(204);
    expect((await start('bob', 'a')).status).toBe(202);
  });

  it('bounds open sessions per principal across repositories, without affecting other principals', async () => {
    // alice holds 2 in caps/a.
    expect((await start('alice', 'b')).status).toBe(202);
    expect((await start('alice', 'c')).status).toBe(202);
    const refused = await start('alice', 'c');
    expect(refused).toMatchObject({ status: 429, code: 'TOOMANYREQUESTS', message: 'you have 4 open upload sessions, the most allowed; finish or cancel one (idle sessions expire)' });
    expect((await start('bob', 'c')).status).toBe(202);
  });

  it('lets a finished upload free its place', async () => {
    const blob = randomBlob(1000);
    // bob holds one session in caps/a and one in caps/c; alice one in caps/b.
    const session = await start('bob', 'b');
    expect(session.status).toBe(202);
    expect((await start('bob', 'b')).status).toBe(202);
    expect((await start('bob', 'b')).status).toBe(429);
    const put = await client.fetch(`${session.location!}?digest=${blob.digest}`, { method: 'PUT', headers: { Authorization: `Bearer ${tokens.bob}`, 'Content-Type': 'application/octet-stream' }, body: blob.data });
    expect(put.status).toBe(201);
    expect((await start('bob', 'b')).status).toBe(202);
  });
});
