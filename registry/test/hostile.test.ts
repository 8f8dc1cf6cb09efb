import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobOf, buildImage, OCI_CONFIG, OCI_MANIFEST, randomBlob, RegistryClient, sha256 } from './support/oci.js';
import { blobsOnDisk, uploadsOnDisk, watchDir } from './support/disk.js';
import { rawRequest, truncatedRequest, type RawRequest } from './support/raw-http.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';

let registry: RunningRegistry;
let client: RegistryClient;
const REPO = 'hostile/app';

/** Blobs the table pushes on purpose; storage must hold these and nothing else. */
const pushed = new Set<string>();

const storeDir = () => join(registry.dataDir, 'blobs');
const storedBlobs = () => blobsOnDisk(storeDir());
const uploadDirs = () => uploadsOnDisk(storeDir());

async function startUpload(repo = REPO): Promise<string> {
  const res = await rawRequest(registry.url, { method: 'POST', path: `/v2/${repo}/blobs/uploads/` });
  expect(res.status).toBe(202);
  return String(res.headers.location);
}

const manifestWithMissingBlob = () =>
  blobOf(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256('never pushed config'), size: 19 },
      layers: [],
    }),
  );

interface Case {
  name: string;
  request: () => Promise<RawRequest> | RawRequest;
  status: number;
  code?: string;
  headers?: Record<string, string | RegExp>;
  /** Checks that nothing was half-written. */
  after?: () => Promise<void>;
}

const longName = `${'a'.repeat(120)}/${'b'.repeat(140)}`;

