import { connect, type Socket } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ManagementClient } from './support/auth.js';
import { startMinio, type RunningMinio } from './support/minio.js';
import { OCI_MANIFEST, randomBlob } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { startStallingProxy, type StallingProxy } from './support/proxy.js';
import { eventually, rawRequest } from './support/raw-http.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';
import { bytes, streamRequest, trickle, type StreamOutcome } from './support/streaming.js';

const KiB = 1024;

/** Short windows so that a slow client is judged quickly; the outcome, not the time, is asserted. */
const limits = {
  http: { bodyMinBytesPerSecond: 4 * KiB, bodyRateWindowMs: 400, bodyGraceMs: 400, headersTimeoutMs: 500 },
};

const backends = [
  { name: 'PGlite', database: async () => undefined },
  { name: 'PostgreSQL', database: async () => createTestDatabase(inject('pgAdminUrl')) },
];

/** Opens a raw connection and collects what the server sends until it closes the connection. */
function rawConnection(url: string): { socket: Socket; received: () => string; closed: Promise<void>; connected: Promise<void> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((done) => socket.once('close', () => done()));
  const connected = new Promise<void>((done) => socket.once('connect', () => done()));
  return { socket, received: () => data, closed, connected };
}

function expectTimedOut(res: StreamOutcome) {
  expect({ status: res.status, code: res.code }, res.body.toString()).toEqual({ status: 408, code: 'REQUEST_TIMEOUT' });
  expect(res.json<{ errors: { message: string }[] }>().errors[0]!.message).toMatch(/^the request body arrived too slowly: \d+ bytes in \d+ ms, below the minimum of 4096 bytes\/s$/);
  expect(res.headers.connection).toBe('close');
  expect(res.sentAll).toBe(false);
}

describe.each(backends)('slow and idle clients on $name', ({ database }) => {
  let registry: RunningRegistry;

  beforeAll(async () => {
    const databaseUrl = await database();
    registry = await startRegistry({ ...(databaseUrl && { databaseUrl }), limits });
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  async function startUpload(): Promise<string> {
    const res = await rawRequest(registry.url, { method: 'POST', path: '/v2/slow/app/blobs/uploads/' });
    expect(res.status).toBe(202);
    return String(res.headers.location);
  }

  it('cuts off an upload body sent at a trickle with 408, keeping nothing of it', async () => {
    const location = await startUpload();
    const res = await streamRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: trickle(Buffer.alloc(64 * KiB, 1), 16, 100) });
    expectTimedOut(res);
    const status = await rawRequest(registry.url, { method: 'GET', path: location });
    expect({ status: status.status, range: status.headers.range }).toEqual({ status: 204, range: '0-0' });
    expect(await readdir(join(registry.dataDir, 'blobs', 'uploads'))).toEqual([]);
  });

  it('cuts off an upload body that never starts', async () => {
    const location = await startUpload();
    const res = await streamRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Length': 1000, 'Content-Type': 'application/octet-stream' }, body: (async function* () { await new Promise(() => undefined); })() });
    expectTimedOut(res);
    expect(res.bytesSent).toBe(0);
  });

  it('cuts off a manifest body sent at a trickle', async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, padding: 'x'.repeat(4000) }));
    const res = await streamRequest(registry.url, { method: 'PUT', path: '/v2/slow/app/manifests/latest', headers: { 'Content-Type': OCI_MANIFEST, 'Content-Length': body.length }, body: trickle(body, 16, 100) });
    expectTimedOut(res);
  });

  it('cuts off a management API body sent at a trickle, changing nothing', async () => {
    const body = Buffer.from(JSON.stringify({ public: true, storageLimit: 1000 }).padEnd(2000, ' '));
    const res = await streamRequest(registry.url, { method: 'PUT', path: '/api/v1/projects/trickled', headers: { 'Content-Type': 'application/json', 'Content-Length': body.length }, body: trickle(body, 16, 100) });
    expectTimedOut(res);
    expect((await new ManagementClient(registry.url).call('GET', '/projects/trickled')).status).toBe(404);
  });

  it('accepts a long body that keeps above the minimum rate, however long it takes', async () => {
    const location = await startUpload();
    // 8 KiB every 100 ms (80 KiB/s) for 2 s: five times the judging window.
    const data = randomBlob(160 * KiB);
    const res = await streamRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: trickle(data.data, 8 * KiB, 100) });
    expect(res.status, res.body.toString()).toBe(202);
    const put = await rawRequest(registry.url, { method: 'PUT', path: `${location}?digest=${data.digest}` });
    expect(put.status).toBe(201);
  });

  it('accepts a large body at full speed', async () => {
    const location = await startUpload();
    const res = await streamRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(256 * 1024 * KiB) });
    expect(res.status, res.body.toString()).toBe(202);
    expect(res.headers.range).toBe(`0-${256 * 1024 * KiB - 1}`);
    expect((await rawRequest(registry.url, { method: 'DELETE', path: location })).status).toBe(204);
  });

  it('answers 408 and closes a connection whose headers never complete', async () => {
    const conn = rawConnection(registry.url);
    await conn.connected;
    conn.socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    await conn.closed;
    expect(conn.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection that never sends anything', async () => {
    const conn = rawConnection(registry.url);
    await conn.connected;
    await conn.closed;
    expect(conn.received()).toMatch(/^(HTTP\/1\.1 408 |$)/);
  });
});

