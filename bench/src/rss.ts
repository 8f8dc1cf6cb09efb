import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

export interface MemoryStatus {
  /** Resident set size now, bytes (VmRSS). */
  rss: number;
  /** Peak resident set size, bytes (VmHWM): since start, or since the last resetPeak. */
  hwm: number;
}

/** VmRSS and VmHWM of a process from /proc/<pid>/status; undefined once it is gone. */
export function memoryStatus(pid: number): MemoryStatus | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/**
 * Resets the process's VmHWM to its current RSS (writing 5 to /proc/<pid>/clear_refs),
 * so the next reading is the exact peak from now on. Needs to own the process (or
 * root); returns false when the kernel refuses.
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** `pid` and every process descended from it (the `children` file of each of its tasks in /proc). */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${tree[i]}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${tree[i]}/task/${task}/children`, 'utf8');
      } catch {
        // The task ended between the listing and the read.
      }
      for (const child of children.split(' ')) if (child.trim()) tree.push(Number(child));
    }
  }
  return tree;
}

/** Proportional set size of one process (Pss in /proc/<pid>/smaps_rollup), bytes; undefined once it is gone. */
export function proportionalSetSize(pid: number): number | undefined {
  try {
    const kib = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * Memory of a server made of several processes (PostgreSQL: a postmaster and its
 * backends), bytes: the sum of their PSS, so that shared buffers, mapped by every
 * backend, count once. Undefined once the root process is gone.
 */
export function processTreePss(pid: number): number | undefined {
  const [root, ...rest] = processTree(pid).map(proportionalSetSize);
  if (root === undefined) return undefined;
  return rest.reduce<number>((sum, pss) => sum + (pss ?? 0), root);
}

/** Samples VmRSS of one process at a fixed interval and keeps the peak. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peakBytes = 0;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 50,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  /** Stops sampling and returns the peak VmRSS seen, bytes. */
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    return this.peakBytes;
  }

  private sample(): void {
    const status = memoryStatus(this.pid);
    if (status && status.rss > this.peakBytes) this.peakBytes = status.rss;
  }
}
