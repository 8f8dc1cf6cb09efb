// The one OCI client for other registries (registry/src/remote), against stand-ins for
// real upstreams: Debian's docker-registry (distribution 2.8.2) with htpasswd Basic auth,
// and a second Wharf with token auth (the Docker token flow, anonymous and with
// credentials), each behind a proxy that counts requests and can fail on purpose.
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RemoteError, RemoteRegistry } from '../../src/remote/index.js';
import { ADMIN, basic, ManagementClient } from '../support/auth.js';
import { buildImage, blobOf, OCI_MANIFEST, type Image } from '../support/oci.js';
import { freePort } from '../support/ports.js';
import { removeDir, startRegistry, tempDir, tokenAuth, type RunningRegistry } from '../support/registry.js';
import { pushToUpstream, startDistribution, startUpstreamProxy, type Distribution, type UpstreamProxy } from '../support/upstream.js';
import { clientsIn } from './clients.js';

let work: string;
let image: Image;
const clients: RemoteRegistry[] = [];
const remote = (options: ConstructorParameters<typeof RemoteRegistry>[0]) => {
  const client = new RemoteRegistry(options);
  clients.push(client);
  return client;
};

async function failureOf(promise: Promise<unknown>): Promise<RemoteError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RemoteError);
  return err as RemoteError;
}

