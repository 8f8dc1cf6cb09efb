// A private containerd daemon for one test file: its own root, state, socket and
// config, so it never touches (or depends on) a containerd the machine may run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from './run.js';

export interface Containerd {
  socket: string;
  namespace: string;
  /** `overlayfs` when the kernel and the filesystem allow it, `native` otherwise. */
  snapshotter: string;
  /** Runs `ctr -a <socket> -n <namespace> ...args`. */
  ctr(args: string[], timeoutMs?: number): Promise<RunResult>;
  /** The daemon's log so far (last 256 KiB), for failure messages. */
  log(): string;
  /** SIGTERM, then SIGKILL after a grace period; removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const LOG_LIMIT = 256 * 1024;

function config(dir: string, socket: string): string {
  // Only what a pull needs: content, metadata, snapshotters, diff. The CRI plugin
  // would try to set up networking; the `opt` plugin would write to /opt/containerd.
  return [
    'version = 2',
    `root = ${JSON.stringify(join(dir, 'root'))}`,
    `state = ${JSON.stringify(join(dir, 'state'))}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = ${JSON.stringify(socket)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(`${socket}.ttrpc`)}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(join(dir, 'opt'))}`,
    '',
  ].join('\n');
}

export async function startContainerd(options: { namespace?: string; readyTimeoutMs?: number } = {}): Promise<Containerd> {
  // Short path: unix socket paths are limited to 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'wharf-ctrd-'));
  const socket = join(dir, 'containerd.sock');
  const namespace = options.namespace ?? 'wharf-test';
  await writeFile(join(dir, 'config.toml'), config(dir, socket));

  let logText = '';
  const child: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml'), '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const append = (chunk: Buffer) => {
    logText += chunk.toString('utf8');
    if (logText.length > LOG_LIMIT) logText = logText.slice(-LOG_LIMIT);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let exited: string | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = signal ? `killed by ${signal}` : `exited with status ${code}`;
      resolve();
    });
    child.on('error', (err) => {
      exited = `could not start: ${err.message}`;
      resolve();
    });
  });
  // Never leave the daemon behind if the test process dies without running afterAll.
  const killOnExit = () => {
    if (exited === undefined) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (exited === undefined) {
      child.kill('SIGTERM');
      const grace = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 10_000).unref());
      if ((await Promise.race([exitPromise, grace])) === 'timeout') {
        child.kill('SIGKILL');
        await exitPromise;
      }
    }
    process.removeListener('exit', killOnExit);
    await rm(dir, { recursive: true, force: true });
  };

  const ctr = (args: string[], timeoutMs?: number) => run('ctr', ['-a', socket, '-n', namespace, ...args], { timeoutMs: timeoutMs ?? 60_000 });

  try {
    const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
    for (;;) {
      if (exited !== undefined) throw new Error(`containerd ${exited} before it was ready`);
      const ok = await run('ctr', ['-a', socket, 'version'], { timeoutMs: 5_000 }).then(
        () => true,
        (err: Error) => {
          if (Date.now() > deadline) throw new Error(`containerd not ready after ${options.readyTimeoutMs ?? 20_000} ms: ${err.message}`);
          return false;
        },
      );
      if (ok) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const plugins = (await run('ctr', ['-a', socket, 'plugins', 'ls'], { timeoutMs: 10_000 })).stdout;
    const overlay = /^io\.containerd\.snapshotter\.v1\s+overlayfs\s+\S+\s+ok\s*$/m.test(plugins);
    const native = /^io\.containerd\.snapshotter\.v1\s+native\s+\S+\s+ok\s*$/m.test(plugins);
    if (!overlay && !native) throw new Error(`containerd has neither the overlayfs nor the native snapshotter:\n${plugins}`);
    return { socket, namespace, snapshotter: overlay ? 'overlayfs' : 'native', ctr, log: () => logText, stop };
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- containerd log ---\n${logText.slice(-16_384)}`, { cause: err });
  }
}
