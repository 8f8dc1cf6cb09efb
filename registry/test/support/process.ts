import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

const MAIN = resolve('dist/registry/src/main.js');

export interface RegistryProcess {
  child: ChildProcess;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Last 64 KiB of stdout and stderr. */
  output(): string;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  dataDir: string;
  /** WHARF_* settings. */
  env: Record<string, string>;
  port?: number;
  readyTimeoutMs?: number;
  /** Node.js flags before the script, e.g. REGISTRY_NODE_FLAGS. */
  nodeFlags?: readonly string[];
}

/** Starts `node dist/registry/src/main.js` (built by `npm run build`) and waits until /readyz answers 200. */
export async function spawnRegistry(options: SpawnOptions): Promise<RegistryProcess> {
  await access(MAIN).catch(() => {
    throw new Error(`${MAIN} is missing: run \`npm run build\` (make test does) before the process tests`);
  });
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), MAIN, '--addr', `127.0.0.1:${port}`, '--data-dir', options.dataDir], {
    env: { PATH: process.env.PATH ?? '', WHARF_LOG_LEVEL: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-65536);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`registry exited during startup (${child.exitCode ?? child.signalCode}):\n${output}`);
    const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`registry not ready after ${options.readyTimeoutMs ?? 60_000} ms:\n${output}`);
    }
    await sleep(100);
  }
  return {
    child,
    port,
    url,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * The value of an unlabelled metric on a registry's /metrics. A metric the registry does not
 * export is an error, not 0: a renamed metric must not turn "is 0" into a check of nothing.
 */
export async function metricValue(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`the registry at ${url} exports no metric ${name}`);
  return Number(line.slice(name.length + 1));
}
