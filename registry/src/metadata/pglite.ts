import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serialize } from 'pg-protocol';
import type { BackendMessage, DatabaseError, DataRowMessage, Field, RowDescriptionMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { prepareValue } from 'pg/lib/utils.js';
import { lockEmbeddedDatabase } from './embedded-lock.js';
import { DatabaseThread } from './pglite-thread.js';
import type { Queryable, Sql } from './sql.js';
import { PreparedStatements, typeParsers } from './statements.js';

/**
 * One connection inside the registry process: PostgreSQL's defaults (128 MB of shared
 * buffers) would triple the process's memory for no benefit at this scale.
 */
export const EMBEDDED_SETTINGS = ['shared_buffers=8MB', 'wal_buffers=512kB', 'max_connections=5'];

const execFileAsync = promisify(execFile);

interface Column {
  name: string;
  parse: (value: string) => unknown;
}

const SYNC = serialize.sync();

function columnsOf(fields: Field[]): Column[] {
  return fields.map((f) => ({ name: f.name, parse: typeParsers.getTypeParser(f.dataTypeID, 'text') as (value: string) => unknown }));
}

/**
 * Statements in PostgreSQL's wire protocol, straight into PGlite (`execProtocolRawSync`,
 * on the database thread), as node-postgres would send them to a server: parameterized
 * statements are parsed and planned once and then only bound and executed, and rows are
 * decoded with the same type parsers as the pg driver. PGlite's own `query()` re-parses,
 * re-plans and describes every statement; this path costs a fifth of it per query.
 *
 * Every call posts its whole message before it returns, and the thread answers in
 * order, so statements run in the order they were called: a statement's first use
 * parses it in the same message, and calls made before that reply arrives only bind.
 */
class WireSession {
  private readonly statements = new PreparedStatements();
  private readonly columns = new Map<string, Promise<Column[]>>();

  constructor(private readonly thread: DatabaseThread) {}

  query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]> {
    if (!params) return this.run<Row>(serialize.query(text));
    const name = this.statements.nameFor(text);
    const bind = serialize.bind({ statement: name ?? '', values: [...params], valueMapper: (v: unknown) => prepareValue(v) });
    if (name === undefined) {
      return this.run<Row>(Buffer.concat([serialize.parse({ text }), bind, serialize.describe({ type: 'P' }), serialize.execute(), SYNC]));
    }
    const known = this.columns.get(name);
    if (known) return this.run<Row>(Buffer.concat([bind, serialize.execute(), SYNC]), known);
    let settle!: { resolve: (c: Column[]) => void; reject: (err: unknown) => void };
    const columns = new Promise<Column[]>((resolve, reject) => (settle = { resolve, reject }));
    columns.catch(() => undefined);
    this.columns.set(name, columns);
    const message = Buffer.concat([serialize.parse({ name, text }), serialize.describe({ type: 'S', name }), SYNC, bind, serialize.execute(), SYNC]);
    return this.run<Row>(message, undefined, (parsed, described, err) => {
      if (parsed) return settle.resolve(described);
      this.columns.delete(name);
      settle.reject(err);
    });
  }

  /**
   * Sends `message` and decodes the rows of the (last) result. `columns` describes them
   * when no RowDescription comes; `onPrepare` learns whether the message's Parse
   * succeeded and which columns its Describe gave.
   */
  private async run<Row>(message: Buffer, columns?: Promise<Column[]>, onPrepare?: (parsed: boolean, described: Column[], err: unknown) => void): Promise<Row[]> {
    let reply: Uint8Array;
    try {
      reply = await this.thread.exchange(message);
    } catch (err) {
      onPrepare?.(false, [], err);
      throw err;
    }
    let current: Column[] = [];
    let described = false;
    let parsed = false;
    let error: DatabaseError | undefined;
    const rows: Row[] = [];
    const messages: BackendMessage[] = [];
    new Parser().parse(Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength), (m: BackendMessage) => messages.push(m));
    if (columns && !messages.some((m) => m.name === 'rowDescription')) current = await columns.catch(() => []);
    for (const m of messages) {
      if (m.name === 'error') error ??= m as DatabaseError;
      else if (m.name === 'parseComplete') parsed = true;
      else if (m.name === 'rowDescription') {
        current = columnsOf((m as RowDescriptionMessage).fields);
        described = true;
        rows.length = 0;
      } else if (m.name === 'dataRow') {
        const values = (m as DataRowMessage).fields as (string | null)[];
        const row: Record<string, unknown> = {};
        for (let i = 0; i < current.length; i++) {
          const v = values[i];
          row[current[i]!.name] = v === null || v === undefined ? null : current[i]!.parse(v);
        }
        rows.push(row as Row);
      }
    }
    onPrepare?.(parsed, described ? current : [], error);
    if (error) throw error;
    return rows;
  }
}

