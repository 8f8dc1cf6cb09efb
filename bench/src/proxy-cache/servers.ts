import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startWharf } from '../targets/wharf.js';
import { startServer } from '../util/process.js';
import { freePort } from '../util/ports.js';
import { describeLink, type LinkShape } from './link.js';

/** Debian's distribution 2.8.2: the stand-in for Docker Hub, and the proxy-mode peer. */
export const DOCKER_REGISTRY = '/usr/bin/docker-registry';

/** libnginx-mod-http-echo, a dependency of Debian's nginx-light (tools/install-debian-packages.sh). */
const ECHO_MODULE = '/usr/lib/nginx/modules/ngx_http_echo_module.so';

export interface Server {
  label: string;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  stop(): Promise<void>;
}

export interface Upstream extends Server {
  /** Requests to /v2/ that the upstream has logged so far (its access log). */
  requestCount(): Promise<number>;
}

/**
 * distribution 2.8.2 on loopback with filesystem storage: the upstream (`proxyOf` absent),
 * or a pull-through cache of `proxyOf` (`proxy.remoteurl`). The upstream logs every request
 * in its access log, which the harness counts: a counting proxy in front of it would put a
 * Node.js hop into every cold fill, and so into the figures compared with a direct pull.
 */
export async function startDockerRegistry(dir: string, options: { proxyOf?: string } = {}): Promise<Upstream> {
  await mkdir(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      `    disabled: ${options.proxyOf ? 'true' : 'false'}`,
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  cache:',
      '    blobdescriptor: inmemory',
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(options.proxyOf ? ['proxy:', `  remoteurl: ${options.proxyOf}`] : []),
      '',
    ].join('\n'),
  );
  const logFile = join(dir, 'registry.log');
  const origin = `http://127.0.0.1:${port}`;
  const proc = await startServer(options.proxyOf ? 'distribution-proxy' : 'upstream', DOCKER_REGISTRY, ['serve', config], { logFile }, { url: `${origin}/v2/`, timeoutMs: 30_000 });
  return {
    label: options.proxyOf ? 'distribution 2.8.2, proxy mode' : 'upstream (distribution 2.8.2)',
    origin,
    stop: () => proc.stop(),
    requestCount: async () => (await readFile(logFile, 'utf8')).split('\n').filter((line) => /"(GET|HEAD|POST|PUT|PATCH|DELETE) \/v2\//.test(line)).length,
  };
}

/**
 * nginx in front of `upstream`: the upstream as it is reached over the internet, where the
 * link and not the machine's CPU bounds a pull.
 * - `mibPerSecond`: every response at most that rate per connection (`limit_rate`). nginx
 *   lets one to two seconds' worth pass at once (it counts the allowance from the whole
 *   second a request started in, plus one).
 * - `rttMs`: each request waits that long before nginx passes it on (an `auth_request` to a
 *   location that sleeps, from the echo module that Debian's nginx-light depends on). A
 *   request to a distant registry costs at least one round trip; Docker Hub's blob
 *   requests cost two (its redirect to the CDN), which this does not add.
 * The upstream's access log still counts the requests.
 */
