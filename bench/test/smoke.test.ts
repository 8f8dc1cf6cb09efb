import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);

/** `make bench QUICK=1` in miniature: keeps the harness working; its numbers are not looked at. */
describe('make bench QUICK=1 (smoke run, figures not compared)', () => {
  it('runs every workload of the rounds against distribution and Wharf and writes a complete report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-smoke-'));
    const out = join(dir, 'quick.md');
    try {
      const rounds = ['--workloads', 'blobPull,monolithicPush,smallPush,manifestGet'];
      await promisify(execFile)(process.execPath, ['dist/bench/src/main.js', '--quick', '--no-wait', '--targets', 'distribution,wharf-pglite', ...rounds, '--out', out], {
        cwd: root,
        maxBuffer: 16 * 1024 * 1024,
        timeout: 240_000,
      });
      const report = await readFile(out, 'utf8');
      for (const row of ['Blob pull', 'Monolithic push', 'Small push', 'Manifest GET by tag', 'Peak RSS during the workloads']) {
        const line = report.split('\n').find((l) => l.startsWith(`| ${row}`));
        expect(line, row).toBeDefined();
        // Both columns hold a positive figure: nothing failed or went unmeasured.
        const figures = line!.split('|').slice(2, 4).map((c) => Number(c.trim()));
        expect(figures.every((f) => f > 0), `${row}: ${line}`).toBe(true);
      }
      expect(report).toContain('Against the targets');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs the listings alone (`--workloads listings`) and reports a time for every page on both', { timeout: 420_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-smoke-'));
    const out = join(dir, 'listings.md');
    try {
      await promisify(execFile)(process.execPath, ['dist/bench/src/main.js', '--quick', '--no-wait', '--targets', 'distribution,wharf-pglite', '--workloads', 'listings', '--out', out], {
        cwd: root,
        maxBuffer: 16 * 1024 * 1024,
        timeout: 400_000,
      });
      const report = await readFile(out, 'utf8');
      const rows = report.split('\n').filter((l) => l.startsWith('| tags/list?') || l.startsWith('| _catalog?'));
      // Quick sizes: 100 and 1,000 tags and repositories, three pages each.
      expect(rows).toHaveLength(12);
      for (const row of rows) {
        const medians = row.split('|').slice(2, 4).map((c) => Number(/^\s*([\d.]+) \(/.exec(c)?.[1]));
        expect(medians.every((m) => m > 0), row).toBe(true);
      }
      expect(report).not.toContain('Failures');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