describe('the per-client connection cap', () => {
  let registry: RunningRegistry;
  const open: ReturnType<typeof rawConnection>[] = [];

  beforeAll(async () => {
    registry = await startRegistry({ limits: { http: { maxConnectionsPerClient: 4 } } });
  });

  afterAll(async () => {
    for (const conn of open) conn.socket.destroy();
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  /** A kept-alive connection that completed one request and stays open. */
  async function idleConnection(): Promise<ReturnType<typeof rawConnection>> {
    const conn = rawConnection(registry.url);
    open.push(conn);
    await conn.connected;
    conn.socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(async () => conn.received().includes('\r\n\r\n{}') || conn.socket.destroyed, 10_000, 'the answer to GET /v2/');
    return conn;
  }

  it('refuses connections past the cap with 429 and closes them; a closed connection makes room', async () => {
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await idleConnection());
    for (const conn of held) expect(conn.received()).toMatch(/^HTTP\/1\.1 200 /);

    const refused = rawConnection(registry.url);
    open.push(refused);
    await refused.connected;
    refused.socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n');
    await refused.closed;
    expect(refused.received()).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(refused.received()).toMatch(/\r\nConnection: close\r\n/i);
    const body = JSON.parse(refused.received().split('\r\n\r\n')[1]!) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]).toEqual({ code: 'TOOMANYREQUESTS', message: 'too many connections from 127.0.0.1: 4 are open, the most allowed', detail: { limit: 4 } });

    held[0]!.socket.destroy();
    await held[0]!.closed;
    await eventually(async () => (await rawRequest(registry.url, { method: 'GET', path: '/v2/' })).status === 200, 10_000, 'a new connection to be accepted');
  });
});

describe('a client faster than storage', () => {
  let minio: RunningMinio | undefined;
  let proxy: StallingProxy | undefined;
  let registry: RunningRegistry | undefined;

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
    await proxy?.close();
    await minio?.close();
  });

  it('is never cut off while the registry is the one not reading', async () => {
    minio = await startMinio(inject('toolsBin'));
    const bucket = await minio.createBucket();
    // Every chunk object the registry writes waits 1.5 s: several judging windows.
    proxy = await startStallingProxy(minio.endpoint, (req) => req.method === 'PUT' && req.url!.includes('/uploads/'), 1500);
    const { region, accessKeyId, secretAccessKey } = minio;
    registry = await startRegistry({
      storage: { driver: 's3', s3: { endpoint: proxy.url, region, forcePathStyle: true, accessKeyId, secretAccessKey, bucket, redirect: false } },
      limits: { http: { bodyMinBytesPerSecond: 64 * KiB, bodyRateWindowMs: 300, bodyGraceMs: 300 } },
    });
    const start = await rawRequest(registry.url, { method: 'POST', path: '/v2/slow/app/blobs/uploads/' });
    const size = 24 * 1024 * KiB;
    const res = await streamRequest(registry.url, { method: 'PATCH', path: String(start.headers.location), headers: { 'Content-Type': 'application/octet-stream' }, body: bytes(size) });
    expect(res.status, res.body.toString()).toBe(202);
    expect(res.headers.range).toBe(`0-${size - 1}`);
    expect(proxy.stalled).toBeGreaterThanOrEqual(3);
  });
});
