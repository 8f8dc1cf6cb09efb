// Proxy-cache projects against a stand-in for Docker Hub: Debian's docker-registry
// (distribution 2.8.2) on loopback, behind a proxy that counts the requests it gets and
// can answer 429, stall, or corrupt blob bodies. Real clients (skopeo, crane) pull
// through Wharf, which runs with token auth.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN, basic, ManagementClient } from '../support/auth.js';
import { failure } from '../support/clients/expect.js';
import { runGc } from '../support/gc.js';
import { buildImage, errorCode, indexOf, OCI_INDEX, RegistryClient, sha256, type Image } from '../support/oci.js';
import { removeDir, startRegistry, tempDir, TEST_ADMIN_PASSWORD, tokenAuth, type RunningRegistry } from '../support/registry.js';
import { eventually } from '../support/raw-http.js';
import { pushToUpstream, startDistribution, startUpstreamProxy, type Distribution, type UpstreamProxy } from '../support/upstream.js';
import { clientsIn, type Clients } from './clients.js';

const ACCEPT = [OCI_INDEX, 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');
const MANIFEST_PATH = /\/manifests\//;

let work: string;
let upstream: Distribution;
let counter: UpstreamProxy;
let wharf: RunningRegistry;
let api: ManagementClient;
let clients: Clients;
let app: Image;
let other: Image;

/** An anonymous token for pulling `repository` from Wharf (public proxy project). */
async function pullToken(repository: string): Promise<string> {
  const res = await fetch(`${wharf.url}/token?service=wharf-test&scope=repository:${repository}:pull`);
  return ((await res.json()) as { token: string }).token;
}

async function wharfGet(path: string, repository: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${wharf.url}${path}`, { ...init, headers: { Accept: ACCEPT, Authorization: `Bearer ${await pullToken(repository)}`, ...(init.headers as Record<string, string>) }, signal: AbortSignal.timeout(60_000) });
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${wharf.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

beforeAll(async () => {
  work = await tempDir('wharf-proxy-dist-');
  upstream = await startDistribution(join(work, 'upstream'));
  counter = await startUpstreamProxy(upstream.url);
  app = await buildImage({ layers: 3, payloadSize: 256 * 1024 });
  other = await buildImage({ layers: 2 });
  await pushToUpstream(upstream.url, 'library/app', '1', app);
  await pushToUpstream(upstream.url, 'team/other', 'v1', other);
  wharf = await startRegistry({ auth: tokenAuth(), jobs: { gc: { graceSeconds: 0 } }, proxy: { responseTimeoutMs: 2000 } });
  api = new ManagementClient(wharf.url);
  await api.ok('PUT', '/projects/hub', { public: true, proxyCache: { provider: 'docker-hub', url: counter.url, mirrorOf: ['docker.io'], manifestTTLSeconds: 2 } });
  clients = await clientsIn(join(work, 'clients'), inject('toolsBin'));
});

afterAll(async () => {
  await wharf?.stop();
  await counter?.close();
  await upstream?.stop();
  if (work) await removeDir(work);
});

describe('proxyCache settings (stand-in: distribution 2.8.2)', () => {
  it('GET shows everything but the password, which is write-only', async () => {
    await api.ok('PUT', '/projects/secret-hub', { proxyCache: { provider: 'docker-registry', url: `${counter.url}/`, username: 'puller', password: 'hunter2', insecure: true, manifestTTLSeconds: 60 } });
    const project = await api.ok('GET', '/projects/secret-hub');
    expect(project.proxyCache).toEqual({ provider: 'docker-registry', url: counter.url, username: 'puller', passwordSet: true, insecure: true, mirrorOf: [], manifestTTLSeconds: 60 });
    expect(JSON.stringify(project)).not.toContain('hunter2');
    const listed = await api.ok('GET', '/projects?limit=500');
    expect(JSON.stringify(listed)).not.toContain('hunter2');
    // Omitted, the password is kept; the audit log never holds it.
    await api.ok('PUT', '/projects/secret-hub', { proxyCache: { provider: 'docker-registry', url: counter.url, username: 'puller', manifestTTLSeconds: 30 } });
    expect((await api.ok('GET', '/projects/secret-hub')).proxyCache.passwordSet).toBe(true);
    expect(JSON.stringify(await api.ok('GET', '/audit?resource=secret-hub'))).not.toContain('hunter2');
    // null makes it an ordinary project again.
    await api.ok('PUT', '/projects/secret-hub', { proxyCache: null });
    expect((await api.ok('GET', '/projects/secret-hub')).proxyCache).toBeNull();
  });

  it('refuses bad settings with a clear error, and a mirrored host a second project claims, writing nothing', async () => {
    const bad = await api.call('PUT', '/projects/bad-hub', { proxyCache: { provider: 'dockerhub', url: counter.url } });
    expect(bad.status).toBe(400);
    const creds = await api.call('PUT', '/projects/bad-hub', { proxyCache: { provider: 'quay', url: 'https://user:pw@quay.example' } });
    expect(creds.status).toBe(400);
    expect(creds.body.errors[0].message).toContain('proxyCache.url');
    const taken = await api.call('PUT', '/projects/second-hub', { proxyCache: { provider: 'docker-hub', url: counter.url, mirrorOf: ['registry-1.docker.io'] } });
    expect(taken.status).toBe(409);
    expect(taken.body.errors[0].message).toContain('already mirrored by project "hub"');
    expect((await api.call('GET', '/projects/second-hub')).status).toBe(404);
    expect((await api.call('GET', '/projects/bad-hub')).status).toBe(404);
  });

  it('lets only system administrators set an upstream', async () => {
    await api.ok('PUT', '/projects/owned', {});
    await api.user('owner', 'owner-password-1');
    await api.member('owned', 'owner', 'projectAdmin');
    const res = await api.as(basic('owner', 'owner-password-1')).call('PUT', '/projects/owned', { proxyCache: { provider: 'ghcr', url: 'https://ghcr.io' } });
    expect(res.status).toBe(403);
    expect((await api.ok('GET', '/projects/owned')).proxyCache).toBeNull();
  });
});

describe('pull-through with real clients (stand-in: distribution 2.8.2)', () => {
  it('skopeo and crane pull hub/library/app:1 with the upstream digests; a second pull makes no upstream request', async () => {
    counter.reset();
    const ref = `${wharf.host}/hub/library/app:1`;
    const out = join(clients.dir, 'skopeo-app');
    await clients.skopeo('copy', '--preserve-digests', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:1`);
    const layout = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(layout.manifests[0]!.digest).toBe(app.manifest.digest);
    for (const blob of [app.config, ...app.layers]) {
      const bytes = await readFile(join(out, 'blobs', 'sha256', blob.digest.slice(7)));
      expect(sha256(bytes)).toBe(blob.digest);
    }
    // One manifest and one request per blob reached the upstream.
    expect(counter.count('GET', MANIFEST_PATH)).toBe(1);
    for (const blob of [app.config, ...app.layers]) expect(counter.requests.filter((r) => r.method === 'GET' && r.url.endsWith(blob.digest))).toHaveLength(1);

    const seen = counter.requests.length;
    expect((await clients.crane('digest', ref)).stdout.trim()).toBe(app.manifest.digest);
    expect((await clients.crane('manifest', ref)).stdoutBytes.equals(app.manifest.data)).toBe(true);
    await clients.crane('pull', '--format', 'oci', ref, join(clients.dir, 'crane-app'));
    const craned = JSON.parse(await readFile(join(clients.dir, 'crane-app', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(craned.manifests[0]!.digest).toBe(app.manifest.digest);
    expect(counter.requests.slice(seen)).toEqual([]);
  });

  it('maps a single-segment name to library/ for docker-hub (hub/app → library/app)', async () => {
    expect((await clients.crane('digest', `${wharf.host}/hub/app:1`)).stdout.trim()).toBe(app.manifest.digest);
    expect(counter.requests.some((r) => r.url === '/v2/library/app/manifests/1')).toBe(true);
  });

  it('re-checks an expired tag with one HEAD, and serves cached content by digest without asking the upstream', async () => {
    await new Promise((resolve) => setTimeout(resolve, 2500));
    counter.reset();
    expect((await clients.crane('digest', `${wharf.host}/hub/library/app:1`)).stdout.trim()).toBe(app.manifest.digest);
    expect(counter.requests).toEqual([{ method: 'HEAD', url: '/v2/library/app/manifests/1' }]);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    counter.reset();
    await clients.crane('pull', '--format', 'oci', `${wharf.host}/hub/library/app@${app.manifest.digest}`, join(clients.dir, 'by-digest'));
    expect(counter.requests).toEqual([]);
  });

  it('refuses pushes into a proxy project with DENIED and a clear message', async () => {
    await clients.crane('auth', 'login', wharf.host, '-u', 'admin', '-p', TEST_ADMIN_PASSWORD);
    try {
      const err = await failure(clients.crane('copy', `${wharf.host}/hub/library/app:1`, `${wharf.host}/hub/library/app:pushed`));
      expect(err.stderr).toMatch(/DENIED: project "hub" is a proxy cache/);
    } finally {
      await clients.crane('auth', 'logout', wharf.host);
    }
    const token = (await fetch(`${wharf.url}/token?service=wharf-test&scope=repository:hub/mine:push,pull`, { headers: { Authorization: ADMIN } }).then((r) => r.json())) as { token: string };
    const res = await fetch(`${wharf.url}/v2/hub/mine/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${token.token}` } });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]).toMatchObject({ code: 'DENIED', message: expect.stringContaining('proxy cache') });
  });

  it('fetches index children when they are asked for', async () => {
    const amd64 = await buildImage({ layers: 1, architecture: 'amd64' });
    const arm64 = await buildImage({ layers: 1, architecture: 'arm64' });
    const index = indexOf([{ image: amd64, architecture: 'amd64' }, { image: arm64, architecture: 'arm64' }]);
    await pushToUpstream(upstream.url, 'library/multi', 'amd64', amd64);
    await pushToUpstream(upstream.url, 'library/multi', 'arm64', arm64);
    expect((await new RegistryClient(upstream.url).pushManifest('library/multi', '1', index, OCI_INDEX)).status).toBe(201);
    counter.reset();
    await clients.crane('pull', '--platform', 'linux/arm64', '--format', 'oci', `${wharf.host}/hub/library/multi:1`, join(clients.dir, 'multi'));
    expect(counter.requests.some((r) => r.url.endsWith(`/manifests/${arm64.manifest.digest}`))).toBe(true);
    expect(counter.requests.some((r) => r.url.endsWith(`/manifests/${amd64.manifest.digest}`))).toBe(false);
    const child = await wharfGet(`/v2/hub/library/multi/manifests/${arm64.manifest.digest}`, 'hub/library/multi');
    expect(child.headers.get('docker-content-digest')).toBe(arm64.manifest.digest);
  });
});