/** Serializes transactions; a statement outside one waits until no transaction is open. */
class TransactionGate {
  private tail: Promise<void> = Promise.resolve();
  private open = false;

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    if (!this.open) return fn();
    return this.exclusive(fn);
  }

  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(async () => {
      this.open = true;
      try {
        return await fn();
      } finally {
        this.open = false;
      }
    });
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/**
 * PGlite runs initdb on a new data directory, inside whichever process opens it: most of its
 * peak stays in the process's heap afterwards (freed, but not returned to the OS). The registry
 * runs it in a short-lived child process instead, whose memory goes when it exits, and with
 * WebAssembly on V8's baseline compiler only (Liftoff, as the database thread runs it): with
 * TurboFan optimizing the 9 MB module the child peaked at 1.1 GB RSS on Node.js 24, with
 * `--liftoff-only` at 550 MB (docs/lab.md, "First start").
 *
 * initdb writes into `<dataDir>.initdb` and the result is renamed into place: a first start
 * killed half-way (OOM, a deleted pod) leaves no half-initialized database that every later
 * start would fail to open, only the temporary directory, which the next start removes.
 */
export const INITDB_NODE_FLAGS: readonly string[] = ['--liftoff-only'];

async function initializeInChild(dataDir: string): Promise<void> {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return;
  const pglite = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const script = `const { PGlite } = require(process.argv[1]);
    PGlite.create({ dataDir: process.argv[2], postgresqlconf: process.argv.slice(3) }).then((db) => db.close());`;
  const temp = `${dataDir}.initdb`;
  await rm(temp, { recursive: true, force: true });
  const run = execFileAsync(process.execPath, [...INITDB_NODE_FLAGS, '-e', script, pglite, temp, ...EMBEDDED_SETTINGS], { maxBuffer: 1024 * 1024 });
  // A registry stopped mid-initdb takes its child along: left running, it would go on writing
  // into the directory that the next start initializes afresh.
  const stop = () => run.child.kill('SIGKILL');
  process.once('exit', stop);
  try {
    await run;
  } finally {
    process.off('exit', stop);
  }
  // Fails, rather than replacing anything, unless dataDir is missing or empty.
  await rmdir(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw new Error(`cannot initialize the embedded database in ${dataDir}: it holds files but no PG_VERSION (${err.code})`);
  });
  await rename(temp, dataDir);
}

/**
 * The embedded default: PostgreSQL compiled to WebAssembly, persisted in `dataDir`, on
 * its own thread (pglite-thread.ts). Its WebAssembly runs on V8's baseline compiler only
 * (Liftoff, set by the thread): optimizing the 9 MB module with TurboFan kept about
 * 60 MB more resident (compiler memory the process never gives back) and competed for
 * CPU with requests, for no measured gain in request throughput (bench/README.md).
 * The thread spells out what `--liftoff-only` implies (no tier-up, no dynamic tiering):
 * V8 13 (Node.js 24) derives implications only from the command line, and a start on an
 * existing database peaked at 660 MB RSS instead of 150 MB with the flag alone.
 */
export async function openPglite(dataDir: string): Promise<Sql> {
  await mkdir(dataDir, { recursive: true });
  const unlock = await lockEmbeddedDatabase(dataDir);
  try {
    await initializeInChild(dataDir);
    const sql = pgliteSql(await DatabaseThread.start(dataDir, EMBEDDED_SETTINGS));
    return { ...sql, close: () => sql.close().finally(unlock) };
  } catch (err) {
    await unlock();
    throw err;
  }
}

/** The Sql interface over a running database thread. */
export function pgliteSql(thread: DatabaseThread): Sql {
  const wire = new WireSession(thread);
  const gate = new TransactionGate();
  const tx: Queryable = { query: (text, params) => wire.query(text, params) };
  return {
    driver: 'pglite',
    query: (text, params) => gate.run(() => wire.query(text, params)),
    transaction: (fn) =>
      gate.exclusive(async () => {
        await wire.query('BEGIN');
        try {
          const result = await fn(tx);
          await wire.query('COMMIT');
          return result;
        } catch (err) {
          await wire.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }),
    close: () => thread.close(),
    fatal: () => thread.stopped,
    collectGarbage: () => thread.collectGarbage(),
  };
}
