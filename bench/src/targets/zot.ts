import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer } from '../util/process.js';
import { freePort } from '../util/ports.js';
import type { Target, TargetContext } from './target.js';

export interface ZotOptions {
  /**
   * zot's `storage.commit`: fsync each blob before answering. Its default (false)
   * answers 201 while the bytes are still only in the page cache; distribution and
   * Wharf flush a blob before they answer, so the comparable zot is the one with
   * `commit: true`, and the default runs as a second, reference target.
   */
  commit: boolean;
}

/**
 * zot, minimal build (no extensions), filesystem storage with its defaults (dedupe
 * and GC on) apart from `commit`, logging at info to a file.
 */
export async function startZot(binary: string, options: ZotOptions, ctx: TargetContext): Promise<Target> {
  const port = await freePort();
  const data = join(ctx.dir, 'data');
  await mkdir(data, { recursive: true });
  const config = join(ctx.dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      distSpecVersion: '1.0.1',
      storage: { rootDirectory: data, commit: options.commit },
      http: { address: '127.0.0.1', port: String(port) },
      log: { level: 'info', output: join(ctx.dir, 'zot.log') },
    }),
  );
  const origin = `http://127.0.0.1:${port}`;
  const proc = await startServer('zot', binary, ['serve', config], { logFile: join(ctx.dir, 'registry.log') }, { url: `${origin}/v2/`, timeoutMs: 30_000 });
  return { ...zotIdentity(options), origin, pid: proc.pid, kind: 'registry', stop: () => proc.stop() };
}

export function zotIdentity(options: ZotOptions): { id: string; label: string } {
  return options.commit ? { id: 'zot', label: 'zot' } : { id: 'zot-nosync', label: 'zot, no fsync (its default)' };
}
