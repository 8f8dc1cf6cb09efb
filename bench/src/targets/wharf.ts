import { join } from 'node:path';
import { REGISTRY_NODE_FLAGS } from '../../../registry/src/node-flags.js';
import { wharfMain } from '../paths.js';
import { startServer } from '../util/process.js';
import { freePort } from '../util/ports.js';
import type { Target, TargetContext } from './target.js';

export interface WharfOptions {
  /** PostgreSQL DSN; absent means the embedded default (PGlite in the data dir). */
  databaseUrl?: string;
  /** Extra Node.js flags, e.g. `--cpu-prof` (bench/src/profile.ts). */
  nodeFlags?: string[];
  /** Token authentication with this bootstrap admin password; absent: `--auth none`, as the peers run. */
  adminPassword?: string;
  /** Extra environment, e.g. WHARF_* settings. */
  env?: Record<string, string>;
  /** Another build's entry point (a before/after comparison); this tree's build by default. */
  main?: string;
}

/**
 * Wharf's registry as `make run` starts it (its Node.js flags, filesystem blobs,
 * default log level), except that authentication is off, as it is for the peers
 * (the login-flood study turns it on with `adminPassword`).
 */
export async function startWharf(options: WharfOptions, ctx: TargetContext): Promise<Target> {
  const port = await freePort();
  const auth = options.adminPassword ? 'token' : 'none';
  const args = [...REGISTRY_NODE_FLAGS, ...(options.nodeFlags ?? []), options.main ?? wharfMain, '--addr', `127.0.0.1:${port}`, '--data-dir', join(ctx.dir, 'data'), '--auth', auth];
  if (options.databaseUrl) args.push('--database-url', options.databaseUrl);
  const name = options.databaseUrl ? 'wharf-postgres' : 'wharf-pglite';
  const env = { ...process.env, ...(options.adminPassword && { WHARF_ADMIN_PASSWORD: options.adminPassword }), ...options.env };
  const origin = `http://127.0.0.1:${port}`;
  // PGlite runs initdb in WebAssembly on a new data directory: 10-20 s, more under load.
  const proc = await startServer(name, process.execPath, args, { logFile: join(ctx.dir, 'registry.log'), env }, { url: `${origin}/readyz`, timeoutMs: 180_000 });
  return {
    id: name,
    label: options.databaseUrl ? 'Wharf (PostgreSQL)' : 'Wharf (PGlite)',
    origin,
    pid: proc.pid,
    kind: 'registry',
    stop: () => proc.stop(),
  };
}
