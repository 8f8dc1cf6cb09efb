// A proxy fill that gives up an upstream body before reading it (a quota refusal, a spool
// that cannot be made) answers the client and goes on serving. The registry runs as its own
// process, so that a crash shows as that process exiting. Stand-in upstream: distribution 2.8.2.
import { randomBytes } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobOf, OCI_CONFIG, OCI_MANIFEST, type Image } from '../support/oci.js';
import { spawnRegistry, type RegistryProcess } from '../support/process.js';
import { removeDir, tempDir } from '../support/registry.js';
import { eventually } from '../support/raw-http.js';
import { pushToUpstream, startDistribution, type Distribution } from '../support/upstream.js';

const MiB = 1024 * 1024;

let work: string;
let upstream: Distribution;
let registry: RegistryProcess;

function image(layerBytes: number): Image {
  const layer = blobOf(randomBytes(layerBytes));
  const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const manifest = blobOf(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }] }));
  return { config, layers: [layer], manifest, mediaType: OCI_MANIFEST };
}

async function putProject(name: string, body: unknown): Promise<void> {
  const res = await fetch(`${registry.url}/api/v1/projects/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.text()).toBeLessThan(300);
}

async function expectServing(): Promise<void> {
  expect(registry.child.exitCode, registry.output()).toBeNull();
  expect((await fetch(`${registry.url}/v2/`)).status).toBe(200);
}

/** A stand-in upstream: a bare HTTP server that serves `img`'s manifest as tag 1, and its layer as `sendLayer` does. */
async function bareUpstream(img: Image, sendLayer: (res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/v2/') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (req.url?.endsWith('/manifests/1')) {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.manifest.digest, 'content-length': String(img.manifest.size) });
      return res.end(req.method === 'HEAD' ? undefined : img.manifest.data);
    }
    if (req.url?.endsWith(`/blobs/${img.layers[0]!.digest}`)) return sendLayer(res);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

beforeAll(async () => {
  work = await tempDir('wharf-proxy-abandoned-');
  upstream = await startDistribution(join(work, 'upstream'));
  registry = await spawnRegistry({ dataDir: join(work, 'registry'), env: { WHARF_AUTH_MODE: 'none', WHARF_PROXY_BODY_IDLE_TIMEOUT: '2s' }, readyTimeoutMs: 120_000 });
});

afterAll(async () => {
  await registry?.stop();
  await upstream?.stop();
  if (work) await removeDir(work);
});

describe('upstream bodies a fill gives up (stand-in: distribution 2.8.2)', () => {
  it('refuses a blob past the quota with DENIED and keeps running', async () => {
    const img = image(2 * MiB);
    await pushToUpstream(upstream.url, 'library/quota', '1', img);
    await putProject('tight', { public: true, storageLimit: MiB, proxyCache: { provider: 'docker-registry', url: upstream.url } });
    const manifest = await fetch(`${registry.url}/v2/tight/library/quota/manifests/1`, { headers: { accept: OCI_MANIFEST } });
    expect(manifest.status).toBe(200);
    const res = await fetch(`${registry.url}/v2/tight/library/quota/blobs/${img.layers[0]!.digest}`);
    const body = await res.text();
    expect(res.status, body).toBe(403);
    expect(JSON.parse(body).errors[0].code).toBe('DENIED');
    expect(body).toMatch(/quota/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expectServing();
  });

  it('fails a fill whose spool cannot be made with a clear error, and keeps running', async () => {
    const img = image(6 * MiB);
    await pushToUpstream(upstream.url, 'library/spool', '1', img);
    await putProject('nospool', { public: true, proxyCache: { provider: 'docker-registry', url: upstream.url } });
    // A file where the spool directory goes (the data dir's proxy-spool).
    await writeFile(join(work, 'registry', 'proxy-spool'), 'not a directory');
    expect((await fetch(`${registry.url}/v2/nospool/library/spool/manifests/1`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
    const res = await fetch(`${registry.url}/v2/nospool/library/spool/blobs/${img.layers[0]!.digest}`);
    const body = await res.text();
    expect(res.status, body).toBeGreaterThanOrEqual(500);
    expect(JSON.parse(body).errors[0].code).toMatch(/UNAVAILABLE|INTERNAL/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expectServing();
  });

  it("holds a blob sent without Content-Length (stand-in: a bare HTTP server) to the project's quota, and stores none of it", async () => {
    const img = image(1024);
    const layer = img.layers[0]!;
    // For the layer, an endless chunked body (up to 256 MiB), counting what the socket took.
    let sent = 0;
    let bodyEnded = false;
    const { server, url } = await bareUpstream(img, (res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const piece = randomBytes(64 * 1024);
      const more = () => {
        while (sent < 256 * MiB) {
          sent += piece.length;
          if (!res.write(piece)) return void res.once('drain', more);
        }
        bodyEnded = true;
        res.end();
      };
      more();
    });
    // The test before left a file where the spool directory goes; a body of unknown length needs the spool.
    await rm(join(work, 'registry', 'proxy-spool'), { force: true });
    try {
      await putProject('chunked', { public: true, storageLimit: 2 * MiB, proxyCache: { provider: 'docker-registry', url } });
      expect((await fetch(`${registry.url}/v2/chunked/library/app/manifests/1`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
      const res = await fetch(`${registry.url}/v2/chunked/library/app/blobs/${layer.digest}`);
      // The answer started before the length was known; it is cut, never completed.
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(bodyEnded).toBe(false);
      // What the upstream's socket took: the quota plus what kernel and stream buffers hold.
      expect(sent).toBeLessThan(48 * MiB);
      expect(await readdir(join(work, 'registry', 'blobs', 'uploads')).catch(() => [])).toEqual([]);
      await eventually(async () => registry.output().split('\n').some((line) => line.includes('chunked/library/app') && /quota/.test(line)), 5_000, 'the log line of the refused fill');
      await expectServing();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
  it('gives up a blob the upstream trickles (stand-in: a bare HTTP server), within two or three body idle timeouts', async () => {
    const img = image(4 * MiB);
    let timer: NodeJS.Timeout | undefined;
    // 100 bytes every 50 ms: never idle, 2 KB/s against a minimum of 64 KiB per 2 s (the test's body idle timeout).
    const { server, url } = await bareUpstream(img, (res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(img.layers[0]!.size) });
      timer = setInterval(() => res.write(randomBytes(100)), 50);
      res.once('close', () => clearInterval(timer));
    });
    try {
      await putProject('trickle', { public: true, proxyCache: { provider: 'docker-registry', url } });
      expect((await fetch(`${registry.url}/v2/trickle/library/app/manifests/1`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
      const started = Date.now();
      const res = await fetch(`${registry.url}/v2/trickle/library/app/blobs/${img.layers[0]!.digest}`);
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(10_000);
      // Logged once the fill has cleaned up, just after the client's answer was cut.
      await eventually(async () => /fewer than the 65536 a fill needs/.test(registry.output()), 5_000, 'the log line of the given-up fill');
      await expectServing();
    } finally {
      clearInterval(timer);
      server.closeAllConnections();
      server.close();
    }
  });
});
