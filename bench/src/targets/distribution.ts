import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer } from '../util/process.js';
import { freePort } from '../util/ports.js';
import type { Target, TargetContext } from './target.js';

/**
 * distribution v3 (the CNCF reference registry) with the filesystem driver and the
 * in-memory blob descriptor cache, as its shipped example config has it; logging at
 * its default level (info, with the access log). Tracing export is off
 * (OTEL_TRACES_EXPORTER=none, as its docs advise without a collector).
 */
export async function startDistribution(binary: string, ctx: TargetContext): Promise<Target> {
  const port = await freePort();
  const data = join(ctx.dir, 'data');
  await mkdir(data, { recursive: true });
  const config = join(ctx.dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: info',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${data}`,
      '  cache:',
      '    blobdescriptor: inmemory',
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
      '',
    ].join('\n'),
  );
  const origin = `http://127.0.0.1:${port}`;
  const proc = await startServer('distribution', binary, ['serve', config], { logFile: join(ctx.dir, 'registry.log'), env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } }, { url: `${origin}/v2/`, timeoutMs: 30_000 });
  return { id: 'distribution', label: 'distribution', origin, pid: proc.pid, kind: 'registry', stop: () => proc.stop() };
}