export async function startShapedLink(dir: string, upstream: Upstream, link: LinkShape): Promise<Upstream> {
  await mkdir(join(dir, 'temp'), { recursive: true });
  const port = await freePort();
  const config = join(dir, 'nginx.conf');
  const target = new URL(upstream.origin);
  await writeFile(
    config,
    [
      ...(link.rttMs !== undefined ? [`load_module ${ECHO_MODULE};`] : []),
      'user root;',
      'worker_processes 1;',
      'daemon off;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${join(dir, 'temp')};`,
      `  proxy_temp_path ${join(dir, 'temp')};`,
      `  upstream registry { server ${target.host}; keepalive 32; }`,
      '  server {',
      `    listen 127.0.0.1:${port};`,
      '    client_max_body_size 0;',
      ...(link.rttMs !== undefined ? [`    location = /_link_rtt { internal; echo_sleep ${(link.rttMs / 1000).toFixed(3)}; echo ""; }`] : []),
      '    location / {',
      ...(link.rttMs !== undefined ? ['      auth_request /_link_rtt;'] : []),
      '      proxy_pass http://registry;',
      '      proxy_http_version 1.1;',
      '      proxy_set_header Connection "";',
      '      proxy_set_header Host $http_host;',
      // limit_rate holds only for buffered proxying (measured: unbuffered, 100 MB passed at 350 MB/s
      // under a 50 MiB/s limit); small buffers and no temp file keep nginx in step with the client.
      '      proxy_buffering on;',
      '      proxy_buffer_size 64k;',
      '      proxy_buffers 8 64k;',
      '      proxy_max_temp_file_size 0;',
      '      proxy_request_buffering off;',
      ...(link.mibPerSecond !== undefined ? [`      limit_rate ${Math.round(link.mibPerSecond * 1024)}k;`] : []),
      '    }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const origin = `http://127.0.0.1:${port}`;
  const proc = await startServer('shaped-link', 'nginx', ['-p', dir, '-c', config], { logFile: join(dir, 'nginx.log') }, { url: `${origin}/v2/`, timeoutMs: 30_000 });
  return { label: `${upstream.label} over ${describeLink(link)}`, origin, stop: () => proc.stop(), requestCount: () => upstream.requestCount() };
}

/**
 * zot with the sync extension, on-demand only, for every repository of `upstream`
 * (a build with `-tags sync`: bench/bench.mk `zot-sync`). Storage as the main bench's zot:
 * defaults with `commit: true`.
 */
export async function startZotSync(binary: string, dir: string, upstream: string): Promise<Server> {
  await mkdir(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      distSpecVersion: '1.0.1',
      storage: { rootDirectory: join(dir, 'data'), commit: true },
      http: { address: '127.0.0.1', port: String(port) },
      log: { level: 'info', output: join(dir, 'zot.log') },
      extensions: { sync: { enable: true, registries: [{ urls: [upstream], onDemand: true, tlsVerify: false, content: [{ prefix: '**' }] }] } },
    }),
  );
  const origin = `http://127.0.0.1:${port}`;
  const proc = await startServer('zot-sync', binary, ['serve', config], { logFile: join(dir, 'registry.log') }, {
    url: `${origin}/v2/`,
    timeoutMs: 30_000,
    check: async () => {
      const log = await readFile(join(dir, 'zot.log'), 'utf8').catch(() => '');
      if (log.includes('sync extension') && log.includes("doesn't include this feature")) throw new Error(`${binary} was built without the sync extension (-tags sync)`);
    },
  });
  return { label: 'zot, on-demand sync', origin, stop: () => proc.stop() };
}

export interface WharfServer extends Server {
  /** The proxy-cache project (provider docker-hub) and the ordinary one beside it. */
  proxyProject: string;
  localProject: string;
}

/**
 * Wharf (PGlite, `--auth none`) with a proxy-cache project `hub` (provider docker-hub, the
 * manifest TTL an hour, far longer than a run) and an ordinary project `local`.
 */
export async function startWharfProxy(dir: string, upstream: string, label: string, main?: string): Promise<WharfServer> {
  await mkdir(dir, { recursive: true });
  // BENCH_WHARF_NODE_ARGS: node options for the Wharf subjects, e.g. `--cpu-prof --cpu-prof-dir=tmp/prof`.
  const nodeFlags = process.env.BENCH_WHARF_NODE_ARGS?.split(' ').filter(Boolean);
  const target = await startWharf({ ...(main && { main }), ...(nodeFlags && { nodeFlags }) }, { dir });
  try {
    for (const [name, body] of [
      ['hub', { public: true, proxyCache: { provider: 'docker-hub', url: upstream, manifestTTLSeconds: 3600 } }],
      ['local', { public: true }],
    ] as const) {
      const res = await fetch(`${target.origin}/api/v1/projects/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${label}: PUT /api/v1/projects/${name} answered ${res.status}: ${text}`);
    }
  } catch (err) {
    await target.stop();
    throw err;
  }
  await appendFile(join(dir, 'projects.txt'), 'hub: proxy cache of the upstream; local: ordinary\n');
  return { label, origin: target.origin, proxyProject: 'hub', localProject: 'local', stop: () => target.stop() };
}