const cases: Case[] = [
  // Names: checked before anything touches storage.
  { name: 'uppercase name', request: () => ({ method: 'GET', path: '/v2/Hostile/app/manifests/latest' }), status: 400, code: 'NAME_INVALID' },
  { name: 'path traversal with ..', request: () => ({ method: 'GET', path: '/v2/hostile/../../etc/manifests/latest' }), status: 400, code: 'NAME_INVALID' },
  { name: 'percent-encoded traversal', request: () => ({ method: 'GET', path: '/v2/hostile/%2e%2e/secret/manifests/latest' }), status: 400, code: 'NAME_INVALID' },
  { name: 'encoded slash in name', request: () => ({ method: 'GET', path: '/v2/hostile%2fapp/tags/list' }), status: 400, code: 'NAME_INVALID' },
  { name: 'double separator', request: () => ({ method: 'GET', path: '/v2/hostile/a..b/tags/list' }), status: 400, code: 'NAME_INVALID' },
  { name: 'leading dash', request: () => ({ method: 'GET', path: '/v2/-hostile/tags/list' }), status: 400, code: 'NAME_INVALID' },
  { name: 'empty path component', request: () => ({ method: 'GET', path: '/v2/hostile//app/tags/list' }), status: 400, code: 'NAME_INVALID' },
  { name: 'name over 255 characters', request: () => ({ method: 'GET', path: `/v2/${longName}/tags/list` }), status: 400, code: 'NAME_INVALID' },
  { name: 'very long name beyond the router limit', request: () => ({ method: 'GET', path: `/v2/${'a/'.repeat(700)}x/tags/list` }), status: 400, code: 'NAME_INVALID' },
  {
    name: 'upload into a traversal name creates nothing',
    request: () => ({ method: 'POST', path: '/v2/../../tmp/x/blobs/uploads/' }),
    status: 400,
    code: 'NAME_INVALID',
    after: async () => expect(await uploadDirs()).toEqual([]),
  },
  { name: 'mount from an invalid repository', request: () => ({ method: 'POST', path: `/v2/${REPO}/blobs/uploads/?mount=${sha256('x')}&from=../other` }), status: 400, code: 'NAME_INVALID' },

  // Digests.
  { name: 'blob digest with bad hex', request: () => ({ method: 'GET', path: `/v2/${REPO}/blobs/sha256:xyz` }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest with unknown algorithm', request: () => ({ method: 'GET', path: `/v2/${REPO}/blobs/md5:d41d8cd98f00b204e9800998ecf8427e` }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest with uppercase hex', request: () => ({ method: 'HEAD', path: `/v2/${REPO}/blobs/${sha256('a').toUpperCase().replace('SHA256', 'sha256')}` }), status: 400 },
  // Reads are liberal: a reference that can name nothing is unknown; a PUT of it is refused.
  { name: 'manifest reference that is neither tag nor digest', request: () => ({ method: 'GET', path: `/v2/${REPO}/manifests/sha256:short` }), status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'tag with invalid characters', request: () => ({ method: 'GET', path: `/v2/${REPO}/manifests/.hidden` }), status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'push to a tag with invalid characters', request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/.hidden`, headers: { 'Content-Type': OCI_MANIFEST }, body: '{"schemaVersion":2}' }), status: 400, code: 'TAG_INVALID' },
  { name: 'push to a malformed digest', request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/sha256:short`, headers: { 'Content-Type': OCI_MANIFEST }, body: '{"schemaVersion":2}' }), status: 400, code: 'DIGEST_INVALID' },
  {
    name: 'monolithic push with a mismatched digest stores nothing',
    request: () => {
      const data = randomBytes(1000);
      return { method: 'POST', path: `/v2/${REPO}/blobs/uploads/?digest=${sha256('something else')}`, headers: { 'Content-Type': 'application/octet-stream' }, body: data };
    },
    status: 400,
    code: 'DIGEST_INVALID',
    after: async () => {
      expect(await uploadDirs()).toEqual([]);
      expect(await storedBlobs()).toEqual([...pushed].sort());
    },
  },
  {
    name: 'finishing an upload with a mismatched digest discards the session',
    request: async () => {
      const location = await startUpload();
      await rawRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: randomBytes(500) });
      return { method: 'PUT', path: `${location}?digest=${sha256('not this')}` };
    },
    status: 400,
    code: 'DIGEST_INVALID',
    after: async () => {
      expect(await uploadDirs()).toEqual([]);
      expect(await storedBlobs()).toEqual([...pushed].sort());
    },
  },
  {
    name: 'finishing an upload without a digest',
    request: async () => ({ method: 'PUT', path: await startUpload() }),
    status: 400,
    code: 'DIGEST_INVALID',
  },
  { name: 'upload id that is not a UUID', request: () => ({ method: 'PATCH', path: `/v2/${REPO}/blobs/uploads/..%2f..%2fetc`, body: 'x' }), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'unknown upload id', request: () => ({ method: 'GET', path: `/v2/${REPO}/blobs/uploads/${randomUUID()}` }), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  {
    name: 'upload session of another repository',
    request: async () => ({ method: 'GET', path: (await startUpload('hostile/other')).replace('hostile/other', REPO) }),
    status: 404,
    code: 'BLOB_UPLOAD_UNKNOWN',
  },
  {
    name: 'manifest PUT by digest with different content',
    request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/${sha256('other')}`, headers: { 'Content-Type': OCI_MANIFEST }, body: '{"schemaVersion":2}' }),
    status: 400,
    code: 'DIGEST_INVALID',
  },

  // Content-Range.
  {
    name: 'chunk out of order',
    request: async () => ({ method: 'PATCH', path: await startUpload(), headers: { 'Content-Range': '100-199', 'Content-Type': 'application/octet-stream' }, body: randomBytes(100) }),
    status: 416,
    code: 'RANGE_INVALID',
    headers: { range: '0-0' },
  },
  {
    name: 'malformed Content-Range',
    request: async () => ({ method: 'PATCH', path: await startUpload(), headers: { 'Content-Range': 'bytes=abc', 'Content-Type': 'application/octet-stream' }, body: 'x' }),
    status: 400,
    code: 'BLOB_UPLOAD_INVALID',
  },
  {
    name: 'Content-Range end before start',
    request: async () => ({ method: 'PATCH', path: await startUpload(), headers: { 'Content-Range': '9-0' }, body: 'x' }),
    status: 400,
    code: 'BLOB_UPLOAD_INVALID',
  },
  {
    name: 'Content-Range longer than the body',
    request: async () => ({ method: 'PATCH', path: await startUpload(), headers: { 'Content-Range': '0-9', 'Content-Type': 'application/octet-stream' }, body: randomBytes(5) }),
    status: 400,
    code: 'SIZE_INVALID',
  },
  {
    name: 'monolithic push whose Content-Length is not a number',
    request: () => ({ method: 'POST', path: `/v2/${REPO}/blobs/uploads/?digest=${sha256('')}`, headers: { 'Content-Length': 'abc' } }),
    status: 400,
  },

  // Manifests.
  {
    name: 'manifest referencing a blob that is not in the repository is not stored',
    request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/missing-blob`, headers: { 'Content-Type': OCI_MANIFEST }, body: manifestWithMissingBlob().data }),
    status: 400,
    code: 'MANIFEST_BLOB_UNKNOWN',
    after: async () => {
      const res = await rawRequest(registry.url, { method: 'GET', path: `/v2/${REPO}/manifests/missing-blob` });
      expect(res.status).toBe(404);
      const byDigest = await rawRequest(registry.url, { method: 'HEAD', path: `/v2/${REPO}/manifests/${manifestWithMissingBlob().digest}` });
      expect(byDigest.status).toBe(404);
    },
  },
  {
    name: 'manifest referencing a blob pushed only to another repository',
    request: async () => {
      const blob = randomBlob(64);
      expect((await client.pushBlob('hostile/elsewhere', blob)).status).toBe(201);
      pushed.add(blob.digest);
      const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: blob.digest, size: blob.size }, layers: [] });
      return { method: 'PUT', path: `/v2/${REPO}/manifests/cross-repo`, headers: { 'Content-Type': OCI_MANIFEST }, body: manifest };
    },
    status: 400,
    code: 'MANIFEST_BLOB_UNKNOWN',
  },
  {
    name: 'oversized manifest',
    request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/huge`, headers: { 'Content-Type': OCI_MANIFEST }, body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20) }),
    status: 413,
    code: 'MANIFEST_TOO_LARGE',
    after: async () => expect((await rawRequest(registry.url, { method: 'HEAD', path: `/v2/${REPO}/manifests/huge` })).status).toBe(404),
  },
  { name: 'manifest that is not JSON', request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/garbage`, headers: { 'Content-Type': OCI_MANIFEST }, body: '{not json' }), status: 400, code: 'MANIFEST_INVALID' },
  {
    name: 'manifest whose mediaType contradicts Content-Type',
    request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/contradiction`, headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' }, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256('c'), size: 1 }, layers: [] }) }),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  {
    name: 'Docker schema 1 manifest',
    request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/old`, headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: '{"schemaVersion":1}' }),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'manifest with a malformed layer digest',
    request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/bad-layer`, headers: { 'Content-Type': OCI_MANIFEST }, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256('c'), size: 1 }, layers: [{ mediaType: 'x', digest: 'sha256:../../etc', size: 1 }] }) }),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  { name: 'empty manifest body', request: () => ({ method: 'PUT', path: `/v2/${REPO}/manifests/empty`, headers: { 'Content-Type': OCI_MANIFEST } }), status: 400, code: 'MANIFEST_INVALID' },

  // Listings and methods.
  { name: 'negative page size', request: () => ({ method: 'GET', path: `/v2/${REPO}/tags/list?n=-1` }), status: 400, code: 'PAGINATION_INVALID' },
  { name: 'non-numeric page size in the catalog', request: () => ({ method: 'GET', path: '/v2/_catalog?n=ten' }), status: 400, code: 'PAGINATION_INVALID' },
  { name: 'unsupported method on a manifest', request: () => ({ method: 'POST', path: `/v2/${REPO}/manifests/latest` }), status: 405, code: 'UNSUPPORTED' },
  { name: 'unknown API path', request: () => ({ method: 'GET', path: '/v2/_nothing_here' }), status: 404, code: 'NOT_FOUND' },
];

describe('hostile input', () => {
  let blob: { digest: string; size: number };

  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient(registry.url);
    const image = await buildImage({ layers: 1 });
    await client.pushImage(REPO, 'good', image);
    for (const b of [image.config, ...image.layers]) pushed.add(b.digest);
    blob = image.layers[0]!;
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it.each(cases)('$name → $status $code', async (c) => {
    const res = await rawRequest(registry.url, await c.request());
    expect({ status: res.status, code: res.code }, res.body.toString('utf8').slice(0, 500)).toEqual({ status: c.status, code: c.code ?? res.code });
    if (c.status >= 400 && c.status !== 416 && res.body.length > 0) {
      const body = res.json<{ errors: { code: string; message: string }[] }>();
      expect(body.errors[0]!.message.length).toBeGreaterThan(0);
    }
    for (const [name, value] of Object.entries(c.headers ?? {})) {
      if (value instanceof RegExp) expect(String(res.headers[name])).toMatch(value);
      else expect(res.headers[name]).toBe(value);
    }
    await c.after?.();
  });

  describe('Range on blob GET (RFC 9110)', () => {
    it('answers an unsatisfiable range with 416 and the size', async () => {
      const res = await rawRequest(registry.url, { method: 'GET', path: `/v2/${REPO}/blobs/${blob.digest}`, headers: { Range: `bytes=${blob.size}-` } });
      expect(res.status).toBe(416);
      expect(res.code).toBe('RANGE_INVALID');
      expect(res.headers['content-range']).toBe(`bytes */${blob.size}`);
    });

    it.each(['bytes=abc', 'bytes=5-2', 'items=0-1', 'bytes=0-1,4-5', 'bytes=-'])('ignores the malformed or multi-range header %s and sends the whole blob', async (range) => {
      const res = await rawRequest(registry.url, { method: 'GET', path: `/v2/${REPO}/blobs/${blob.digest}`, headers: { Range: range } });
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(blob.size);
    });

    it('serves a suffix range', async () => {
      const res = await rawRequest(registry.url, { method: 'GET', path: `/v2/${REPO}/blobs/${blob.digest}`, headers: { Range: 'bytes=-10' } });
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes ${blob.size - 10}-${blob.size - 1}/${blob.size}`);
      expect(res.body.length).toBe(10);
    });
  });

  // Each waits until the registry has finished the cut-off request (RequestWatch) before looking.
  describe('interrupted pushes leave nothing visible', () => {
    it('a monolithic push cut off mid-body', async () => {
      const sessionsBefore = await uploadDirs();
      expect(await storedBlobs()).toEqual([...pushed].sort());
      const data = randomBytes(256 * 1024);
      const digest = sha256(data);
      const path = `/v2/${REPO}/blobs/uploads/?digest=${digest}`;
      const uploads = watchDir(join(storeDir(), 'uploads'));
      try {
        const finished = registry.requests.next('POST', path);
        await truncatedRequest(registry.url, {
          method: 'POST',
          path,
          headers: { 'Content-Type': 'application/octet-stream' },
          declaredLength: data.length,
          sent: data.subarray(0, 100 * 1024),
        });
        expect((await finished).error, 'the registry failed the request whose body was cut off').toBeInstanceOf(Error);
      } finally {
        uploads.close();
      }
      // The partial upload was written, and removed again.
      expect([...uploads.touched].filter((name) => !sessionsBefore.includes(name)).length).toBeGreaterThan(0);
      expect(await uploadDirs()).toEqual(sessionsBefore);
      expect((await rawRequest(registry.url, { method: 'HEAD', path: `/v2/${REPO}/blobs/${digest}` })).status).toBe(404);
      expect(await storedBlobs()).toEqual([...pushed].sort());
    });

    it('a chunk cut off mid-body: the session keeps its old size and the push resumes', async () => {
      const first = randomBytes(64 * 1024);
      const second = randomBytes(64 * 1024);
      const location = await startUpload();
      const ok = await rawRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Range': `0-${first.length - 1}`, 'Content-Type': 'application/octet-stream' }, body: first });
      expect(ok.status).toBe(202);
      const finished = registry.requests.next('PATCH', location);
      await truncatedRequest(registry.url, {
        method: 'PATCH',
        path: location,
        headers: { 'Content-Range': `${first.length}-${first.length + second.length - 1}`, 'Content-Type': 'application/octet-stream' },
        declaredLength: second.length,
        sent: second.subarray(0, 1000),
      });
      expect((await finished).error, 'the registry failed the chunk that was cut off').toBeInstanceOf(Error);
      const status = await rawRequest(registry.url, { method: 'GET', path: location });
      expect([status.status, status.headers.range]).toEqual([204, `0-${first.length - 1}`]);
      const resumed = await rawRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Range': `${first.length}-${first.length + second.length - 1}`, 'Content-Type': 'application/octet-stream' }, body: second });
      expect(resumed.status).toBe(202);
      const all = Buffer.concat([first, second]);
      const done = await rawRequest(registry.url, { method: 'PUT', path: `${location}?digest=${sha256(all)}` });
      expect(done.status).toBe(201);
      pushed.add(sha256(all));
      expect((await client.getBlob(REPO, sha256(all))).equals(all)).toBe(true);
    });

    it('a manifest cut off mid-body', async () => {
      const image = await buildImage({ layers: 1 });
      await client.pushImage(REPO, 'base', image);
      for (const b of [image.config, ...image.layers]) pushed.add(b.digest);
      const path = `/v2/${REPO}/manifests/cut`;
      const finished = registry.requests.next('PUT', path);
      await truncatedRequest(registry.url, {
        method: 'PUT',
        path,
        headers: { 'Content-Type': OCI_MANIFEST },
        declaredLength: image.manifest.size,
        sent: image.manifest.data.subarray(0, 40),
      });
      expect((await finished).error, 'the registry failed the manifest whose body was cut off').toBeInstanceOf(Error);
      expect((await rawRequest(registry.url, { method: 'HEAD', path })).status).toBe(404);
      expect((await rawRequest(registry.url, { method: 'HEAD', path: `/v2/${REPO}/manifests/${image.manifest.digest}` })).status).toBe(200);
    });
  });
});
