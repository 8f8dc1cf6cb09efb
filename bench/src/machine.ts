import { readFile, writeFile } from 'node:fs/promises';
import { loadavg, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { exec } from './util/exec.js';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  kernel: string;
  memoryGiB: number;
}

export async function describeMachine(): Promise<MachineInfo> {
  const nproc = Number((await exec('nproc', [])).stdout.trim());
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  return { nproc, cpuModel, kernel: release(), memoryGiB: totalmem() / 2 ** 30 };
}

/** The output of `uptime` (time, uptime, users, load averages). */
export async function uptime(): Promise<string> {
  return (await exec('uptime', [])).stdout.trim();
}

export interface Flush {
  /** `Dirty:` from /proc/meminfo before the flush, in bytes. */
  dirtyBytes: number;
  ms: number;
}

async function dirtyBytes(): Promise<number> {
  const meminfo = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  return Number(/^Dirty:\s+(\d+) kB$/m.exec(meminfo)?.[1] ?? 0) * 1024;
}

/**
 * Writes every dirty page on the machine to disk (`sync`). Between two targets this
 * keeps the writeback one registry left behind (zot's default does not flush blobs)
 * out of the next registry's timed run.
 */
export async function flushDirtyPages(): Promise<Flush> {
  const dirty = await dirtyBytes();
  const start = performance.now();
  const { code, stderr } = await exec('sync', []);
  if (code !== 0) throw new Error(`sync exited with ${code}: ${stderr.trim()}`);
  return { dirtyBytes: dirty, ms: performance.now() - start };
}

/**
 * Drops the clean page cache (`/proc/sys/vm/drop_caches`, needs root; false when it
 * cannot). On this VM, page cache that grows into memory the guest has not touched
 * lately costs a host-side fault per page, 4-16 µs, billed to whichever process is
 * writing: `dd` of 2 GB into new files ran at 250-560 MB/s, and at 2.4-3.5 GB/s right
 * after a drop. Without it, every target's writes land in colder memory than the
 * previous one's as the run's blobs pile up in the cache, and the push figures measure
 * that more than the registries. Call it after `flushDirtyPages`: only clean pages go.
 */
export async function dropPageCache(): Promise<boolean> {
  try {
    await writeFile('/proc/sys/vm/drop_caches', '1');
    return true;
  } catch {
    return false;
  }
}

export function load1(): number {
  return loadavg()[0]!;
}

/**
 * When the 1-minute load is above `threshold` (other work on the machine), waits
 * `waitS` seconds once, so the run starts on a calmer machine if it can. Returns the
 * `uptime` lines seen.
 */
export async function waitForQuiet(threshold: number, waitS: number, log: (line: string) => void): Promise<string[]> {
  const seen = [await uptime()];
  if (load1() <= threshold || waitS <= 0) return seen;
  log(`load ${load1().toFixed(2)} is above ${threshold}: waiting ${waitS} s once for other work to finish`);
  await sleep(waitS * 1000);
  seen.push(await uptime());
  return seen;
}
