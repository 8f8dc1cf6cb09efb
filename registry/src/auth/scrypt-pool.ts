import { Worker } from 'node:worker_threads';

/**
 * What runs on a hashing thread: synchronous scrypt, one derivation per message. The
 * thread lowers its own scheduling priority (on Linux the nice value is per thread), so
 * that under CPU contention serving requests wins over hashing passwords. CommonJS
 * source rather than a module file, so that it runs the same from the build and from
 * the TypeScript sources (as the embedded database's thread does).
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
try { require('node:os').setPriority(workerData.nice); } catch {}
parentPort.on('message', ({ password, salt, keyLength, N, r, p }) => {
  try {
    const key = scryptSync(password, salt, keyLength, { N, r, p, maxmem: 256 * N * r });
    parentPort.postMessage({ key: new Uint8Array(key) });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  keyLength: number;
}

export interface ScryptPoolOptions {
  /** Hashing threads at most; each runs one derivation at a time. */
  threads: number;
  /** Derivations that may wait for a thread; beyond that, `derive` refuses at once. */
  maxQueue: number;
  /** A thread idle this long exits; the next derivation starts a new one. */
  idleMs?: number;
  /** Nice value of the hashing threads (0 keeps the process's). */
  nice?: number;
  /** Called after each finished derivation (metrics). */
  onDerived?: () => void;
}

/** The queue of waiting derivations is full: the caller should shed the request. */
export class ScryptPoolBusyError extends Error {
  constructor() {
    super('the password hashing queue is full');
    this.name = 'ScryptPoolBusyError';
  }
}

interface Job {
  password: string;
  salt: Uint8Array;
  params: ScryptParams;
  resolve: (key: Buffer) => void;
  reject: (err: Error) => void;
}

type Reply = { key: Uint8Array } | { error: string };

/** One hashing thread, running one job at a time. */
class HashThread {
  private job: Job | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly worker: Worker,
    private readonly onFree: (thread: HashThread) => void,
    private readonly onGone: (thread: HashThread) => void,
  ) {
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const job = this.job;
      this.job = undefined;
      worker.unref();
      if (job) {
        if ('key' in reply) job.resolve(Buffer.from(reply.key.buffer, reply.key.byteOffset, reply.key.byteLength));
        else job.reject(new Error(`scrypt failed: ${reply.error}`));
      }
      this.onFree(this);
    });
    worker.on('error', (err) => this.gone(err));
    worker.on('exit', (code) => this.gone(new Error(`the password hashing thread exited with code ${code}`)));
  }

  run(job: Job): void {
    clearTimeout(this.idleTimer);
    this.job = job;
    // Referenced only while a derivation is due: an idle thread keeps no process alive.
    this.worker.ref();
    this.worker.postMessage({ password: job.password, salt: job.salt, ...job.params });
  }

  idleFor(ms: number): void {
    this.idleTimer = setTimeout(() => void this.worker.terminate(), ms);
    this.idleTimer.unref();
  }

  private gone(err: Error): void {
    // 'error' is followed by 'exit': act on the first.
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.idleTimer);
    const job = this.job;
    this.job = undefined;
    job?.reject(err);
    this.onGone(this);
  }

  terminate(): Promise<number> {
    clearTimeout(this.idleTimer);
    return this.worker.terminate();
  }
}

/**
 * scrypt on a few threads of its own. `crypto.scrypt` runs on libuv's thread pool,
 * which file reads and writes share: a flood of logins (each derivation takes 32 MiB
 * and tens to hundreds of milliseconds) held every pool thread and stalled blob I/O for
 * seconds. Here at most `threads` derivations run at once, at most `maxQueue` wait, and
 * anything beyond is refused at once (ScryptPoolBusyError) instead of queueing without
 * bound. Threads start on demand and exit when idle.
 */
export class ScryptPool {
  private readonly threads = new Set<HashThread>();
  private readonly free: HashThread[] = [];
  private readonly queue: Job[] = [];
  private closed = false;

  constructor(private readonly options: ScryptPoolOptions) {}

  /** Derivations waiting for a thread. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Derivations running now. */
  get running(): number {
    return this.threads.size - this.free.length;
  }

  derive(password: string, salt: Uint8Array, params: ScryptParams): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('the password hashing pool is closed'));
    return new Promise<Buffer>((resolve, reject) => {
      const job: Job = {
        password,
        salt,
        params,
        resolve: (key) => {
          this.options.onDerived?.();
          resolve(key);
        },
        reject,
      };
      const thread = this.free.pop() ?? (this.threads.size < this.options.threads ? this.spawn() : undefined);
      if (thread) thread.run(job);
      else if (this.queue.length < this.options.maxQueue) this.queue.push(job);
      else reject(new ScryptPoolBusyError());
    });
  }

  private spawn(): HashThread {
    const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { nice: this.options.nice ?? 0 } });
    const thread = new HashThread(
      worker,
      (t) => this.next(t),
      (t) => {
        this.threads.delete(t);
        const at = this.free.indexOf(t);
        if (at !== -1) this.free.splice(at, 1);
        // A thread that died with work waiting is replaced.
        if (!this.closed && this.queue.length > 0) this.spawn().run(this.queue.shift()!);
      },
    );
    this.threads.add(thread);
    return thread;
  }

  private next(thread: HashThread): void {
    const job = this.queue.shift();
    if (job) return thread.run(job);
    this.free.push(thread);
    thread.idleFor(this.options.idleMs ?? 30_000);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('the password hashing pool is closed'));
    await Promise.all([...this.threads].map((t) => t.terminate()));
  }
}
