import { execFile } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and returns its exit code and output (never throws on a non-zero exit). */
export function exec(command: string, args: readonly string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 0, cwd: options.cwd }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'string') return reject(err); // could not start (ENOENT, ...)
      resolve({ code: err ? (typeof code === 'number' ? code : 1) : 0, stdout, stderr });
    });
  });
}
