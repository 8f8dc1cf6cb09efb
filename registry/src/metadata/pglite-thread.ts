import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { DatabaseUnavailableError } from './sql.js';

/**
 * What runs on the database thread: PGlite and nothing else, answering raw wire-protocol
 * messages one at a time, in the order they were posted. CommonJS source rather than a
 * module file, so that it runs the same from the build and from the TypeScript sources.
 * The reply is copied out of PGlite's WebAssembly memory and its buffer transferred.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
require('node:v8').setFlagsFromString('--liftoff-only --no-wasm-tier-up --no-wasm-dynamic-tiering');
const { PGlite } = require(workerData.pglite);
const describe = (err) => String((err && err.stack) || err);
PGlite.create({ dataDir: workerData.dataDir, postgresqlconf: workerData.settings }).then(
  (db) => {
    parentPort.on('message', (message) => {
      if (message === 'gc') {
        if (typeof gc === 'function') gc();
        return;
      }
      if (message === 'close') {
        db.close().then(() => parentPort.close(), (err) => { parentPort.postMessage({ error: describe(err) }); parentPort.close(); });
        return;
      }
      let reply;
      try {
        reply = db.execProtocolRawSync(message).slice();
      } catch (err) {
        parentPort.postMessage({ error: describe(err) });
        return;
      }
      parentPort.postMessage({ reply }, [reply.buffer]);
    });
    parentPort.postMessage({ ready: true });
  },
  (err) => parentPort.postMessage({ failed: describe(err) }),
);
`;

interface Waiter {
  resolve: (reply: Uint8Array) => void;
  reject: (err: Error) => void;
}

type ThreadMessage = { ready: true } | { failed: string } | { reply: Uint8Array } | { error: string };

/**
 * PGlite on a thread of its own. PGlite executes each statement synchronously; on the
 * main thread that stalled every request (and every blob stream) for the length of each
 * query, and kept the registry's work on one core. Here the main thread only posts
 * protocol bytes and decodes the replies. Messages are answered in the order posted, so
 * callers may rely on that order (pglite.ts does). If the thread dies, every pending and
 * later exchange fails with DatabaseUnavailableError (HTTP 503, and /readyz fails).
 */
export class DatabaseThread {
  private readonly waiting: Waiter[] = [];
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly worker: Worker) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  static async start(dataDir: string, settings: readonly string[]): Promise<DatabaseThread> {
    const pglite = createRequire(import.meta.url).resolve('@electric-sql/pglite');
    const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { pglite, dataDir, settings } });
    const thread = new DatabaseThread(worker);
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the embedded database thread exited with code ${code} while starting`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (m: ThreadMessage) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        if ('failed' in m) reject(new Error(`the embedded database did not start: ${m.failed}`));
        else resolve();
      });
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    thread.listen();
    return thread;
  }

  private listen(): void {
    this.worker.on('message', (m: ThreadMessage) => {
      const waiter = this.waiting.shift();
      if (this.waiting.length === 0) this.worker.unref();
      if (!waiter) return;
      if ('reply' in m) waiter.resolve(m.reply);
      else waiter.reject(new DatabaseUnavailableError(`the embedded database failed: ${'error' in m ? m.error : 'unexpected message'}`));
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`exited with code ${code}`)));
    this.worker.unref();
  }

  private fail(cause: Error): void {
    this.failure ??= new DatabaseUnavailableError(`the embedded database thread stopped: ${cause.message}`, { cause });
    for (const waiter of this.waiting.splice(0)) waiter.reject(this.failure);
  }

  /** Why the thread stopped, once it has (after close, too). */
  get stopped(): Error | undefined {
    return this.failure;
  }

  /** Posts one protocol message; resolves with PGlite's reply to it. */
  exchange(message: Uint8Array): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      // Referenced only while a reply is due: an idle database thread keeps no process alive.
      if (this.waiting.length === 0) this.worker.ref();
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(message);
    });
  }

  /**
   * Runs a full garbage collection on the database thread, if V8's collector is exposed
   * (--expose-gc); posted in order with the queries, and answered with nothing.
   */
  collectGarbage(): void {
    if (!this.failure) this.worker.postMessage('gc');
  }

  /** Closes the database (checkpointing it) and waits for the thread to end. */
  async close(): Promise<void> {
    if (this.failure) return;
    this.worker.ref();
    this.worker.postMessage('close');
    await this.exited;
  }
}
