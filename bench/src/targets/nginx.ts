import { chmod, link, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer } from '../util/process.js';
import { freePort } from '../util/ports.js';
import type { Target, TargetContext } from './target.js';

/**
 * nginx serving one file with sendfile: the physical limit of a blob pull on this
 * machine. Access log off; two workers (one per core here).
 */
export async function startNginx(binary: string, blobFile: string, ctx: TargetContext): Promise<Target> {
  const port = await freePort();
  const www = join(ctx.dir, 'www');
  const temp = join(ctx.dir, 'temp');
  await mkdir(www, { recursive: true });
  await mkdir(temp, { recursive: true });
  // Run as root, nginx's workers drop to `nobody`: the served tree must be world-readable.
  await link(blobFile, join(www, 'blob'));
  for (const dir of [ctx.dir, www]) await chmod(dir, 0o755);
  await chmod(join(www, 'blob'), 0o644);
  const config = join(ctx.dir, 'nginx.conf');
  await writeFile(
    config,
    `daemon off;
worker_processes 2;
pid ${join(ctx.dir, 'nginx.pid')};
error_log ${join(ctx.dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${temp}/body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${www};
    location = /healthz { return 200; }
  }
}
`,
  );
  const origin = `http://127.0.0.1:${port}`;
  const proc = await startServer('nginx', binary, ['-e', join(ctx.dir, 'error.log'), '-p', ctx.dir, '-c', config], { logFile: join(ctx.dir, 'stdout.log') }, { url: `${origin}/healthz`, timeoutMs: 15_000 });
  return { id: 'nginx', label: 'nginx', origin, pid: undefined, kind: 'file', blobPath: '/blob', stop: () => proc.stop() };
}
