import { spawn, type ChildProcess } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryTable } from '../src/report/markdown.js';
import { Results } from '../src/report/results.js';
import { processTree, processTreePss, proportionalSetSize } from '../src/rss.js';
import { startPostgres, type PostgresServer } from '../src/targets/postgres.js';
import { removeDir, tempDir } from '../../registry/test/support/registry.js';

describe('memory of a server made of several processes', () => {
  let shell: ChildProcess;
  let dir: string;
  let server: PostgresServer;

  beforeAll(async () => {
    // A child with a grandchild of its own: `sleep` runs under `sh`, which waits for it.
    shell = spawn('sh', ['-c', 'sleep 60 & wait'], { stdio: 'ignore' });
    dir = await tempDir('wharf-bench-memory-');
    // Run as root, the server runs as the postgres user, which must reach its directory.
    await chmod(dir, 0o755);
    server = await startPostgres(join(dir, 'pg'));
  }, 120_000);
  afterAll(async () => {
    shell.kill('SIGKILL');
    await server?.stop();
    await removeDir(dir);
  });

  it('finds a process, its children and their children', async () => {
    let tree: number[] = [];
    for (let i = 0; i < 50 && tree.length < 2; i++) {
      tree = processTree(shell.pid!);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(tree[0]).toBe(shell.pid);
    expect(tree).toHaveLength(2);
    expect(processTree(process.pid)).toEqual(expect.arrayContaining([process.pid, shell.pid, tree[1]]));
  });

  it('sums the PSS of the whole tree, and has no figure for a process that is gone', () => {
    const own = proportionalSetSize(process.pid)!;
    expect(own).toBeGreaterThan(10 * 2 ** 20);
    expect(processTreePss(process.pid)!).toBeGreaterThan(own);
    expect(processTreePss(2 ** 22 + 1)).toBeUndefined();
  });

  it("reports PostgreSQL's postmaster, whose tree holds the backend of each connection", async () => {
    const before = processTree(server.pid).length;
    const clients = Array.from({ length: 3 }, () => new pg.Client({ connectionString: server.url }));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      expect(processTree(server.pid).length).toBe(before + 3);
      expect(processTreePss(server.pid)!).toBeGreaterThan(proportionalSetSize(server.pid)!);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

describe('memory table', () => {
  it("puts a companion server's peak on its own row, under the registry it serves", () => {
    const results = new Results();
    results.peakRss('wharf-postgres', 'smallPush', 140 * 1e6);
    results.peakRss('distribution', 'smallPush', 70 * 1e6);
    results.companionPeak('wharf-postgres', 'PostgreSQL server', 90 * 1e6);
    results.companionPeak('wharf-postgres', 'PostgreSQL server', 120 * 1e6);
    const targets = [
      { id: 'distribution', label: 'distribution', version: '' },
      { id: 'wharf-postgres', label: 'Wharf (PostgreSQL)', version: '' },
    ];
    const row = memoryTable({ targets, results })
      .split('\n')
      .find((line) => line.includes('PostgreSQL server'));
    expect(row).toBe('| Beside it: PostgreSQL server, all its processes (sum of PSS, highest reading after a workload) | — | 120.0 |');
  });
});
