import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StartOptions {
  /** Receives the process's stdout and stderr. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A child process the harness started and must stop; its output goes to a log file. */
export class ManagedProcess {
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
  }

  static start(name: string, command: string, args: readonly string[], options: StartOptions): ManagedProcess {
    const fd = openSync(options.logFile, 'a');
    try {
      const child = spawn(command, args, { stdio: ['ignore', fd, fd], env: options.env ?? process.env, cwd: options.cwd });
      if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
      return new ManagedProcess(name, child, options.logFile);
    } finally {
      closeSync(fd);
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = sleep(graceMs).then(() => 'timeout' as const);
    if ((await Promise.race([this.exited, timer])) === 'timeout' && this.running) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/**
 * Polls `url` until it answers with a status `ready` accepts. Fails early when the
 * process exits, and after `timeoutMs`.
 */
export async function waitForHttp(proc: ManagedProcess, url: string, timeoutMs: number, ready: (status: number) => boolean = (s) => s === 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${proc.name} exited while starting; see ${proc.logFile}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (ready(res.status)) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`${proc.name} not ready at ${url} after ${timeoutMs} ms (${last}); see ${proc.logFile}`);
}

/**
 * Starts a server and waits until `readyUrl` answers (waitForHttp), then runs `check`;
 * stops the process when either fails.
 */
export async function startServer(
  name: string,
  command: string,
  args: readonly string[],
  options: StartOptions,
  ready: { url: string; timeoutMs: number; check?: () => Promise<void> },
): Promise<ManagedProcess> {
  const proc = ManagedProcess.start(name, command, args, options);
  try {
    await waitForHttp(proc, ready.url, ready.timeoutMs);
    await ready.check?.();
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}
