// Runs a real client binary and turns any failure into an error that carries
// the full command line, the exit status and the client's stderr.
import { spawn } from 'node:child_process';

export interface RunOptions {
  cwd?: string;
  /** Merged over the ambient environment. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  /** stdout as bytes, for clients that print blob or manifest content. */
  stdoutBytes: Buffer;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exit: string,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`\`${command}\` ${exit}\n--- stderr ---\n${stderr.trimEnd() || '(empty)'}\n--- stdout ---\n${stdout.trimEnd() || '(empty)'}`);
    this.name = 'CommandError';
  }
}

const MAX_OUTPUT = 64 * 1024 * 1024;

/** Spawns `cmd args` with stdin closed; rejects on a non-zero exit, a signal or a timeout. */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outSize = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      outSize += chunk.length;
      if (outSize <= MAX_OUTPUT) out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new CommandError(command, `could not start: ${error.message}`, '', ''));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      const stdout = stdoutBytes.toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) return reject(new CommandError(command, `timed out after ${options.timeoutMs ?? 60_000} ms`, stdout, stderr));
      if (signal) return reject(new CommandError(command, `killed by ${signal}`, stdout, stderr));
      if (code !== 0) return reject(new CommandError(command, `exited with status ${code}`, stdout, stderr));
      if (outSize > MAX_OUTPUT) return reject(new CommandError(command, `printed more than ${MAX_OUTPUT} bytes`, '', stderr));
      resolve({ stdout, stdoutBytes, stderr });
    });
  });
}
