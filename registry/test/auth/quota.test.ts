import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchToken, ManagementClient } from '../support/auth.js';
import { blobsOnDisk, uploadsOnDisk } from '../support/disk.js';
import { randomBlob, RegistryClient, type Blob } from '../support/oci.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tokenAuth, type RunningRegistry } from '../support/registry.js';

const KB = 1024;
let registry: RunningRegistry;
let api: ManagementClient;
let client: RegistryClient;
let auth: Record<string, string>;
const a = randomBlob(60 * KB);
const b = randomBlob(60 * KB);

/** The stored blobs; the first accepted push is among them, so a "stored nothing" check reads the right place. */
async function storedDigests(): Promise<string[]> {
  const digests = await blobsOnDisk(join(registry.dataDir, 'blobs'));
  expect(digests).toContain(a.digest);
  return digests;
}

async function usage(): Promise<number> {
  return (await api.ok('GET', '/projects/quota/quota')).usedBytes;
}

async function push(repo: string, blob: Blob): Promise<Response> {
  return client.fetch(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: blob.data });
}

/** A chunked-transfer upload: the registry learns the size only as bytes arrive. Returns the PATCH's answer, or the PUT's when the PATCH was accepted. */
async function streamedPush(repo: string, blob: Blob): Promise<{ response: Response; location: string }> {
  const start = await client.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
  const location = start.headers.get('location')!;
  const patch = await client.fetch(location, { method: 'PATCH', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: Readable.toWeb(Readable.from([blob.data])) as ReadableStream, duplex: 'half' } as RequestInit);
  if (patch.status !== 202) return { response: patch, location };
  return { response: await client.fetch(`${location}?digest=${blob.digest}`, { method: 'PUT', headers: auth }), location };
}

describe('project storage quotas', () => {
  beforeAll(async () => {
    registry = await startRegistry({ auth: tokenAuth() });
    api = new ManagementClient(registry.url);
    client = new RegistryClient(registry.url);
    await api.project('quota', { storageLimit: 100 * KB });
    const scopes = ['a', 'b', 'c', 'd'].map((r) => `repository:quota/${r}:pull,push,delete`);
    auth = { Authorization: `Bearer ${(await fetchToken(registry.url, scopes, { username: 'admin', password: TEST_ADMIN_PASSWORD })).token}` };
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('accepts a push within the quota and counts it', async () => {
    expect((await push('quota/a', a)).status).toBe(201);
    expect(await usage()).toBe(60 * KB);
  });

  it('refuses a push over the quota with DENIED naming the quota, and stores nothing', async () => {
    const res = await push('quota/a', b);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { errors: { code: string; message: string; detail: { quota: { project: string; limit: number } } }[] };
    expect(body.errors[0]!.code).toBe('DENIED');
    expect(body.errors[0]!.message).toMatch(/storage quota of project "quota" exceeded/);
    expect(body.errors[0]!.detail.quota).toMatchObject({ project: 'quota', limit: 100 * KB, used: 60 * KB });
    expect(await storedDigests()).not.toContain(b.digest);
    expect(await usage()).toBe(60 * KB);
  });

  it('refuses the closing PUT of a session whose declared size goes over the quota, before storing it', async () => {
    const start = await client.fetch('/v2/quota/c/blobs/uploads/', { method: 'POST', headers: auth });
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    const res = await client.fetch(`${location}?digest=${b.digest}`, { method: 'PUT', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: b.data });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { errors: { code: string; detail: { quota: { limit: number; used: number } } }[] };
    expect(body.errors[0]).toMatchObject({ code: 'DENIED', detail: { quota: { limit: 100 * KB, used: 60 * KB } } });
    expect(await storedDigests()).not.toContain(b.digest);
    expect(await usage()).toBe(60 * KB);
  });

  it('refuses a streamed upload of unknown length while it streams, leaving no blob and no upload behind', async () => {
    const { response: res, location } = await streamedPush('quota/b', b);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
    expect((await client.fetch(location, { headers: auth })).status).toBe(404);
    expect(await storedDigests()).not.toContain(b.digest);
    expect(await uploadsOnDisk(join(registry.dataDir, 'blobs'))).toEqual([]);
    expect((await client.fetch(`/v2/quota/b/blobs/${b.digest}`, { method: 'HEAD', headers: auth })).status).toBe(404);
  });

  it('counts a layer shared by two repositories once', async () => {
    expect((await push('quota/c', a)).status).toBe(201);
    const mount = await client.fetch(`/v2/quota/d/blobs/uploads/?mount=${a.digest}&from=quota/a`, { method: 'POST', headers: auth });
    expect(mount.status).toBe(201);
    expect(await usage()).toBe(60 * KB);
  });

  it('frees usage on delete, after which the refused push fits', async () => {
    for (const repo of ['a', 'c', 'd']) expect((await client.fetch(`/v2/quota/${repo}/blobs/${a.digest}`, { method: 'DELETE', headers: auth })).status).toBe(202);
    expect(await usage()).toBe(0);
    expect((await push('quota/a', b)).status).toBe(201);
    expect(await usage()).toBe(60 * KB);
  });

  it('does not overshoot under concurrent pushes', async () => {
    const blobs = Array.from({ length: 6 }, () => randomBlob(15 * KB));
    const statuses = await Promise.all(blobs.map((blob, i) => push(`quota/${'abcd'[i % 4]}`, blob).then((r) => r.status)));
    const accepted = statuses.filter((s) => s === 201).length;
    expect(statuses.every((s) => s === 201 || s === 403)).toBe(true);
    expect(accepted).toBe(2);
    expect(await usage()).toBe(60 * KB + 2 * 15 * KB);
  });

  it('shows the quota and usage in the project API, and -1 means unlimited', async () => {
    expect(await api.ok('GET', '/projects/quota')).toMatchObject({ storageLimit: 100 * KB, usedBytes: 90 * KB });
    await api.ok('PUT', '/projects/quota/quota', { limitBytes: -1 });
    expect((await push('quota/a', randomBlob(200 * KB))).status).toBe(201);
  });
});