describe('when the upstream fails (stand-in: distribution 2.8.2 behind a fault proxy)', () => {
  it('serves cached tags with a Warning header and a metric while the upstream answers 429', async () => {
    await new Promise((resolve) => setTimeout(resolve, 2500));
    counter.mode = 'throttle';
    try {
      const before = await metric('wharf_proxy_stale_served_total', 'reason="throttled"');
      expect((await clients.crane('digest', `${wharf.host}/hub/library/app:1`)).stdout.trim()).toBe(app.manifest.digest);
      const res = await wharfGet('/v2/hub/library/app/manifests/1', 'hub/library/app');
      expect(res.status).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(app.manifest.digest);
      expect(res.headers.get('warning')).toMatch(/^110 wharf "Response is Stale/);
      expect(await metric('wharf_proxy_stale_served_total', 'reason="throttled"')).toBeGreaterThan(before);
      // Nothing cached: the client is told to slow down, not left hanging.
      const uncached = await wharfGet('/v2/hub/team/other/manifests/v1', 'hub/team/other');
      expect(uncached.status).toBe(429);
      expect(uncached.headers.get('retry-after')).toBe('1');
    } finally {
      counter.mode = 'forward';
    }
  });

  it('answers an uncached pull with 503 naming the timeout when the upstream stalls', async () => {
    counter.mode = 'stall';
    try {
      const res = await wharfGet('/v2/hub/team/other/manifests/v1', 'hub/team/other');
      expect(res.status).toBe(503);
      const body = (await res.json()) as { errors: { code: string; message: string; detail: { failure: string } }[] };
      expect(body.errors[0]!.code).toBe('UNAVAILABLE');
      expect(body.errors[0]!.detail.failure).toBe('timeout');
    } finally {
      counter.mode = 'forward';
    }
  });

  it('refuses a blob whose bytes do not match its digest, and stores nothing', async () => {
    const bad = await buildImage({ layers: 1, payloadSize: 64 * 1024 });
    await pushToUpstream(upstream.url, 'library/bad', '1', bad);
    counter.mode = 'corrupt-blobs';
    try {
      const err = await failure(clients.crane('pull', '--format', 'oci', `${wharf.host}/hub/library/bad:1`, join(clients.dir, 'bad')));
      expect(err.message).toBeTruthy();
      const layer = bad.layers[0]!.digest;
      expect(await wharf.app.metadata.blobs.linkedSize('hub/library/bad', layer)).toBeUndefined();
      expect(await wharf.app.blobStore.stat(layer)).toBeUndefined();
      expect(await metric('wharf_proxy_blob_fills_total', 'outcome="digest_mismatch"')).toBeGreaterThan(0);
    } finally {
      counter.mode = 'forward';
    }
    // Once the upstream sends the right bytes, the same pull works.
    await clients.crane('pull', '--format', 'oci', `${wharf.host}/hub/library/bad:1`, join(clients.dir, 'good'));
  });

  it('keeps serving cached tags and digests with the upstream stopped; an uncached pull fails at once with a clear error', async () => {
    await upstream.stop();
    try {
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect((await clients.crane('digest', `${wharf.host}/hub/library/app:1`)).stdout.trim()).toBe(app.manifest.digest);
      await clients.crane('pull', '--format', 'oci', `${wharf.host}/hub/library/app:1`, join(clients.dir, 'down-tag'));
      await clients.skopeo('copy', '--src-tls-verify=false', `docker://${wharf.host}/hub/library/app@${app.manifest.digest}`, `oci:${join(clients.dir, 'down-digest')}:1`);
      const res = await wharfGet('/v2/hub/team/other/manifests/v1', 'hub/team/other');
      expect(res.status).toBe(503);
      const body = (await res.json()) as { errors: { code: string; message: string }[] };
      expect(body.errors[0]!.code).toBe('UNAVAILABLE');
      expect(body.errors[0]!.message).toContain('is not cached, and the upstream cannot supply it');
    } finally {
      await upstream.start();
    }
  });
});

describe('what the upstream cannot make Wharf do (stand-in: distribution 2.8.2 behind a fault proxy)', () => {
  it("fetches a blob that another project holds from this project's upstream: a manifest naming a private project's blob does not open it", async () => {
    const shared = await buildImage({ layers: 1, payloadSize: 64 * 1024 });
    await api.ok('PUT', '/projects/vault', { public: false });
    const push = (await fetch(`${wharf.url}/token?service=wharf-test&scope=repository:vault/shared:pull,push`, { headers: { Authorization: ADMIN } }).then((r) => r.json())) as { token: string };
    await pushToUpstream(wharf.url, 'vault/shared', '1', shared, `Bearer ${push.token}`);
    await pushToUpstream(upstream.url, 'team/shared', '1', shared);
    const layer = shared.layers[0]!.digest;
    expect((await wharfGet(`/v2/vault/shared/blobs/${layer}`, 'vault/shared')).status).toBe(401);
    counter.reset();
    expect((await wharfGet('/v2/hub/team/shared/manifests/1', 'hub/team/shared')).status).toBe(200);
    const res = await wharfGet(`/v2/hub/team/shared/blobs/${layer}`, 'hub/team/shared');
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(layer);
    // The bytes came from the upstream (a prefetch or this GET, once), not from the private project's link.
    await eventually(async () => counter.count('GET', new RegExp(`/blobs/${layer}$`)) === 1, 10_000, 'the upstream asked for the blob');
  });

  it('serves the cached tag when the re-check finds a new digest upstream but the GET of it is throttled', async () => {
    const first = await buildImage({ layers: 1 });
    const second = await buildImage({ layers: 1 });
    await pushToUpstream(upstream.url, 'team/moving', '1', first);
    expect((await wharfGet('/v2/hub/team/moving/manifests/1', 'hub/team/moving')).headers.get('docker-content-digest')).toBe(first.manifest.digest);
    await pushToUpstream(upstream.url, 'team/moving', '1', second);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    counter.mode = 'throttle-manifest-gets';
    try {
      const res = await wharfGet('/v2/hub/team/moving/manifests/1', 'hub/team/moving');
      expect(res.status).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(first.manifest.digest);
      expect(res.headers.get('warning')).toMatch(/^110 wharf "Response is Stale/);
    } finally {
      counter.mode = 'forward';
    }
    expect((await wharfGet('/v2/hub/team/moving/manifests/1', 'hub/team/moving')).headers.get('docker-content-digest')).toBe(second.manifest.digest);
  });

  it('answers a challenge whose realm is no URL with 503, serves cached tags meanwhile, and does not keep the realm', async () => {
    await new Promise((resolve) => setTimeout(resolve, 2500));
    counter.mode = 'bad-realm';
    try {
      const stale = await wharfGet('/v2/hub/library/app/manifests/1', 'hub/library/app');
      expect(stale.status).toBe(200);
      expect(stale.headers.get('warning')).toMatch(/^110 wharf "Response is Stale/);
      const uncached = await wharfGet('/v2/hub/team/realmless/manifests/1', 'hub/team/realmless');
      expect(uncached.status).toBe(503);
      expect(JSON.stringify(await uncached.json())).toMatch(/token realm that is not a URL/);
    } finally {
      counter.mode = 'forward';
    }
    const later = await buildImage({ layers: 1 });
    await pushToUpstream(upstream.url, 'team/later', '1', later);
    expect((await wharfGet('/v2/hub/team/later/manifests/1', 'hub/team/later')).status).toBe(200);
  });
});

describe('quota, GC and audit on cached content (stand-in: distribution 2.8.2)', () => {
  it('counts cached blobs against the project quota, refuses a pull past it, and GC collects cached content nothing references', async () => {
    await api.ok('PUT', '/projects/small', { public: true, storageLimit: 10 * 1024 * 1024, proxyCache: { provider: 'docker-registry', url: counter.url } });
    await clients.crane('pull', '--format', 'oci', `${wharf.host}/small/team/other:v1`, join(clients.dir, 'small'));
    const otherBytes = [other.config, ...other.layers].reduce((sum, b) => sum + b.size, 0);
    // The client finishes once the bytes are verified; linking them may still be under way.
    await eventually(async () => (await api.ok('GET', '/projects/small/quota')).usedBytes === otherBytes, 30_000, 'the cached blobs counted against the quota');
    expect((await api.ok('GET', '/projects/small/quota')).usedBytes).toBe(otherBytes);

    // A limit below what the next image needs: the blob is refused, not stored.
    await api.ok('PUT', '/projects/small/quota', { limitBytes: otherBytes + 1 });
    const err = await failure(clients.crane('pull', '--format', 'oci', `${wharf.host}/small/library/app:1`, join(clients.dir, 'over')));
    expect(err.stderr).toMatch(/quota/);
    expect((await api.ok('GET', '/projects/small/quota')).usedBytes).toBe(otherBytes);

    // Untagged, the cached content goes with the next collection (grace window 0 here).
    const token = (await fetch(`${wharf.url}/token?service=wharf-test&scope=repository:small/team/other:delete,pull`, { headers: { Authorization: ADMIN } }).then((r) => r.json())) as { token: string };
    const deleted = await fetch(`${wharf.url}/v2/small/team/other/manifests/${other.manifest.digest}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token.token}` } });
    expect(deleted.status).toBe(202);
    const run = await runGc(wharf.url, {}, ADMIN);
    expect(run.state).toBe('succeeded');
    expect((await api.ok('GET', '/projects/small/quota')).usedBytes).toBe(0);
    expect(await wharf.app.blobStore.stat(other.layers[0]!.digest)).toBeUndefined();
  });

  it('records fetched artifacts and pulls in the audit log', async () => {
    const records = (await api.ok('GET', '/audit?resource=hub/')).items as { action: string; resource: string }[];
    expect(records.some((r) => r.action === 'cache' && r.resource === 'hub/library/app:1')).toBe(true);
    expect(records.some((r) => r.action === 'pull' && r.resource === 'hub/library/app:1')).toBe(true);
  });

  it('answers a name under a project that is no proxy as before (BLOB_UNKNOWN)', async () => {
    await api.ok('PUT', '/projects/plain', { public: true });
    const res = await wharfGet(`/v2/plain/x/blobs/${app.config.digest}`, 'plain/x');
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('BLOB_UNKNOWN');
  });
});
