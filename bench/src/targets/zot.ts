import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManagedProcess, waitForHttp } from '../util/process.js';
import { freePort } from '../util/ports.js';
import type { Target, TargetContext } from './target.js';

/**
 * zot, minimal build (no extensions), filesystem storage with its defaults (dedupe
 * and GC on) except `commit`, logging at info to a file. zot's default (`commit:
 * false`) answers 201 before a blob's bytes reach the disk; distribution and Wharf
 * fsync a blob before they answer, so zot gets its own setting that does the same.
 */
export async function startZot(binary: string, ctx: TargetContext): Promise<Target> {
  const port = await freePort();
  const data = join(ctx.dir, 'data');
  await mkdir(data, { recursive: true });
  const config = join(ctx.dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      distSpecVersion: '1.0.1',
      storage: { rootDirectory: data, commit: true },
      http: { address: '127.0.0.1', port: String(port) },
      log: { level: 'info', output: join(ctx.dir, 'zot.log') },
    }),
  );
  const proc = ManagedProcess.start('zot', binary, ['serve', config], { logFile: join(ctx.dir, 'registry.log') });
  const origin = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(proc, `${origin}/v2/`, 30_000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { id: 'zot', label: 'zot', origin, pid: proc.pid, kind: 'registry', stop: () => proc.stop() };
}
