import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadsOnDisk } from './support/disk.js';
import { blobOf, RegistryClient, type Blob } from './support/oci.js';
import { rawRequest, truncatedRequest } from './support/raw-http.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';

/** Pushes content the registry already stores (another repository has it): verified, linked, not written again. */
describe('pushing a blob that storage already holds', () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  let blob: Blob;
  let blobFile: string;

  const uploadsLeft = () => uploadsOnDisk(join(registry.dataDir, 'blobs'));
  const visible = async (repo: string, digest: string) => (await client.fetch(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status;

  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient(registry.url);
    blob = blobOf(randomBytes(300 * 1024));
    expect((await client.pushBlob('known/first', blob)).status).toBe(201);
    const hex = blob.digest.slice('sha256:'.length);
    blobFile = join(registry.dataDir, 'blobs', 'blobs', 'sha256', hex.slice(0, 2), hex);
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('links it into a new repository from a monolithic POST and from POST then PUT, without rewriting the stored object', async () => {
    const before = await stat(blobFile);
    expect((await client.pushBlob('known/second', blob)).status).toBe(201);
    const start = await rawRequest(registry.url, { method: 'POST', path: '/v2/known/third/blobs/uploads/' });
    expect(start.status).toBe(202);
    const put = await rawRequest(registry.url, { method: 'PUT', path: `${start.headers.location}?digest=${blob.digest}`, headers: { 'Content-Type': 'application/octet-stream' }, body: blob.data });
    expect(put.status).toBe(201);
    for (const repo of ['known/second', 'known/third']) {
      expect(await visible(repo, blob.digest)).toBe(200);
      expect((await client.getBlob(repo, blob.digest)).equals(blob.data)).toBe(true);
    }
    const after = await stat(blobFile);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    // The session was closed with the link.
    expect((await rawRequest(registry.url, { method: 'GET', path: String(start.headers.location) })).code).toBe('BLOB_UPLOAD_UNKNOWN');
    expect(await uploadsLeft()).toEqual([]);
  });

  it('refuses other bytes of the same length claiming the stored digest, and links nothing', async () => {
    const forged = randomBytes(blob.size);
    const res = await rawRequest(registry.url, { method: 'POST', path: `/v2/known/forged/blobs/uploads/?digest=${blob.digest}`, headers: { 'Content-Type': 'application/octet-stream' }, body: forged });
    expect([res.status, res.code]).toEqual([400, 'DIGEST_INVALID']);
    expect(await visible('known/forged', blob.digest)).toBe(404);
    const start = await rawRequest(registry.url, { method: 'POST', path: '/v2/known/forged/blobs/uploads/' });
    const put = await rawRequest(registry.url, { method: 'PUT', path: `${start.headers.location}?digest=${blob.digest}`, headers: { 'Content-Type': 'application/octet-stream' }, body: forged });
    expect([put.status, put.code]).toEqual([400, 'DIGEST_INVALID']);
    expect(await visible('known/forged', blob.digest)).toBe(404);
    expect((await client.getBlob('known/first', blob.digest)).equals(blob.data)).toBe(true);
  });

  it('still checks Content-Range: a closing chunk that does not start at 0 on an empty session is out of order', async () => {
    const start = await rawRequest(registry.url, { method: 'POST', path: '/v2/known/ranged/blobs/uploads/' });
    const put = await rawRequest(registry.url, {
      method: 'PUT',
      path: `${start.headers.location}?digest=${blob.digest}`,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `10-${blob.size + 9}` },
      body: blob.data,
    });
    expect([put.status, put.code]).toEqual([416, 'RANGE_INVALID']);
    expect(await visible('known/ranged', blob.digest)).toBe(404);
  });

  it('links nothing when the body is cut off', async () => {
    const path = `/v2/known/cut/blobs/uploads/?digest=${blob.digest}`;
    const finished = registry.requests.next('POST', path);
    await truncatedRequest(registry.url, {
      method: 'POST',
      path,
      headers: { 'Content-Type': 'application/octet-stream' },
      declaredLength: blob.size,
      sent: blob.data.subarray(0, 1000),
    });
    expect((await finished).error, 'the registry failed the request whose body was cut off').toBeInstanceOf(Error);
    expect(await visible('known/cut', blob.digest)).toBe(404);
    expect(await uploadsLeft()).toEqual([]);
  });
});