async function sha256Of(body: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

beforeAll(async () => {
  work = await tempDir('wharf-remote-');
  image = await buildImage({ layers: 2, payloadSize: 128 * 1024 });
});

afterAll(async () => {
  for (const client of clients) await client.close();
  if (work) await removeDir(work);
});

describe('Basic auth (stand-in: distribution 2.8.2 with htpasswd)', () => {
  let upstream: Distribution;
  let counter: UpstreamProxy;

  beforeAll(async () => {
    const htpasswd = join(work, 'htpasswd');
    await writeFile(htpasswd, execFileSync('htpasswd', ['-nbB', 'puller', 'pull-secret']));
    upstream = await startDistribution(join(work, 'basic'), { htpasswd });
    await pushToUpstream(upstream.url, 'library/app', '1', image, basic('puller', 'pull-secret'));
    counter = await startUpstreamProxy(upstream.url);
  });
  afterAll(async () => {
    await counter?.close();
    await upstream?.stop();
  });

  it('reads manifests and blob streams with the upstream digests, sending Basic at once after the first challenge', async () => {
    const client = remote({ url: counter.url, credentials: { username: 'puller', password: 'pull-secret' } });
    counter.reset();
    const head = await client.headManifest('library/app', '1');
    expect(head.digest).toBe(image.manifest.digest);
    const manifest = await client.getManifest('library/app', '1');
    expect(manifest).toMatchObject({ digest: image.manifest.digest, mediaType: OCI_MANIFEST });
    expect(manifest.content.equals(image.manifest.data)).toBe(true);
    for (const blob of [image.config, ...image.layers]) {
      const fetched = await client.getBlob('library/app', blob.digest);
      expect(fetched.size).toBe(blob.size);
      expect(await sha256Of(fetched.body)).toBe(blob.digest);
    }
    // One challenge: the first request; every later one carried the credentials.
    expect(counter.requests).toHaveLength(2 + 4);
  });

  it('fails with unauthorized for a wrong password and for none', async () => {
    expect((await failureOf(remote({ url: upstream.url, credentials: { username: 'puller', password: 'wrong' } }).getManifest('library/app', '1'))).failure).toBe('unauthorized');
    expect((await failureOf(remote({ url: upstream.url }).getManifest('library/app', '1'))).failure).toBe('unauthorized');
  });
});

describe('the Docker token flow (stand-in: a second Wharf with token auth)', () => {
  let upstream: RunningRegistry;
  let counter: UpstreamProxy;
  let robot: { name: string; secret: string };

  beforeAll(async () => {
    upstream = await startRegistry({ auth: tokenAuth() });
    const api = new ManagementClient(upstream.url);
    await api.project('private');
    await api.project('open', { public: true });
    robot = await api.robot('private', 'puller', ['pull']);
    const token = (await fetch(`${upstream.url}/token?service=wharf-test&scope=repository:private/app:pull,push&scope=repository:open/app:pull,push`, { headers: { Authorization: ADMIN } }).then((r) => r.json())) as { token: string };
    for (const repo of ['private/app', 'open/app']) {
      for (const blob of [image.config, ...image.layers]) {
        const res = await fetch(`${upstream.url}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { Authorization: `Bearer ${token.token}`, 'Content-Type': 'application/octet-stream' }, body: blob.data });
        expect(res.status).toBe(201);
      }
      const res = await fetch(`${upstream.url}/v2/${repo}/manifests/1`, { method: 'PUT', headers: { Authorization: `Bearer ${token.token}`, 'Content-Type': OCI_MANIFEST }, body: image.manifest.data });
      expect(res.status).toBe(201);
    }
    counter = await startUpstreamProxy(upstream.url);
  });
  afterAll(async () => {
    await counter?.close();
    await upstream?.stop();
  });

  it('gets a token with credentials, once per scope, and pulls a private repository', async () => {
    const client = remote({ url: counter.url, credentials: { username: robot.name, password: robot.secret } });
    counter.reset();
    expect((await client.getManifest('private/app', '1')).digest).toBe(image.manifest.digest);
    expect(await sha256Of((await client.getBlob('private/app', image.layers[0]!.digest)).body)).toBe(image.layers[0]!.digest);
    expect((await client.headManifest('private/app', '1')).digest).toBe(image.manifest.digest);
    // The first request was challenged (the realm is Wharf's /token as reached through the
    // counting proxy); the one token was reused for the others.
    expect(counter.requests.map((r) => `${r.method} ${r.url.split('?', 1)[0]!.replace(/sha256:[0-9a-f]+/, 'D')}`)).toEqual([
      'GET /v2/private/app/manifests/1',
      'GET /token',
      'GET /v2/private/app/manifests/1',
      'GET /v2/private/app/blobs/D',
      'HEAD /v2/private/app/manifests/1',
    ]);
  });

  it('pulls a public repository anonymously, and is refused a private one without credentials', async () => {
    const anonymous = remote({ url: counter.url });
    expect((await anonymous.getManifest('open/app', '1')).digest).toBe(image.manifest.digest);
    const refused = await failureOf(anonymous.getManifest('private/app', '1'));
    expect(['unauthorized', 'denied']).toContain(refused.failure);
    expect(refused.transient).toBe(false);
  });

  it('a proxy project with the robot credentials pulls through the token flow with crane', async () => {
    const wharf = await startRegistry({});
    try {
      await fetch(`${wharf.url}/api/v1/projects/mirror`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ proxyCache: { provider: 'wharf', url: counter.url, username: robot.name, password: robot.secret } }),
      });
      const crane = await clientsIn(join(work, 'crane'), inject('toolsBin'));
      expect((await crane.crane('digest', `${wharf.host}/mirror/private/app:1`)).stdout.trim()).toBe(image.manifest.digest);
      await crane.crane('pull', '--format', 'oci', `${wharf.host}/mirror/private/app:1`, join(work, 'crane-out'));
    } finally {
      await wharf.stop();
    }
  });

  it('serves the upstream referrers list through a proxy project', async () => {
    const artifact = blobOf(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sbom', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }, layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }], subject: { mediaType: OCI_MANIFEST, digest: image.manifest.digest, size: image.manifest.size } }));
    const token = (await fetch(`${upstream.url}/token?service=wharf-test&scope=repository:open/app:pull,push`, { headers: { Authorization: ADMIN } }).then((r) => r.json())) as { token: string };
    const empty = await fetch(`${upstream.url}/v2/open/app/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a`, { method: 'POST', headers: { Authorization: `Bearer ${token.token}` }, body: '{}' });
    expect(empty.status).toBe(201);
    const pushed = await fetch(`${upstream.url}/v2/open/app/manifests/${artifact.digest}`, { method: 'PUT', headers: { Authorization: `Bearer ${token.token}`, 'Content-Type': OCI_MANIFEST }, body: artifact.data });
    expect(pushed.status).toBe(201);
    const wharf = await startRegistry({});
    try {
      await fetch(`${wharf.url}/api/v1/projects/mirror`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ proxyCache: { provider: 'wharf', url: counter.url } }) });
      const res = await fetch(`${wharf.url}/v2/mirror/open/app/referrers/${image.manifest.digest}`);
      expect(res.status).toBe(200);
      const index = (await res.json()) as { manifests: { digest: string; artifactType: string }[] };
      expect(index.manifests).toEqual([expect.objectContaining({ digest: artifact.digest, artifactType: 'application/vnd.example.sbom' })]);
      // The referrer itself is fetched when asked for.
      const referrer = await fetch(`${wharf.url}/v2/mirror/open/app/manifests/${artifact.digest}`, { headers: { Accept: OCI_MANIFEST } });
      expect(referrer.headers.get('docker-content-digest')).toBe(artifact.digest);
    } finally {
      await wharf.stop();
    }
  });
});

describe('failures, each classified (stand-in: distribution 2.8.2 behind a fault proxy)', () => {
  let upstream: Distribution;
  let counter: UpstreamProxy;

  beforeAll(async () => {
    upstream = await startDistribution(join(work, 'faults'));
    await pushToUpstream(upstream.url, 'library/app', '1', image);
    counter = await startUpstreamProxy(upstream.url);
  });
  afterAll(async () => {
    await counter?.close();
    await upstream?.stop();
  });

  it('not-found for an unknown tag; unreachable for a closed port; throttled with Retry-After for 429; timeout for a stall', async () => {
    expect((await failureOf(remote({ url: counter.url }).getManifest('library/app', 'nope'))).failure).toBe('not-found');
    const closed = await failureOf(remote({ url: `http://127.0.0.1:${await freePort()}` }).getManifest('library/app', '1'));
    expect(closed.failure).toBe('unreachable');
    expect(closed.transient).toBe(true);
    counter.mode = 'throttle';
    try {
      const throttled = await failureOf(remote({ url: counter.url }).getManifest('library/app', '1'));
      expect(throttled).toMatchObject({ failure: 'throttled', details: { status: 429, retryAfterSeconds: 1 } });
      counter.mode = 'stall';
      const stalled = await failureOf(remote({ url: counter.url, timeouts: { responseMs: 500 } }).headManifest('library/app', '1'));
      expect(stalled.failure).toBe('timeout');
    } finally {
      counter.mode = 'forward';
    }
  });

  it('times out a request that waits for a connection while every one is busy with a body that trickles', async () => {
    // A stand-in upstream whose blob bodies send one byte, then hold the connection.
    const held: import('node:http').ServerResponse[] = [];
    const server = createServer((req, res) => {
      if (/\/blobs\//.test(req.url ?? '')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' });
        res.write('x');
        held.push(res);
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = remote({ url, connections: 1, timeouts: { responseMs: 500, bodyIdleMs: 60_000 } });
      const blob = await client.getBlob('library/app', `sha256:${'0'.repeat(64)}`);
      const started = Date.now();
      const queued = await failureOf(client.headManifest('library/app', '1'));
      expect(queued.failure).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(5_000);
      blob.body.destroy();
    } finally {
      for (const res of held) res.destroy();
      server.close();
    }
  });

  it('does not cut a streamed upload that takes longer than responseMs to send', async () => {
    let received = 0;
    const server = createServer((req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.writeHead(202, { location: '/v2/library/app/blobs/uploads/next', range: `0-${received - 1}` }).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = remote({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeouts: { responseMs: 300 } });
      async function* slow(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => setTimeout(r, 400));
          yield Buffer.alloc(1024, i);
        }
      }
      expect(await client.uploadChunk('library/app', '/v2/library/app/blobs/uploads/1', slow(), 0, 3 * 1024)).toMatch(/uploads\/next$/);
      expect(received).toBe(3 * 1024);
    } finally {
      server.close();
    }
  });

  /** A stand-in upstream that answers every request with `{}` and, when told, closes the connection on a request instead. */
  async function bareUpstream() {
    const seen = { connections: 0, requests: 0, closeNext: 0 };
    const server = createNetServer((socket) => {
      seen.connections++;
      socket.on('data', (data: Buffer) => {
        for (let i = (data.toString('latin1').match(/ HTTP\/1\.1\r\n/g) ?? []).length; i > 0; i--) {
          seen.requests++;
          if (seen.closeNext > 0) {
            seen.closeNext--;
            socket.destroy();
            return;
          }
          socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { seen, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  it('sends a GET once more when the upstream closes a kept-alive connection as the request arrives, and only once', async () => {
    const { seen, server, url } = await bareUpstream();
    try {
      const client = remote({ url, connections: 1 });
      await client.ping();
      seen.closeNext = 1;
      await client.ping();
      expect(seen).toMatchObject({ connections: 2, requests: 3 });
      seen.closeNext = 2;
      expect((await failureOf(client.ping())).failure).toBe('unreachable');
      expect(seen).toMatchObject({ connections: 3, requests: 5 });
    } finally {
      server.close();
    }
  });

  it('waits responseMs in all for an answer, a second sending included', async () => {
    // Each connection is held 600 ms and then closed (the first) or answered (the next): the
    // second sending would answer 1.2 s after the request, past the 1 s allowed.
    let connections = 0;
    const server = createNetServer((socket) => {
      const nth = ++connections;
      socket.once('data', () => setTimeout(() => (nth === 1 ? socket.destroy() : socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}')), 600));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = remote({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeouts: { responseMs: 1_000 } });
      const started = Date.now();
      const failed = await failureOf(client.getBlob('library/app', `sha256:${'0'.repeat(64)}`));
      expect(failed.failure).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(1_150);
      expect(connections).toBe(2);
    } finally {
      server.close();
    }
  });

  it('does not tell where a redirect led when that place fails', async () => {
    const closedPort = await freePort();
    const server = createServer((_req, res) => res.writeHead(307, { location: `http://127.0.0.1:${closedPort}/elsewhere` }).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const failed = await failureOf(remote({ url }).getBlob('library/app', `sha256:${'0'.repeat(64)}`));
      expect(failed.failure).toBe('unreachable');
      expect(failed.message).toBe(`${url}: where it redirected could not be reached`);
      expect(failed.message).not.toContain(String(closedPort));
      expect(String((failed.cause as Error).message)).toContain(String(closedPort));
    } finally {
      server.close();
    }
  });

  it("keeps an idle connection to the upstream longer than undici's default of 4 s", async () => {
    const { seen, server, url } = await bareUpstream();
    try {
      const client = remote({ url });
      await client.ping();
      await new Promise((r) => setTimeout(r, 5_000));
      await client.ping();
      expect(seen).toMatchObject({ connections: 1, requests: 2 });
    } finally {
      server.close();
    }
  });

  it('refuses a realm that is no URL as a protocol failure on every request, over one connection', async () => {
    const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'x'.repeat(4 * 1024 * 1024) }] });
    const server = createServer((_req, res) => res.writeHead(401, { 'www-authenticate': 'Bearer realm="not a url"', 'content-type': 'application/json' }).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = remote({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: 1, timeouts: { responseMs: 1_000 } });
      for (let i = 0; i < 3; i++) {
        const failed = await failureOf(client.getManifest('library/app', '1'));
        expect(failed.failure).toBe('protocol');
        expect(failed.message).toMatch(/token realm that is not a URL/);
      }
    } finally {
      server.close();
    }
  });

  it('calls headers too large, and a response that is not HTTP, protocol failures rather than unreachable', async () => {
    const answers = [
      { answer: `HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm="http://127.0.0.1/${'a'.repeat(64 * 1024)}"\r\ncontent-length: 0\r\n\r\n`, message: /sent response headers larger than 16384 bytes$/ },
      { answer: 'HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\n', message: /sent a response that is not valid HTTP \(.*Invalid character in Content-Length\)\)$/ },
      { answer: 'not http at all\r\n\r\n', message: /sent a response that is not valid HTTP/ },
    ];
    for (const { answer, message } of answers) {
      let requests = 0;
      const server = createNetServer((socket) => {
        socket.on('error', () => undefined);
        socket.once('data', () => {
          requests++;
          socket.end(answer);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const failed = await failureOf(remote({ url, timeouts: { responseMs: 2_000 } }).getManifest('library/app', '1'));
        expect(failed.failure).toBe('protocol');
        expect(failed.transient).toBe(false);
        expect(failed.message).toMatch(message);
        expect(failed.message.startsWith(`${url}: `)).toBe(true);
        // Not taken for a connection closed under the request, which is sent once more.
        expect(requests).toBe(1);
      } finally {
        server.close();
      }
    }
  });

  it('passes on referrers only when the upstream sent an image index, and always as one', async () => {
    let body = '<script>alert(document.domain)</script>';
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = remote({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const subject = `sha256:${'1'.repeat(64)}`;
      expect((await failureOf(client.referrers('library/app', subject))).failure).toBe('protocol');
      body = JSON.stringify({ schemaVersion: 2, manifests: [] });
      expect(await client.referrers('library/app', subject)).toEqual({ content: Buffer.from(body), mediaType: 'application/vnd.oci.image.index.v1+json' });
    } finally {
      server.close();
    }
  });

  it("ends a blob body at the caller's AbortSignal after the headers came, and leaves no listener on it once a body closes", async () => {
    // A stand-in upstream: one blob whose body sends a byte and holds the rest, one it sends whole.
    const held: import('node:http').ServerResponse[] = [];
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' });
      if (req.url?.endsWith('0'.repeat(64))) {
        res.write('x');
        held.push(res);
      } else res.end(Buffer.alloc(1000));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = remote({ url, timeouts: { responseMs: 500, bodyIdleMs: 60_000 } });
      const controller = new AbortController();
      const whole = await client.getBlob('library/app', `sha256:${'1'.repeat(64)}`, controller.signal);
      let bytes = 0;
      for await (const chunk of whole.body) bytes += (chunk as Buffer).length;
      expect(bytes).toBe(1000);
      await new Promise((resolve) => setImmediate(resolve));
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);

      const stalled = await client.getBlob('library/app', `sha256:${'0'.repeat(64)}`, controller.signal);
      // Past responseMs: the headers' deadline is over once they came, and does not cut the body.
      await new Promise((resolve) => setTimeout(resolve, 700));
      const read = (async () => {
        for await (const _ of stalled.body);
      })();
      setTimeout(() => controller.abort(new Error('client went away')), 100);
      await expect(read).rejects.toThrow('client went away');
      await new Promise((resolve) => setImmediate(resolve));
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    } finally {
      for (const res of held) res.destroy();
      server.close();
    }
  });

  it("stops at the caller's AbortSignal with the caller's reason, not a RemoteError", async () => {
    counter.mode = 'stall';
    try {
      const controller = new AbortController();
      const pending = remote({ url: counter.url }).getManifest('library/app', '1', controller.signal);
      setTimeout(() => controller.abort(new Error('client went away')), 100);
      await expect(pending).rejects.toThrow('client went away');
    } finally {
      counter.mode = 'forward';
    }
  });
});
