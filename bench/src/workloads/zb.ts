import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../util/exec.js';
import { parseGoDuration } from '../util/go-duration.js';

export interface ZbTest {
  name: string;
  rps: number;
  failed: number;
  p99Ms: number;
}

export interface ZbOptions {
  concurrency: number;
  requests: number;
  /** Parent of zb's working directory (it writes 1, 10 and 100 MB test files there). */
  workDir: string;
  repo: string;
}

/** Splits zb's report into one record per test. */
export function parseZbOutput(output: string): ZbTest[] {
  const tests: ZbTest[] = [];
  for (const block of output.split(/^(?=Test name:)/m)) {
    const field = (label: string) => new RegExp(`^${label}:\\s*(.+)$`, 'm').exec(block)?.[1]?.trim();
    const name = field('Test name');
    if (!name) continue;
    tests.push({ name, rps: Number(field('Requests per second')), failed: Number(field('Failed requests') ?? NaN), p99Ms: parseGoDuration(field('p99') ?? '') });
  }
  return tests;
}

/**
 * Runs zb's whole suite once (zb v1.4.3 has no way to pick tests): every push and
 * pull test at 1, 10 and 100 MB and the mixed ones, `requests` each.
 */
export async function runZb(binary: string, origin: string, options: ZbOptions): Promise<{ tests: ZbTest[]; exitCode: number }> {
  const dir = await mkdtemp(join(options.workDir, 'zb-'));
  try {
    const args = ['-c', String(options.concurrency), '-n', String(options.requests), '-d', join(dir, 'data'), '-r', options.repo, origin];
    const { code, stdout, stderr } = await exec(binary, args, { timeoutMs: 30 * 60_000 });
    const tests = parseZbOutput(stdout + stderr);
    if (tests.length === 0) throw new Error(`zb printed no results (exit ${code}): ${(stderr || stdout).slice(-500)}`);
    return { tests, exitCode: code };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
