// Stand-ins for an upstream registry (Docker Hub cannot be reached here): Debian's
// `docker-registry` (distribution 2.8.2) on loopback, and a small proxy in front of
// any upstream that counts requests and can fail on purpose (429, stall, corrupt).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

export const DISTRIBUTION_BINARY = '/usr/bin/docker-registry';

export interface Distribution {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>` */
  host: string;
  port: number;
  dir: string;
  /** The registry's log so far (last 256 KiB). */
  log(): string;
  /** SIGTERM and wait: the upstream is down. */
  stop(): Promise<void>;
  /** Starts it again on the same port and storage. */
  start(): Promise<void>;
}

/**
 * Starts distribution 2.8.2 (`docker-registry`, tools/install-debian-packages.sh) on a
 * loopback port with its storage in `dir`, optionally behind htpasswd Basic auth.
 */
export async function startDistribution(dir: string, options: { htpasswd?: string } = {}): Promise<Distribution> {
  await mkdir(join(dir, 'storage'), { recursive: true });
  const port = await freePort();
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(options.htpasswd ? ['auth:', '  htpasswd:', '    realm: upstream', `    path: ${options.htpasswd}`] : []),
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);
  let child: ChildProcess | undefined;
  let text = '';
  const url = `http://127.0.0.1:${port}`;
  const start = async () => {
    const proc = spawn(DISTRIBUTION_BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const keep = (chunk: Buffer) => {
      text = (text + chunk.toString()).slice(-256 * 1024);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited (${proc.exitCode}):\n${text}`);
      const status = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status, () => 0);
      if (status === 200 || status === 401) return;
      if (Date.now() > deadline) throw new Error(`docker-registry not ready:\n${text}`);
      await sleep(100);
    }
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  };
  process.once('exit', () => child?.kill('SIGKILL'));
  await start();
  return { url, host: `127.0.0.1:${port}`, port, dir, log: () => text, stop, start };
}

/**
 * `throttle-manifest-gets`: 429 for manifest GETs only (HEADs pass, as Docker Hub's limit counts GETs);
 * `bad-realm`: 401 to everything, with a Bearer challenge whose realm is no URL.
 */
export type FaultMode = 'forward' | 'throttle' | 'stall' | 'corrupt-blobs' | 'throttle-manifest-gets' | 'bad-realm';

export interface SeenRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
}

export interface UpstreamProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  host: string;
  /** Every request received, in order. */
  requests: SeenRequest[];
  /** What it does with the next requests. */
  mode: FaultMode;
  /** Milliseconds each blob GET waits before it is forwarded (a slow link). */
  holdBlobsMs: number;
  /** The most blob GETs it was answering at once, since the last reset. */
  maxBlobGetsAtOnce: number;
  /** Requests whose method is `method` and whose path matches `path`. */
  count(method: string, path: RegExp): number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * A loopback proxy in front of `target` that records every request and, by `mode`,
 * forwards it, answers 429, never answers, or flips the first byte of blob bodies. A
 * target that refuses connections makes it drop the client's connection too, as the
 * target itself would.
 */
export async function startUpstreamProxy(target: string): Promise<UpstreamProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();
  const proxy: UpstreamProxy = {
    url: '',
    host: '',
    requests: [],
    mode: 'forward',
    holdBlobsMs: 0,
    maxBlobGetsAtOnce: 0,
    count: (method, path) => proxy.requests.filter((r) => r.method === method && path.test(r.url.split('?', 1)[0]!)).length,
    reset: () => {
      proxy.requests.length = 0;
      proxy.maxBlobGetsAtOnce = blobGets;
    },
    close: async () => undefined,
  };
  let blobGets = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    proxy.requests.push({ method: req.method ?? '', url: req.url ?? '' });
    const blobGet = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
    if (blobGet) {
      proxy.maxBlobGetsAtOnce = Math.max(proxy.maxBlobGetsAtOnce, ++blobGets);
      res.once('close', () => blobGets--);
    }
    if (blobGet && proxy.holdBlobsMs > 0) setTimeout(() => answer(req, res), proxy.holdBlobsMs);
    else answer(req, res);
  });
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const mode = proxy.mode;
    if (mode === 'stall') return;
    if (mode === 'bad-realm') {
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="not a url",service="test"' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required (test proxy)' }] }));
      return;
    }
    if (mode === 'throttle' || (mode === 'throttle-manifest-gets' && req.method === 'GET' && /\/manifests\//.test(req.url ?? ''))) {
      req.resume();
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'pull rate limit reached (test proxy)' }] }));
      return;
    }
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      const corrupt = mode === 'corrupt-blobs' && req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && answer.statusCode === 200;
      let first = true;
      answer.on('data', (chunk: Buffer) => {
        if (corrupt && first && chunk.length > 0) {
          chunk = Buffer.from(chunk);
          chunk[0] = chunk[0]! ^ 0xff;
        }
        first = false;
        if (!res.write(chunk)) {
          answer.pause();
          res.once('drain', () => answer.resume());
        }
      });
      answer.on('end', () => res.end());
      answer.on('error', () => res.destroy());
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  };
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.host = `127.0.0.1:${port}`;
  proxy.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    agent.destroy();
  };
  return proxy;
}

/**
 * Pushes `image` the way every registry takes it (distribution 2.8.2 has no
 * monolithic POST): POST for a session, then one PUT with the bytes and the digest.
 */
export async function pushToUpstream(base: string, repository: string, tag: string, image: { config: { data: Buffer; digest: string }; layers: { data: Buffer; digest: string }[]; manifest: { data: Buffer }; mediaType: string }, authorization?: string): Promise<void> {
  const auth: Record<string, string> = authorization ? { Authorization: authorization } : {};
  for (const blob of [image.config, ...image.layers]) await pushBlobToUpstream(base, repository, blob, auth);
  const res = await fetch(`${base}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { ...auth, 'Content-Type': image.mediaType }, body: image.manifest.data });
  if (res.status !== 201) throw new Error(`manifest push to ${base} failed: ${res.status} ${await res.text()}`);
}

export async function pushBlobToUpstream(base: string, repository: string, blob: { data: Buffer; digest: string }, auth: Record<string, string> = {}): Promise<void> {
  const started = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: auth });
  await started.arrayBuffer();
  if (started.status !== 202) throw new Error(`upload start at ${base} failed: ${started.status}`);
  const location = new URL(started.headers.get('location')!, base);
  location.searchParams.set('digest', blob.digest);
  const done = await fetch(location, { method: 'PUT', headers: { ...auth, 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.data.length) }, body: blob.data });
  await done.arrayBuffer();
  if (done.status !== 201) throw new Error(`blob push to ${base} failed: ${done.status}`);
}
